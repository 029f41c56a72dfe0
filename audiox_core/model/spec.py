"""What a ``--model`` value names (``tiny``, ``demo`` or an AudioX release): the one reader of the release layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from audiox_core.errors import ModelError
from audiox_core.model.config import AudioXConfig

PRESETS = Path(__file__).parent / "presets"
TINY_CONFIG = PRESETS / "tiny.json"
DEMO_FOLDER = Path(__file__).parent / "demo"
# Weights file names of a release folder, in order of preference (safetensors needs no unpickling).
WEIGHTS_NAMES = ("model.safetensors", "model.ckpt")
WEIGHTS_SUFFIXES = (".safetensors", ".ckpt")

ModelKind = Literal["tiny", "demo", "release"]


@dataclass(frozen=True)
class ModelSpec:
    """A resolved ``--model`` value: its kind, parsed config and where the config and weights are."""

    name: str  # the value as given, recorded in provenance
    kind: ModelKind
    config_path: Path
    weights_path: Path | None  # None for ``tiny``: random weights built from a fixed seed
    config: AudioXConfig

    @property
    def random_weights(self) -> bool:
        return self.weights_path is None

    @property
    def needs_t5(self) -> bool:
        """Whether loading needs a local T5 folder (the official text conditioner)."""
        return self.config.text.kind == "t5"

    @property
    def label(self) -> str:
        """What the model is, in words, for logs and provenance."""
        if self.kind == "tiny":
            return "tiny AudioX-architecture model, RANDOM weights (test model: its audio is noise, not a soundtrack)"
        if self.kind == "demo":
            return "demo model (AudioX architecture trained by audiox-studio train on synthetic clips; MODEL_CARD.md)"
        return f"AudioX from {self.name}"


def resolve_model_spec(value: str) -> ModelSpec:
    """``tiny``, ``demo`` or PATH to a release folder or to a weights file inside one, its config parsed and its
    weights located (not read); ModelError says which part of the layout is missing or wrong, in the same words
    for the loader, the flows and ``doctor``."""
    if value == "demo":
        weights = DEMO_FOLDER / WEIGHTS_NAMES[0]
        if not weights.is_file():
            raise ModelError(
                f"demo: no trained demo model in {DEMO_FOLDER} (train one with audiox-studio train --config demo); "
                "use --model tiny (random test weights) or --model PATH (an AudioX release)"
            )
        config_path = DEMO_FOLDER / "config.json"
        return ModelSpec(value, "demo", config_path, weights, AudioXConfig.from_json(config_path))
    if value == "tiny":
        return ModelSpec(value, "tiny", TINY_CONFIG, None, AudioXConfig.from_json(TINY_CONFIG))
    path = Path(value)
    if not path.exists():
        raise ModelError(f"{path}: model folder not found")
    folder = path if path.is_dir() else path.parent
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{folder}: no config.json (expected the official AudioX release layout)")
    config = AudioXConfig.from_json(config_path)
    return ModelSpec(value, "release", config_path, _weights_path(path), config)


def _weights_path(path: Path) -> Path:
    """The weights a release path names: the file itself, or the folder's preferred weights file."""
    if path.is_file():
        if path.suffix not in WEIGHTS_SUFFIXES:
            raise ModelError(
                f"{path}: not a weights file (expected {' or '.join(WEIGHTS_NAMES)} in an AudioX release folder)"
            )
        return path
    found = next((path / name for name in WEIGHTS_NAMES if (path / name).is_file()), None)
    if found is None:
        raise ModelError(f"{path}: no model.ckpt or model.safetensors (download the official AudioX weights into it)")
    return found


def load_config(value: str) -> AudioXConfig:
    """The config a ``--model`` value names, without reading the weights (what a flow that leaves
    inference to a worker process needs: sample rate, window length, frame rate)."""
    return resolve_model_spec(value).config
