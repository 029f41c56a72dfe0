"""A training recipe, read once from JSON: architecture, stages and every number that decides the result."""

from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiox_core.errors import InputError
from audiox_core.model.config import AudioXConfig, SyncConfig
from audiox_core.model.longform import WINDOW_OVERLAP_S
from audiox_core.model.spec import PRESETS
from audiox_core.validation import above, at_least, check_fields, checked, rule, within

RECIPES = Path(__file__).parent / "presets"
STAGES = ("vae", "dit")
UNTIL_KEYS = ("steps", "checkpoint_every")  # a stage's end and save interval: not what its steps compute


def _betas(value: Any) -> str | None:
    pair = isinstance(value, (list, tuple)) and len(value) == 2
    if pair and all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in value):
        return None
    return "is not two numbers in [0, 1) (Adam's decays)"


def _stages(value: Any) -> str | None:
    order = isinstance(value, (list, tuple)) and [s for s in STAGES if s in value] == list(value)
    return None if order and value else f"is not a non-empty list of {', '.join(STAGES)} (in that order)"


def _sync_block(value: Any) -> str | None:
    fields = {f.name for f in dataclasses.fields(SyncConfig)}
    if not isinstance(value, dict) or set(value) - fields:
        return f"is not an object of {', '.join(sorted(fields))}"
    if value and not (all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value.values())):
        return "holds a value that is not a whole number above 0"
    if value and "dim" not in value:
        return "needs dim (the branch's width)"
    return None


PROBABILITY = within(0, 1)
DECAY = within(0, 1, below_high=True)  # an EMA decay of 1 never moves
ADAM_BETAS = rule(_betas)
STAGE_LIST = rule(_stages)
MODEL_NAME = rule(lambda value: None if value else "is not a preset name or the path of a config.json")


