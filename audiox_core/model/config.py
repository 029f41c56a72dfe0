"""AudioX model configuration: official-format ``config.json`` parsed once into frozen dataclasses.

The official code hard-codes several sizes (50 CLIP tokens per frame, a 10 s window, 128 video
tokens, 215 audio tokens, 768-wide conditioning). Here they are fields with the official values as
defaults, so a genuinely tiny model can be described. An optional top-level ``"studio"`` block in
the JSON overrides them (our extension; the official loader ignores unknown keys).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audiox_core.errors import ModelError


@dataclass(frozen=True)
class AutoencoderConfig:
    """Oobleck VAE: encoder emits mean ‖ scale (2·latent_dim channels), decoder takes latent_dim."""

    io_channels: int = 2
    channels: int = 128
    c_mults: tuple[int, ...] = (1, 2, 4, 8, 16)
    strides: tuple[int, ...] = (2, 4, 4, 8, 8)
    latent_dim: int = 64
    final_tanh: bool = False
    iterate_batch: bool = True

    @property
    def hop(self) -> int:
        """Audio samples per latent frame (the product of the strides)."""
        return math.prod(self.strides)


@dataclass(frozen=True)
class ClipVisionConfig:
    """The fields of transformers' CLIPVisionConfig that matter; defaults are ViT-B/32."""

    hidden_size: int = 768
    intermediate_size: int = 3072
    projection_dim: int = 512
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
    clip: ClipVisionConfig = field(default_factory=ClipVisionConfig)
    video_fps: int = 5
    window_s: int = 10
    n_tokens: int = 128
    temporal_depth: int = 4
    temporal_heads: int = 16
    temporal_dim_head: int = 64
    temporal_mlp_dim: int = 3072

    @property
    def n_frames(self) -> int:
        return self.video_fps * self.window_s


@dataclass(frozen=True)
class TextConditionerConfig:
    """``t5`` loads T5 from a local folder; ``byte-t5`` is a random tiny T5 over UTF-8 bytes (tests)."""

    kind: str = "t5"
    t5_model_name: str = "t5-base"
    max_length: int = 128
    byte_t5_layers: int = 1
    byte_t5_heads: int = 2


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
    io_channels: int = 64
    embed_dim: int = 1536
    depth: int = 24
    num_heads: int = 24
    cond_token_dim: int = 768
    global_cond_dim: int = 1536
    timestep_features_dim: int = 256
    ff_mult: int = 4

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

    @property
    def latent_frames(self) -> int:
        return self.sample_size // self.autoencoder.hop

    @property
    def window_samples(self) -> int:
        """Samples the model produces per window: 236 latent frames · 2048 = 483 328 (10.96 s)."""
        return self.latent_frames * self.autoencoder.hop

    @property
    def n_cond_tokens(self) -> int:
        return self.video.n_tokens + self.text.max_length + self.audio.n_tokens

    @property
    def audio_prompt_samples(self) -> int:
        if self.audio.prompt_samples is not None:
            return self.audio.prompt_samples
        window = self.video.window_s * self.sample_rate
        strides = self.audio.autoencoder.strides
        return window if encoded_length(window, strides) == self.audio.n_tokens else self.audio.n_tokens * self.audio.autoencoder.hop

    @classmethod
    def from_json(cls, path: str | Path, *, clip_vision: str | Path | None = None) -> AudioXConfig:
        """Parse an official-format config.json; ValueError names any missing key or unknown type.

        ``clip_vision``: a CLIPVisionConfig JSON for the CLIP tower (the official code always uses
        ViT-B/32, which is the default here; small test towers need their own).
        """
        raw = _read_json(Path(path), "model config")
        if clip_vision is not None:
            fields = {f.name for f in dataclasses.fields(ClipVisionConfig)}
            tower = {k: v for k, v in _read_json(Path(clip_vision), "CLIP vision config").items() if k in fields}
            raw = {**raw, "studio": {**raw.get("studio", {}), "clip_vision": tower}}
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AudioXConfig:
        return _parse(raw)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ModelError(f"{path}: cannot read {what} ({e.strerror})") from e
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: {what} is not valid JSON ({e})") from e


