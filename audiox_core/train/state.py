"""Training checkpoints (resumable, read as data only) and the trained model in the official release layout."""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.serialization import get_unsafe_globals_in_checkpoint

from audiox_core.errors import InputError

# Version 1 (the first training code, never released) pickled numpy's and python's RNG states as
# objects, which only the unrestricted unpickler reads; version 2 holds them as tensors and lists.
FORMAT = "audiox-studio training checkpoint 2"
LAYOUT: dict[str, type] = {
    "format": str, "stage": str, "step": int, "model": dict, "optimizer": dict, "schedule": dict, "ema": dict,
    "rng": dict, "losses": list, "wall_s": float, "recipe": dict, "data": str,
}  # fmt: skip
# The globals a version-1 checkpoint names (numpy < 2 spells the module numpy.core).
_VERSION_1_GLOBALS = frozenset(
    {"numpy.dtype", "numpy.ndarray", "numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct"}
)


def _disk_error(path: Path, what: str, e: OSError) -> InputError:
    return InputError(f"{path}: cannot save {what} ({e.strerror or e}); the previous one is unchanged")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rng_states() -> dict[str, Any]:
    """Every global RNG's state as data: torch's as byte tensors, numpy's Mersenne Twister key as an
    int64 tensor with its position and cached Gaussian, python's as a list of ints."""
    _, key, pos, has_gauss, gauss = np.random.get_state()  # ("MT19937", uint32[624], int, int, float)
    version, internal, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(key.astype(np.int64)), "pos": pos, "has_gauss": has_gauss, "gauss": gauss},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    mt = states["numpy"]
    np.random.set_state(("MT19937", mt["key"].numpy().astype(np.uint32), mt["pos"], mt["has_gauss"], mt["gauss"]))
    py = states["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``state`` (the keys of ``LAYOUT`` but ``format``) to ``path`` atomically (temp file in the same
    folder, fsync, rename): a full disk leaves the previous checkpoint intact."""
    state = {"format": FORMAT, **state}
    problem = _layout_problem(state)
    assert problem is None, problem
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
    """The training state in ``path``, read as data: a file that is not one of ours (a bare pickle,
    an archive naming code, another tool's tensors) is one InputError line and nothing in it runs."""
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from (run without --resume first)")
    if not zipfile.is_zipfile(path):  # torch.save's archive; anything else is never unpickled at all
        raise InputError(f"{path}: not a training checkpoint of audiox-studio (not a PyTorch archive)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(_refusal(path)) from None
    except Exception as e:  # a truncated or damaged archive raises many types
        first = (str(e).strip().splitlines() or [""])[0]  # torch's messages run to several lines
        raise InputError(
            f"{path}: not a training checkpoint of audiox-studio: it cannot be read as data ({type(e).__name__}: {first})"
        ) from None
    problem = _layout_problem(state)
    if problem is not None:
        raise InputError(f"{path}: not a training checkpoint of audiox-studio ({problem})")
    return state


def _layout_problem(state: Any) -> str | None:
    """What keeps ``state`` from being a checkpoint of ``FORMAT``, or None."""
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        return f"it has no format {FORMAT!r}"
    wrong = [k for k, kind in LAYOUT.items() if not isinstance(state.get(k), kind) or isinstance(state.get(k), bool)]
    return f"missing or mistyped: {', '.join(wrong)}" if wrong else None


def _refusal(path: Path) -> str:
    """Why the weights-only unpickler refused ``path``, from the globals its pickle names (read from
    its opcodes; nothing is run)."""
    try:
        named = set(get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # a pickle too damaged to scan: it is refused all the same
        named = set()
    if named and named <= _VERSION_1_GLOBALS:
        return (
            f"{path}: not a training checkpoint this version reads: an earlier version of audiox-studio wrote "
            "its RNG states as pickled numpy objects, which are never unpickled; start the run again with a new --out"
        )
    shown = ", ".join(sorted(named)[:3]) or "objects outside tensors and plain values"
    return f"{path}: not a training checkpoint of audiox-studio: it names code ({shown}), which is not run"


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
