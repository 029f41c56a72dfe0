"""Training checkpoints (resumable) and the trained model in the official release layout.

A checkpoint holds the model, the EMA, the optimiser, the step, the losses so far and every RNG
state, plus the recipe and the data fingerprint it belongs to. Files are written beside their final
name, fsynced, then renamed over it, so running out of disk while saving leaves the previous
checkpoint intact and no half-written file behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audiox_core.errors import InputError


def _disk_error(path: Path, what: str, e: OSError) -> InputError:
    return InputError(f"{path}: cannot save {what} ({e.strerror or e}); the previous one is unchanged")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rng_states() -> dict[str, Any]:
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``state`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error(e)
        if cause is not None:
            raise _disk_error(path, "the checkpoint", cause) from None
        raise


def _os_error(e: BaseException) -> OSError | None:
    """The OSError behind ``e``: torch.save reports a failed write (ENOSPC, EFBIG) as a RuntimeError
    of its zip writer raised while handling the OSError."""
    while e is not None and not isinstance(e, OSError):
        e = e.__cause__ or e.__context__
    return e


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from (run without --resume first)")
    try:
        # Our own file: it holds numpy and python RNG states, which the weights-only unpickler refuses.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file raises many types
        raise InputError(f"{path}: not a readable training checkpoint ({type(e).__name__}: {e})") from None


def save_release(folder: Path, config: dict[str, Any], state_dict: dict[str, torch.Tensor], card: str = "") -> None:
    """config.json + model.safetensors (+ MODEL_CARD.md) as one folder, swapped in whole: a reader sees
    the old release or the new one, never a mix."""
    from safetensors.torch import save_file

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
    try:
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        save_file(
            {k: v.detach().float().contiguous().cpu() for k, v in state_dict.items()},
            str(staging / "model.safetensors"),
        )
        if card:
            (staging / "MODEL_CARD.md").write_text(card)
        for f in staging.iterdir():
            with f.open("rb") as fh:
                os.fsync(fh.fileno())
        old = folder.with_name(f".{folder.name}.old")
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(folder.parent)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise _disk_error(folder, "the model", e) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