def _get(node: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(node, dict) or key not in node:
        raise ValueError(f"model config: missing key {where}.{key}" if where else f"model config: missing key {key}")
    return node[key]


def _expect_type(node: dict[str, Any], expected: str, where: str) -> None:
    got = _get(node, "type", where)
    if got != expected:
        raise ValueError(f"model config: unknown type {got!r} at {where}.type (expected {expected!r})")


def _parse_autoencoder(node: dict[str, Any], where: str) -> AutoencoderConfig:
    _expect_type(node, "autoencoder", where)
    cfg = _get(node, "config", where)
    enc = _get(cfg, "encoder", f"{where}.config")
    dec = _get(cfg, "decoder", f"{where}.config")
    _expect_type(enc, "oobleck", f"{where}.config.encoder")
    _expect_type(dec, "oobleck", f"{where}.config.decoder")
    bottleneck = _get(cfg, "bottleneck", f"{where}.config")
    _expect_type(bottleneck, "vae", f"{where}.config.bottleneck")
    enc_cfg = _get(enc, "config", f"{where}.config.encoder")
    dec_cfg = _get(dec, "config", f"{where}.config.decoder")
    ew, dw = f"{where}.config.encoder.config", f"{where}.config.decoder.config"
    latent_dim = int(_get(cfg, "latent_dim", f"{where}.config"))
    ae = AutoencoderConfig(
        io_channels=int(_get(cfg, "io_channels", f"{where}.config")),
        channels=int(_get(enc_cfg, "channels", ew)),
        c_mults=tuple(int(c) for c in _get(enc_cfg, "c_mults", ew)),
        strides=tuple(int(s) for s in _get(enc_cfg, "strides", ew)),
        latent_dim=latent_dim,
        final_tanh=bool(dec_cfg.get("final_tanh", True)),
        iterate_batch=bool(node.get("iterate_batch", False)),
    )
    if int(_get(enc_cfg, "latent_dim", ew)) != 2 * latent_dim:
        raise ValueError(f"model config: {ew}.latent_dim must be 2·{where}.config.latent_dim (VAE mean ‖ scale)")
    if (tuple(_get(dec_cfg, "c_mults", dw)), tuple(_get(dec_cfg, "strides", dw)), _get(dec_cfg, "channels", dw)) != (
        ae.c_mults,
        ae.strides,
        ae.channels,
    ):
        raise ValueError(f"model config: {dw} must mirror the encoder (channels, c_mults, strides)")
    if int(_get(cfg, "downsampling_ratio", f"{where}.config")) != ae.hop:
        raise ValueError(f"model config: {where}.config.downsampling_ratio is not the product of the strides")
    return ae


def _parse(raw: dict[str, Any]) -> AudioXConfig:
    if _get(raw, "model_type", "") != "diffusion_cond":
        raise ValueError(f"model config: unknown model_type {raw['model_type']!r} (expected 'diffusion_cond')")
    studio = raw.get("studio", {})
    model = _get(raw, "model", "")
    autoencoder = _parse_autoencoder(_get(model, "pretransform", "model"), "model.pretransform")
    conditioning = _get(model, "conditioning", "model")
    cond_dim = int(_get(conditioning, "cond_dim", "model.conditioning"))
    by_id = {c.get("id"): c for c in _get(conditioning, "configs", "model.conditioning")}
    for cid, kind in (("video_prompt", "clip"), ("text_prompt", "t5"), ("audio_prompt", "audio_autoencoder")):
        if cid not in by_id:
            raise ValueError(f"model config: missing key model.conditioning.configs[id={cid}]")
        _expect_type(by_id[cid], kind, f"model.conditioning.configs[{cid}]")
    video_cfg = _get(by_id["video_prompt"], "config", "model.conditioning.configs[video_prompt]")
    text_cfg = _get(by_id["text_prompt"], "config", "model.conditioning.configs[text_prompt]")
    audio_cfg = _get(by_id["audio_prompt"], "config", "model.conditioning.configs[audio_prompt]")
    diffusion = _get(model, "diffusion", "model")
    _expect_type(diffusion, "dit", "model.diffusion")
    dit_raw = _get(diffusion, "config", "model.diffusion")
    if dit_raw.get("transformer_type", "continuous_transformer") != "continuous_transformer":
        raise ValueError(f"model config: unknown type {dit_raw['transformer_type']!r} at model.diffusion.config.transformer_type")
    dw = "model.diffusion.config"
    dit = DiTConfig(
        io_channels=int(_get(dit_raw, "io_channels", dw)),
        embed_dim=int(_get(dit_raw, "embed_dim", dw)),
        depth=int(_get(dit_raw, "depth", dw)),
        num_heads=int(_get(dit_raw, "num_heads", dw)),
        cond_token_dim=int(_get(dit_raw, "cond_token_dim", dw)),
        global_cond_dim=int(dit_raw.get("global_cond_dim", 0)),
    )
    clip = ClipVisionConfig(**studio.get("clip_vision", {}))
    video = VideoConditionerConfig(
        clip=clip,
        video_fps=int(video_cfg.get("video_fps", raw.get("video_fps", 5))),
        **studio.get("video", {}),
    )
    text = TextConditionerConfig(
        t5_model_name=str(text_cfg.get("t5_model_name", "t5-base")),
        max_length=int(text_cfg.get("max_length", 128)),
        **studio.get("text", {}),
    )
    audio = AudioConditionerConfig(
        autoencoder=_parse_autoencoder(
            _get(audio_cfg, "pretransform_config", "model.conditioning.configs[audio_prompt].config"),
            "model.conditioning.configs[audio_prompt].config.pretransform_config",
        ),
        **studio.get("audio", {}),
    )
    config = AudioXConfig(
        sample_rate=int(_get(raw, "sample_rate", "")),
        audio_channels=int(_get(raw, "audio_channels", "")),
        sample_size=int(_get(raw, "sample_size", "")),
        autoencoder=autoencoder,
        dit=dit,
        video=video,
        text=text,
        audio=audio,
        cond_dim=cond_dim,
        cross_attention_cond_ids=tuple(_get(diffusion, "cross_attention_cond_ids", "model.diffusion")),
    )
    _validate(config)
    return config


def _validate(config: AudioXConfig) -> None:
    if config.cross_attention_cond_ids != ("video_prompt", "text_prompt", "audio_prompt"):
        raise ValueError("model config: model.diffusion.cross_attention_cond_ids must be [video_prompt, text_prompt, audio_prompt]")
    if config.dit.io_channels != config.autoencoder.latent_dim:
        raise ValueError("model config: model.diffusion.config.io_channels must equal the VAE latent_dim")
    if config.dit.cond_token_dim != config.cond_dim or config.video.clip.hidden_size != config.cond_dim:
        raise ValueError("model config: cond_token_dim, cond_dim and the CLIP width must agree")
    if config.dit.embed_dim % config.dit.num_heads or config.cond_dim % config.dit.dim_head:
        raise ValueError("model config: embed_dim and cond_dim must be multiples of the head width")
    if encoded_length(config.audio_prompt_samples, config.audio.autoencoder.strides) != config.audio.n_tokens:
        raise ValueError("model config: the audio prompt length does not encode to the audio token count")
    if config.dit.num_heads % config.dit.kv_heads:
        raise ValueError("model config: num_heads must be a multiple of the cross-attention key/value heads")


def encoded_length(samples: int, strides: tuple[int, ...]) -> int:
    """Latent frames the Oobleck encoder yields: each stride-s conv (k 2s, pad ceil(s/2)) floors L/s."""
    for s in strides:
        samples = (samples + 2 * math.ceil(s / 2) - 2 * s) // s + 1
    return samples