@dataclass(frozen=True)
class VaeStage:
    """The autoencoder: reconstruction with a multi-resolution STFT loss, L1 and a small KL term."""

    steps: int = field(default=2000, metadata=at_least(1))
    batch_size: int = field(default=16, metadata=at_least(1))
    crop_s: float = field(default=1.0, metadata=above(0))
    lr: float = field(default=3e-4, metadata=above(0))
    betas: tuple[float, float] = field(default=(0.8, 0.99), metadata=ADAM_BETAS)
    l1_weight: float = field(default=0.1, metadata=at_least(0))
    kl_weight: float = field(default=1e-4, metadata=at_least(0))
    # the sync measure's own spectrogram and onset envelope (spectral.onset_loss)
    onset_weight: float = field(default=0.0, metadata=at_least(0))
    # log1p magnitudes on log-spaced bands, every octave alike (spectral.band_loss)
    band_weight: float = field(default=0.0, metadata=at_least(0))
    # crops placed so that one of the sound's onsets falls inside (transients are rare in 1 s of a bed)
    onset_crop_prob: float = field(default=0.0, metadata=PROBABILITY)
    # multi-resolution STFT discriminators (discriminator.py): 0 trains without them
    adversarial_weight: float = field(default=0.0, metadata=at_least(0))
    feature_weight: float = field(default=0.0, metadata=at_least(0))
    adversarial_from: int = field(default=0, metadata=at_least(0))  # steps of reconstruction alone first
    discriminator_lr: float = field(default=1e-4, metadata=above(0))
    # a fresh autoencoder's latent means scaled to unit spread and its first reconstructions to the
    # audio's level (wide Oobleck nets start tens of times too loud, and spend steps unlearning it)
    calibrate_init: bool = False
    ema_decay: float = field(default=0.999, metadata=DECAY)
    grad_clip: float = field(default=1.0, metadata=at_least(0))  # 0: no clipping
    checkpoint_every: int = field(default=500, metadata=at_least(1))

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class DitStage:
    """The diffusion transformer and conditioners on the frozen VAE's latents (v objective, cosine schedule)."""

    steps: int = field(default=3000, metadata=at_least(1))
    batch_size: int = field(default=8, metadata=at_least(1))
    lr: float = field(default=2e-4, metadata=above(0))
    weight_decay: float = field(default=1e-3, metadata=at_least(0))
    betas: tuple[float, float] = field(default=(0.9, 0.999), metadata=ADAM_BETAS)
    warmup_steps: int = field(default=100, metadata=at_least(0))
    ema_decay: float = field(default=0.999, metadata=DECAY)
    grad_clip: float = field(default=1.0, metadata=at_least(0))  # 0: no clipping
    # the whole condition, per sample (official AudioX: 0.1)
    cfg_dropout: float = field(default=0.1, metadata=PROBABILITY)
    video_dropout: float = field(default=0.15, metadata=PROBABILITY)
    text_dropout: float = field(default=0.15, metadata=PROBABILITY)
    # of a continuation prompt, when the window has one
    audio_dropout: float = field(default=0.3, metadata=PROBABILITY)
    # windows that start inside a clip and get its preceding audio as prompt
    continuation_prob: float = field(default=0.5, metadata=PROBABILITY)
    # captions replaced by the pipeline's own cue prompt for the picture
    pipeline_prompt_prob: float = field(default=0.25, metadata=PROBABILITY)
    # as audiox_core.model.longform.generate_scenes joins windows
    overlap_s: float = field(default=WINDOW_OVERLAP_S, metadata=at_least(0))
    # the time-aligned video branch's onset head (model/sync.py), where the model has the branch
    onset_weight: float = field(default=0.0, metadata=at_least(0))
    # divide the latents of this run's own VAE by their spread over the training clips, so the DiT
    # learns them near unit variance (written as the release's model.pretransform.scale)
    scale_latents: bool = False
    checkpoint_every: int = field(default=250, metadata=at_least(1))
    grad_checkpointing: bool = False
    # > 0: train LoRA adapters on the DiT only (fine-tuning with --init)
    lora_rank: int = field(default=0, metadata=at_least(0))
    lora_alpha: float = field(default=16.0, metadata=above(0))
    # trained inpainting (a model with studio.inpaint.channels, or add_inpaint): the share of windows
    # whose keep-mask is random segments made again, or a known prefix; the rest know nothing
    inpaint_segments_prob: float = field(default=0.0, metadata=PROBABILITY)
    inpaint_causal_prob: float = field(default=0.0, metadata=PROBABILITY)
    # masked multi-modal training (train/masking.py), on top of the whole-modality dropout above: the
    # share of each frame's vision-tower patches, of the caption's words, of the audio prompt's segments
    video_patch_mask: float = field(default=0.0, metadata=PROBABILITY)
    text_token_mask: float = field(default=0.0, metadata=PROBABILITY)
    audio_segment_mask: float = field(default=0.0, metadata=PROBABILITY)
    audio_segment_s: float = field(default=0.25, metadata=above(0))

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class TrainConfig:
    model: str = field(default="demo", metadata=MODEL_NAME)
    seed: int = field(default=0, metadata=at_least(0))
    stages: tuple[str, ...] = field(default=STAGES, metadata=STAGE_LIST)
    # the time-aligned video branch added to an --init release ({"dim": 64, …}, model/sync.py): its
    # parts start at zero, so the fine-tuned model starts exactly as the release
    add_sync: dict[str, Any] = field(default_factory=dict, metadata=rule(_sync_block))
    # the trained inpainting channels added to an --init release (model/inpaint.py): their projection
    # starts at zero, so the fine-tuned model starts exactly as the release
    add_inpaint: bool = False
    vae: VaeStage = field(default_factory=VaeStage)
    dit: DitStage = field(default_factory=DitStage)
    source: str = "recipe"  # where it was read from (for messages)

    def __post_init__(self) -> None:
        check_fields(self)

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
        """The recipe in ``raw`` (parsed JSON); every key and value checked against its field's type and
        rule before anything is built, the first bad one an InputError naming ``source`` and the key."""
        if not isinstance(raw, dict):
            raise InputError(f"{source}: the training recipe must be a JSON object")
        values = _section(cls, raw, source, "", nested=STAGES)
        for name, stage in (("vae", VaeStage), ("dit", DitStage)):
            section = raw.get(name, {})
            if not isinstance(section, dict):
                raise InputError(f"{source}: {name} must be an object (got {section!r})")
            values[name] = stage(**_section(stage, section, source, f"{name}."))
        dit = values["dit"]
        if dit.inpaint_segments_prob + dit.inpaint_causal_prob > 1:
            raise InputError(f"{source}: dit.inpaint_segments_prob + dit.inpaint_causal_prob exceed 1")
        return cls(**values, source=source)

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

    @staticmethod
    def stage_view(recipe: dict[str, Any], stage: str) -> dict[str, Any]:
        """What decides a stage's weights up to any step in a recipe's ``to_dict()``: the model, the
        seed, the stages up to this one and their sections but ``steps`` and ``checkpoint_every``
        (where a stage stops and how often it saves do not change a step's weights: the learning rate
        is constant after warm-up and every draw is keyed by the step, so a resumed stage may be
        extended). A JSON round trip, so lists and tuples compare equal."""
        stages = list(recipe["stages"])
        upto = stages[: stages.index(stage) + 1] if stage in stages else stages
        sections = {s: {k: v for k, v in recipe[s].items() if k not in UNTIL_KEYS} for s in upto}
        view = {
            "model": recipe["model"],
            "seed": recipe["seed"],
            "add_sync": recipe.get("add_sync", {}),
            "add_inpaint": recipe.get("add_inpaint", False),
            "stages": upto,
            **sections,
        }
        return json.loads(json.dumps(view))


def _section(
    owner: type, raw: dict[str, Any], source: str, prefix: str, nested: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The values in ``raw`` of ``owner``'s fields but ``nested`` ones, each checked by
    ``validation.checked`` (lists become tuples); a key that starts with ``_`` is a comment."""
    known = [f.name for f in dataclasses.fields(owner) if f.name != "source"]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key.startswith("_"):
            continue
        if key not in known:
            raise InputError(f"{source}: unknown key {prefix}{key} (known: {', '.join(known)})")
        if key in nested:
            continue
        value = checked(f"{source}: {prefix}{key}", owner, key, value)
        values[key] = tuple(value) if isinstance(value, list) else value
    return values
