"""AudioX model configuration: the official ``config.json`` parsed once into frozen dataclasses (and our ``studio``)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn, get_args

from audiox_core.errors import ModelError


@dataclass(frozen=True)
class AutoencoderConfig:
    """Oobleck VAE: encoder emits mean ‖ scale (2·latent_dim channels), decoder takes latent_dim."""

    io_channels: int = 2
    channels: int = 128
    c_mults: tuple[int, ...] = (1, 2, 4, 8, 16)
    strides: tuple[int, ...] = (2, 4, 4, 8, 8)
    latent_dim: int = 64
    # The official OobleckDecoder applies a final tanh unless its config says otherwise; AudioX's
    # config.json says ``"final_tanh": false`` for both VAEs, so the release never uses it.
    final_tanh: bool = True

    @property
    def hop(self) -> int:
        """Audio samples per latent frame (the product of the strides)."""
        return math.prod(self.strides)


@dataclass(frozen=True)
class ClipVisionConfig:
    """The fields of transformers' CLIPVisionConfig that matter; defaults are ViT-B/32."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    projection_dim: int = 512  # visual_projection: in the checkpoint, unused (AudioX reads last_hidden_state)
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    image_size: int = 224
    patch_size: int = 32
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5

    @property
    def tokens_per_frame(self) -> int:
        """Patch tokens plus the class token: 7·7 + 1 = 50 for ViT-B/32 at 224²."""
        return (self.image_size // self.patch_size) ** 2 + 1


@dataclass(frozen=True)
class VideoConditionerConfig:
    """The CLIP video conditioner: ``video_fps`` is read from config.json, the other sizes are the official
    code's constants (``studio.video`` overrides them)."""

    clip: ClipVisionConfig = field(default_factory=ClipVisionConfig)
    video_fps: int = 5
    window_s: int = 10  # seconds of video per generation window
    n_tokens: int = 128  # the window's n_frames · tokens_per_frame CLIP tokens are pooled to this many
    temporal_depth: int = 4  # the temporal transformer, across the frames at each CLIP token position
    temporal_heads: int = 16
    temporal_dim_head: int = 64
    temporal_mlp_dim: int = 3072

    @property
    def n_frames(self) -> int:
        return self.video_fps * self.window_s


# The text encoders that can be built: the official T5 from a local folder, a byte-level stand-in, or
# our own trainable word embedding over a vocabulary the config lists.
TextKind = Literal["t5", "byte-t5", "words"]
TEXT_KINDS: tuple[TextKind, ...] = get_args(TextKind)


@dataclass(frozen=True)
class TextConditionerConfig:
    """``t5`` loads T5 from a local folder; ``byte-t5`` is a random tiny T5 over UTF-8 bytes (tests);
    ``words`` is a learned embedding of each word of ``vocabulary`` (its weights are in the model's
    state dict; a word outside the vocabulary is one shared "unknown" token)."""

    kind: TextKind = "t5"
    t5_model_name: str = "t5-base"
    max_length: int = 128
    byte_t5_layers: int = 1
    byte_t5_heads: int = 2
    vocabulary: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskPrompts:
    """The text a model understands for each cue kind, which drafted cue sheets use (a producer's own
    prompt always wins). Defaults: the official AudioX release's task prompts."""

    foley: str = "Generate general audio for the video"
    music: str = "Generate music for the video"


@dataclass(frozen=True)
class SyncConfig:
    """Time-aligned video conditioning (ours, absent from official configs): per-frame features of the
    picture and its frame differences at the video rate, resampled to the latent frame rate and added
    to the DiT's input tokens at the same time positions through a zero-initialised projection.
    ``dim`` 0: off (the official architecture)."""

    dim: int = 0
    channels: int = 16  # width of the per-frame convolutional encoder
    kernel: int = 5  # frames each temporal convolution sees


@dataclass(frozen=True)
class InpaintConfig:
    """How inpainting requests reach the model (ours, absent from official configs). ``channels``: the
    DiT reads the keep-mask and the masked latents as extra input channels (stable-audio-tools'
    inpainting model), through a zero-initialised projection; ``guidance``: the sampler is steered to
    the previous latents outside the spans too (model/inpaint.py; every model without the channels)."""

    channels: bool = False
    guidance: bool = True


@dataclass(frozen=True)
class AudioConditionerConfig:
    """The audio prompt, encoded by its own VAE to ``n_tokens`` (215 in the official code).

    ``prompt_samples`` = None derives the length: the 10 s window at the model rate (441 000) when
    that encodes to ``n_tokens``, else exactly ``n_tokens`` latent frames of audio.
    """

    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    n_tokens: int = 215
    prompt_samples: int | None = None


@dataclass(frozen=True)
class DiTConfig:
    """The diffusion transformer; defaults are the official config.json's ``model.diffusion.config``."""

    io_channels: int = 64  # the VAE's latent_dim
    embed_dim: int = 1536
    depth: int = 24
    num_heads: int = 24
    cond_token_dim: int = 768
    global_cond_dim: int = 1536  # to_global_embed's input: in the checkpoint, unused by AudioX
    timestep_features_dim: int = 256  # this and ff_mult are fixed in the official code, not in config.json
    ff_mult: int = 4
    sync_dim: int = 0  # the time-aligned video features' width (SyncConfig.dim); 0: none
    global_text: bool = False  # ours: the pooled text tokens as global condition (global_cond_ids [text_prompt])
    inpaint_channels: bool = False  # ours: keep-mask + masked latents at the input (InpaintConfig.channels)

    @property
    def dim_head(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def kv_heads(self) -> int:
        """Cross-attention key/value heads: the condition width split into heads of dim_head."""
        return self.cond_token_dim // self.dim_head

    @property
    def rotary_dim(self) -> int:
        """Rotary width per head: max(dim_head / 2, 32), as the official transformer computes it."""
        return max(self.dim_head // 2, 32)


@dataclass(frozen=True)
class AudioXConfig:
    sample_rate: int = 44100
    audio_channels: int = 2
    sample_size: int = 485100
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    video: VideoConditionerConfig = field(default_factory=VideoConditionerConfig)
    text: TextConditionerConfig = field(default_factory=TextConditionerConfig)
    audio: AudioConditionerConfig = field(default_factory=AudioConditionerConfig)
    cond_dim: int = 768
    cross_attention_cond_ids: tuple[str, ...] = ("video_prompt", "text_prompt", "audio_prompt")
    sync: SyncConfig = field(default_factory=SyncConfig)
    inpaint: InpaintConfig = field(default_factory=InpaintConfig)
    prompts: TaskPrompts = field(default_factory=TaskPrompts)
    # The DiT's latents are the VAE's divided by this (``model.pretransform.scale``, as stable-audio-tools
    # reads it; absent from AudioX's config: 1), so that they are near unit variance.
    latent_scale: float = 1.0

    @property
    def latent_frames(self) -> int:
        return self.sample_size // self.autoencoder.hop

    @property
    def window_samples(self) -> int:
        """Samples the model produces per window: 236 latent frames · 2048 = 483 328 (10.96 s)."""
        return self.latent_frames * self.autoencoder.hop

    @property
    def audio_prompt_samples(self) -> int:
        if self.audio.prompt_samples is not None:
            return self.audio.prompt_samples
        window = self.video.window_s * self.sample_rate
        strides = self.audio.autoencoder.strides
        return (
            window
            if encoded_length(window, strides) == self.audio.n_tokens
            else self.audio.n_tokens * self.audio.autoencoder.hop
        )

    @classmethod
    def from_json(cls, path: str | Path, *, clip_vision: str | Path | None = None) -> AudioXConfig:
        """Parse an official-format config.json; ModelError names the file and any missing, mistyped or unknown key.

        ``clip_vision``: a CLIPVisionConfig JSON for the CLIP tower (the official code always uses
        ViT-B/32, which is the default here; small test towers need their own).
        """
        raw = _read_json(Path(path), "model config")
        if clip_vision is not None:
            fields = {f.name for f in dataclasses.fields(ClipVisionConfig)}
            tower = {k: v for k, v in _read_json(Path(clip_vision), "CLIP vision config").items() if k in fields}
            raw = {**raw, "studio": {**raw.get("studio", {}), "clip_vision": tower}}
        return _Parser(str(path)).config(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AudioXConfig:
        """Parse an official-format config already read; ModelError names any bad key as in ``from_json``."""
        return _Parser("model config").config(raw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ModelError(f"{path}: cannot read {what} ({e.strerror})") from e
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: {what} is not valid JSON ({e})") from e


# The conditioner ids of the official config and the type each must have.
_CONDITIONER_TYPES = {"video_prompt": "clip", "text_prompt": "t5", "audio_prompt": "audio_autoencoder"}
_CONDITIONER_WHERE = "model.conditioning.configs[{}].config"


def _key(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


class _Parser:
    """One pass over an official-format config; every problem is a ModelError naming the source
    (the file, or "model config" for a dict) and the dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, problem: str) -> NoReturn:
        raise ModelError(f"{self.source}: {problem}")

    def get(self, node: Any, key: str, where: str) -> Any:
        if not isinstance(node, dict) or key not in node:
            self.fail(f"missing key {_key(where, key)}")
        return node[key]

    def section(self, node: Any, key: str, where: str) -> dict[str, Any]:
        value = self.get(node, key, where)
        if not isinstance(value, dict):
            self.fail(f"{_key(where, key)} must be an object (got {type(value).__name__})")
        return value

    def integer(self, node: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
        value = default if default is not None and key not in node else self.get(node, key, where)
        try:
            return int(value)
        except (TypeError, ValueError):
            self.fail(f"{_key(where, key)} must be an integer (got {value!r})")

    def positive(self, node: dict[str, Any], key: str, where: str, default: float) -> float:
        value = node.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            self.fail(f"{_key(where, key)} must be a number above 0 (got {value!r})")
        return float(value)

    def integers(self, node: Any, key: str, where: str) -> tuple[int, ...]:
        value = self.get(node, key, where)
        try:
            return tuple(int(v) for v in value)
        except (TypeError, ValueError):
            self.fail(f"{_key(where, key)} must be a list of integers (got {value!r})")

    def expect_type(self, node: Any, expected: str, where: str) -> None:
        got = self.get(node, "type", where)
        if got != expected:
            self.fail(f"unknown type {got!r} at {where}.type (expected {expected!r})")

    def studio(self, studio: dict[str, Any], name: str, cls: type, parsed: tuple[str, ...] = ()) -> dict[str, Any]:
        """The ``studio.<name>`` overrides of ``cls``'s fields, except those the official part sets (``parsed``)."""
        block = studio.get(name, {})
        if not isinstance(block, dict):
            self.fail(f"studio.{name} must be an object (got {type(block).__name__})")
        known = [f.name for f in dataclasses.fields(cls) if f.name not in parsed]
        unknown = [k for k in block if k not in known]
        if unknown:
            self.fail(f"unknown key studio.{name}.{unknown[0]} (known: {', '.join(known)})")
        return block

    def autoencoder(self, node: Any, where: str) -> AutoencoderConfig:
        self.expect_type(node, "autoencoder", where)
        cw = f"{where}.config"
        cfg = self.section(node, "config", where)
        enc, dec = self.section(cfg, "encoder", cw), self.section(cfg, "decoder", cw)
        self.expect_type(enc, "oobleck", f"{cw}.encoder")
        self.expect_type(dec, "oobleck", f"{cw}.decoder")
        self.expect_type(self.section(cfg, "bottleneck", cw), "vae", f"{cw}.bottleneck")
        ew, dw = f"{cw}.encoder.config", f"{cw}.decoder.config"
        enc_cfg, dec_cfg = self.section(enc, "config", f"{cw}.encoder"), self.section(dec, "config", f"{cw}.decoder")
        ae = AutoencoderConfig(
            io_channels=self.integer(cfg, "io_channels", cw),
            channels=self.integer(enc_cfg, "channels", ew),
            c_mults=self.integers(enc_cfg, "c_mults", ew),
            strides=self.integers(enc_cfg, "strides", ew),
            latent_dim=self.integer(cfg, "latent_dim", cw),
            final_tanh=bool(dec_cfg.get("final_tanh", AutoencoderConfig.final_tanh)),
        )
        if self.integer(enc_cfg, "latent_dim", ew) != 2 * ae.latent_dim:
            self.fail(f"{ew}.latent_dim must be 2·{cw}.latent_dim (VAE mean ‖ scale)")
        mirrored = (
            self.integers(dec_cfg, "c_mults", dw),
            self.integers(dec_cfg, "strides", dw),
            self.integer(dec_cfg, "channels", dw),
        )
        if mirrored != (ae.c_mults, ae.strides, ae.channels):
            self.fail(f"{dw} must mirror the encoder (channels, c_mults, strides)")
        if self.integer(cfg, "downsampling_ratio", cw) != ae.hop:
            self.fail(f"{cw}.downsampling_ratio is not the product of the strides")
        return ae

    def conditioner_configs(self, conditioning: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The ``config`` of the video, text and audio conditioners, by id, each of its official type."""
        configs = self.get(conditioning, "configs", "model.conditioning")
        by_id = {c.get("id"): c for c in configs if isinstance(c, dict)} if isinstance(configs, list) else {}
        found = {}
        for cid, kind in _CONDITIONER_TYPES.items():
            if cid not in by_id:
                self.fail(f"missing key model.conditioning.configs[id={cid}]")
            self.expect_type(by_id[cid], kind, f"model.conditioning.configs[{cid}]")
            found[cid] = self.section(by_id[cid], "config", f"model.conditioning.configs[{cid}]")
        return found

    def dit(self, diffusion: dict[str, Any]) -> DiTConfig:
        self.expect_type(diffusion, "dit", "model.diffusion")
        dw = "model.diffusion.config"
        raw = self.section(diffusion, "config", "model.diffusion")
        if raw.get("transformer_type", "continuous_transformer") != "continuous_transformer":
            self.fail(
                f"unknown type {raw['transformer_type']!r} at {dw}.transformer_type (expected 'continuous_transformer')"
            )
        return DiTConfig(
            io_channels=self.integer(raw, "io_channels", dw),
            embed_dim=self.integer(raw, "embed_dim", dw),
            depth=self.integer(raw, "depth", dw),
            num_heads=self.integer(raw, "num_heads", dw),
            cond_token_dim=self.integer(raw, "cond_token_dim", dw),
            global_cond_dim=self.integer(raw, "global_cond_dim", dw, default=0),
        )

    def video(self, video_cfg: dict[str, Any], raw: dict[str, Any], studio: dict[str, Any]) -> VideoConditionerConfig:
        # The frame rate sits in the conditioner's config, in older configs at the top level.
        top_fps = self.integer(raw, "video_fps", "", default=VideoConditionerConfig.video_fps)
        return VideoConditionerConfig(
            clip=ClipVisionConfig(**self.studio(studio, "clip_vision", ClipVisionConfig)),
            video_fps=self.integer(video_cfg, "video_fps", _CONDITIONER_WHERE.format("video_prompt"), default=top_fps),
            **self.studio(studio, "video", VideoConditionerConfig, parsed=("clip", "video_fps")),
        )

    def text(self, text_cfg: dict[str, Any], studio: dict[str, Any]) -> TextConditionerConfig:
        overrides = dict(self.studio(studio, "text", TextConditionerConfig, parsed=("t5_model_name", "max_length")))
        kind = overrides.get("kind", TextConditionerConfig.kind)
        if kind not in TEXT_KINDS:
            self.fail(f"unknown text encoder kind {kind!r} at studio.text.kind (known: {', '.join(TEXT_KINDS)})")
        where = _CONDITIONER_WHERE.format("text_prompt")
        vocabulary = overrides.pop("vocabulary", [])
        if not isinstance(vocabulary, list) or not all(isinstance(w, str) and w.strip() for w in vocabulary):
            self.fail("studio.text.vocabulary must be a list of words")
        if kind == "words" and not vocabulary:
            self.fail("studio.text.vocabulary must list the words of a 'words' text encoder")
        return TextConditionerConfig(
            t5_model_name=str(text_cfg.get("t5_model_name", TextConditionerConfig.t5_model_name)),
            max_length=self.integer(text_cfg, "max_length", where, default=TextConditionerConfig.max_length),
            vocabulary=tuple(w.lower() for w in vocabulary),
            **overrides,
        )

    def audio(self, audio_cfg: dict[str, Any], studio: dict[str, Any]) -> AudioConditionerConfig:
        where = _CONDITIONER_WHERE.format("audio_prompt")
        return AudioConditionerConfig(
            autoencoder=self.autoencoder(
                self.get(audio_cfg, "pretransform_config", where), f"{where}.pretransform_config"
            ),
            **self.studio(studio, "audio", AudioConditionerConfig, parsed=("autoencoder",)),
        )

    def config(self, raw: Any) -> AudioXConfig:
        model_type = self.get(raw, "model_type", "")
        if model_type != "diffusion_cond":
            self.fail(f"unknown model_type {model_type!r} (expected 'diffusion_cond')")
        studio = raw.get("studio", {})
        if not isinstance(studio, dict):
            self.fail(f"studio must be an object (got {type(studio).__name__})")
        model = self.section(raw, "model", "")
        diffusion = self.section(model, "diffusion", "model")
        conditioning = self.section(model, "conditioning", "model")
        conds = self.conditioner_configs(conditioning)
        sync = SyncConfig(**self.studio(studio, "sync", SyncConfig))
        inpaint = InpaintConfig(**self.studio(studio, "inpaint", InpaintConfig))
        dit = self.dit(diffusion)
        config = AudioXConfig(
            sample_rate=self.integer(raw, "sample_rate", ""),
            audio_channels=self.integer(raw, "audio_channels", ""),
            sample_size=self.integer(raw, "sample_size", ""),
            autoencoder=self.autoencoder(self.get(model, "pretransform", "model"), "model.pretransform"),
            dit=dataclasses.replace(
                dit, sync_dim=sync.dim, global_text=self.global_text(diffusion), inpaint_channels=inpaint.channels
            ),
            video=self.video(conds["video_prompt"], raw, studio),
            text=self.text(conds["text_prompt"], studio),
            audio=self.audio(conds["audio_prompt"], studio),
            cond_dim=self.integer(conditioning, "cond_dim", "model.conditioning"),
            cross_attention_cond_ids=tuple(self.get(diffusion, "cross_attention_cond_ids", "model.diffusion")),
            sync=sync,
            inpaint=inpaint,
            prompts=TaskPrompts(**self.studio(studio, "prompts", TaskPrompts)),
            latent_scale=self.positive(self.get(model, "pretransform", "model"), "scale", "model.pretransform", 1.0),
        )
        self.validate(config)
        return config

    def global_text(self, diffusion: dict[str, Any]) -> bool:
        """``global_cond_ids``: [] as AudioX has it, or [text_prompt] (the pooled caption added to the
        timestep embedding, stable-audio-tools' global condition)."""
        ids = diffusion.get("global_cond_ids", [])
        if ids not in ([], ["text_prompt"]):
            self.fail(f"model.diffusion.global_cond_ids must be [] or [text_prompt] (got {ids!r})")
        return ids == ["text_prompt"]

    def validate(self, config: AudioXConfig) -> None:
        if config.cross_attention_cond_ids != ("video_prompt", "text_prompt", "audio_prompt"):
            self.fail("model.diffusion.cross_attention_cond_ids must be [video_prompt, text_prompt, audio_prompt]")
        if config.dit.io_channels != config.autoencoder.latent_dim:
            self.fail("model.diffusion.config.io_channels must equal the VAE latent_dim")
        if config.dit.cond_token_dim != config.cond_dim or config.video.clip.hidden_size != config.cond_dim:
            self.fail("cond_token_dim, cond_dim and the CLIP width must agree")
        if config.dit.embed_dim % config.dit.num_heads or config.cond_dim % config.dit.dim_head:
            self.fail("embed_dim and cond_dim must be multiples of the head width")
        if config.dit.global_text and config.dit.global_cond_dim != config.cond_dim:
            self.fail("model.diffusion.config.global_cond_dim must equal cond_dim for global_cond_ids [text_prompt]")
        if encoded_length(config.audio_prompt_samples, config.audio.autoencoder.strides) != config.audio.n_tokens:
            self.fail("the audio prompt length does not encode to the audio token count")
        if not all(isinstance(v, bool) for v in dataclasses.astuple(config.inpaint)):
            self.fail("studio.inpaint.channels and studio.inpaint.guidance must be true or false")
        if not (config.inpaint.channels or config.inpaint.guidance):
            self.fail("studio.inpaint.guidance false needs studio.inpaint.channels true (nothing would inpaint)")
        if config.dit.num_heads % config.dit.kv_heads:
            self.fail("num_heads must be a multiple of the cross-attention key/value heads")


def encoded_length(samples: int, strides: tuple[int, ...]) -> int:
    """Latent frames the Oobleck encoder yields: each stride-s conv (k 2s, pad ceil(s/2)) floors L/s."""
    for s in strides:
        samples = (samples + 2 * math.ceil(s / 2) - 2 * s) // s + 1
    return samples
