"""A training recipe: which architecture, which stages, and every number that decides the result.

Read once from JSON into frozen dataclasses; an unknown key or a bad value is one line naming the
file and the key. ``model`` is a preset name (``demo``, ``tiny``) or the path of a config.json in
the official format; shipped recipes live in ``audiox_core/train/presets/``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiox_core.errors import InputError
from audiox_core.model.config import AudioXConfig
from audiox_core.model.spec import PRESETS

RECIPES = Path(__file__).parent / "presets"
STAGES = ("vae", "dit")
PROBABILITIES = (
    "cfg_dropout",
    "video_dropout",
    "text_dropout",
    "audio_dropout",
    "continuation_prob",
    "pipeline_prompt_prob",
)


@dataclass(frozen=True)
class VaeStage:
    """The autoencoder: reconstruction with a multi-resolution STFT loss, L1 and a small KL term."""

    steps: int = 2000
    batch_size: int = 16
    crop_s: float = 1.0
    lr: float = 3e-4
    betas: tuple[float, float] = (0.8, 0.99)
    l1_weight: float = 0.1
    kl_weight: float = 1e-4
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    checkpoint_every: int = 500


@dataclass(frozen=True)
class DitStage:
    """The diffusion transformer and conditioners on the frozen VAE's latents (v objective, cosine schedule)."""

    steps: int = 3000
    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    cfg_dropout: float = 0.1  # the whole condition, per sample (official AudioX: 0.1)
    video_dropout: float = 0.15
    text_dropout: float = 0.15
    audio_dropout: float = 0.3  # of a continuation prompt, when the window has one
    continuation_prob: float = 0.5  # windows that start inside a clip and get its preceding audio as prompt
    pipeline_prompt_prob: float = 0.25  # captions replaced by the pipeline's own cue prompt for the picture
    overlap_s: float = 2.0  # as audiox_core.model.longform.generate_scenes joins windows
    checkpoint_every: int = 250
    grad_checkpointing: bool = False
    lora_rank: int = 0  # > 0: train LoRA adapters on the DiT only (fine-tuning with --init)
    lora_alpha: float = 16.0


@dataclass(frozen=True)
class TrainConfig:
    model: str = "demo"
    seed: int = 0
    stages: tuple[str, ...] = STAGES
    vae: VaeStage = field(default_factory=VaeStage)
    dit: DitStage = field(default_factory=DitStage)
    source: str = "recipe"  # where it was read from (for messages)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """The recipe in ``path``, or the shipped one of that name (``demo``)."""
        path = Path(path)
        if not path.suffix and (RECIPES / f"{path}.json").is_file():
            path = RECIPES / f"{path}.json"
        try:
            raw = json.loads(path.read_text())
        except OSError as e:
            raise InputError(f"{path}: cannot read the training recipe ({e.strerror or e})") from None
        except ValueError as e:
            raise InputError(f"{path}: the training recipe is not valid JSON ({e})") from None
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: Any, source: str = "recipe") -> TrainConfig:
        if not isinstance(raw, dict):
            raise InputError(f"{source}: the training recipe must be a JSON object")
        top = {k: v for k, v in raw.items() if not k.startswith("_")}
        values = _fields(cls, top, source, "", skip=("vae", "dit", "source"))
        for name, stage_cls in (("vae", VaeStage), ("dit", DitStage)):
            section = top.get(name, {})
            if not isinstance(section, dict):
                raise InputError(f"{source}: {name} must be an object")
            values[name] = stage_cls(**_fields(stage_cls, section, source, f"{name}."))
        for key in PROBABILITIES:
            if not 0 <= getattr(values["dit"], key) <= 1:
                raise InputError(
                    f"{source}: dit.{key} must be a probability in [0, 1] (got {getattr(values['dit'], key)!r})"
                )
        recipe = cls(**values, source=source)
        unknown = [s for s in recipe.stages if s not in STAGES]
        if unknown or not recipe.stages:
            raise InputError(
                f"{source}: stages must be a non-empty list of {', '.join(STAGES)} (got {list(recipe.stages)})"
            )
        return recipe

    def architecture(self) -> tuple[AudioXConfig, dict[str, Any]]:
        """The model config and its raw official-format JSON (written beside the trained weights)."""
        path = PRESETS / f"{self.model}.json" if (PRESETS / f"{self.model}.json").is_file() else Path(self.model)
        if not path.is_file():
            raise InputError(f"{self.source}: model {self.model!r} is neither a preset nor a config.json")
        return AudioXConfig.from_json(path), json.loads(path.read_text())

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("source")
        return out


def _fields(cls: type, raw: dict[str, Any], source: str, prefix: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``raw`` checked against the dataclass's fields: names known, values of the default's type, numbers ≥ 0."""
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key in skip:
            continue
        if key.startswith("_"):
            continue
        if key not in known:
            raise InputError(f"{source}: unknown key {prefix}{key} (known: {', '.join(known)})")
        f = known[key]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        values[key] = _checked(value, default, f"{source}: {prefix}{key}")
    return values


def _checked(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false (got {value!r})")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where} must be a number (got {value!r})")
        if isinstance(default, int) and not isinstance(value, int):
            raise InputError(f"{where} must be a whole number (got {value!r})")
        if value < 0:
            raise InputError(f"{where} must be ≥ 0 (got {value!r})")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or len(value) != len(default) and isinstance(default[0], float):
            raise InputError(f"{where} must be a list like {list(default)} (got {value!r})")
        return tuple(_checked(v, default[0], where) for v in value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise InputError(f"{where} must be a string (got {value!r})")
        return value
    raise AssertionError(f"{where}: unsupported field type {type(default).__name__}")
