"""The AudioX conditioners (CLIP video, T5 or ``words`` text, VAE audio prompt); tokens ordered video | text | audio."""

from __future__ import annotations

import re
from pathlib import Path
from typing import assert_never

import torch
import torch.nn.functional as F
from torch import nn

from audiox_core.errors import ModelError
from audiox_core.model.autoencoder import Pretransform
from audiox_core.model.config import (
    AudioConditionerConfig,
    TextConditionerConfig,
    VideoConditionerConfig,
)

# CLIP's image normalisation (openai/clip-vit-base-patch32 preprocessor).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class TemporalAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim), nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, F, dim)
        n, f, _ = x.shape
        q, k, v = (t.view(n, f, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v)  # (N, H, F, D)
        return self.to_out(out.transpose(1, 2).reshape(n, f, -1))


class TemporalFeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Identity(), nn.Linear(hidden, dim), nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class TemporalTransformer(nn.Module):
    """Pre-LN transformer over the frames of one token position, with a final LayerNorm."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [PreNorm(dim, TemporalAttention(dim, heads, dim_head)), PreNorm(dim, TemporalFeedForward(dim, mlp_dim))]
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return self.norm(x)


def _clip_tower(cfg: VideoConditionerConfig) -> nn.Module:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    c = cfg.clip
    config = CLIPVisionConfig(
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        projection_dim=c.projection_dim,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        image_size=c.image_size,
        patch_size=c.patch_size,
        hidden_act=c.hidden_act,
        layer_norm_eps=c.layer_norm_eps,
        attn_implementation="sdpa",
    )
    return CLIPVisionModelWithProjection(config)


class VideoConditioner(nn.Module):
    """CLIP vision tower per frame → temporal transformer per token position → raw-reshape pooling."""

    def __init__(self, cfg: VideoConditionerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dim, tokens = cfg.clip.hidden_size, cfg.clip.tokens_per_frame
        # Registration order matches the checkpoint's key order.
        self.empty_visual_feat = nn.Parameter(torch.zeros(1, cfg.n_tokens, dim))
        self.Temp_pos_embedding = nn.Parameter(torch.randn(1, cfg.n_frames, dim))
        self.visual_encoder_model = _clip_tower(cfg)
        self.proj = nn.Linear(cfg.n_frames * tokens, cfg.n_tokens)
        self.Temp_transformer = TemporalTransformer(
            dim, cfg.temporal_depth, cfg.temporal_heads, cfg.temporal_dim_head, cfg.temporal_mlp_dim
        )

    def forward(self, video: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """video (B, F, 3, H, W) with values 0…255 → (B, n_tokens, dim). Absent videos are not
        encoded: their result is the learned empty feature. ``present`` (B,) bool says which are
        there (an all-black picture is a picture); None: the all-zero ones are absent (the official rule)."""
        out = self.empty_visual_feat.expand(video.shape[0], -1, -1).clone()
        if present is None:
            present = (video.flatten(1) != 0).any(dim=1)  # (B,)
        if present.any():
            out[present] = self.encode(video[present]).to(out.dtype)
        return out

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        b, f = video.shape[:2]
        assert f == self.cfg.n_frames, f"{video.shape=} {self.cfg.n_frames=}"
        mean = torch.tensor(CLIP_MEAN, device=video.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=video.device).view(1, 3, 1, 1)
        pixels = ((video.flatten(0, 1) / 255.0 - mean) / std).to(self.Temp_pos_embedding.dtype)
        hidden = self.visual_encoder_model(pixel_values=pixels).last_hidden_state  # (B·F, P, dim)
        p, dim = hidden.shape[1:]
        per_token = hidden.view(b, f, p, dim).transpose(1, 2).reshape(b * p, f, dim)  # (B·P, F, dim)
        per_token = self.Temp_transformer(per_token + self.Temp_pos_embedding[:, :f])
        frames_major = per_token.view(b, p, f, dim).transpose(1, 2).reshape(b, f * p, dim)  # (B, F·P, dim)
        # Official quirk: a raw reshape, not a transpose, before the token-pooling projection.
        return self.proj(frames_major.reshape(-1, f * p)).reshape(b, self.cfg.n_tokens, dim)


class AudioPromptConditioner(nn.Module):
    """A second copy of the VAE encodes the audio prompt, projected to the condition width."""

    def __init__(self, cfg: AudioConditionerConfig, dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.empty_audio_feat = nn.Parameter(torch.zeros(1, cfg.n_tokens, dim))
        self.proj_out = nn.Linear(cfg.autoencoder.latent_dim, dim)
        self.pretransform = Pretransform(cfg.autoencoder)

    def forward(self, audio: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """audio (B, 2, prompt_samples), noise (B, latent, n_tokens) for the VAE posterior → (B, n_tokens, dim).

        Silent (all-zero) prompts are not encoded: their result is the learned empty feature anyway.
        """
        b = audio.shape[0]
        out = self.empty_audio_feat.expand(b, -1, -1).clone()
        present = (audio.flatten(1) != 0).any(dim=1)  # (B,)
        if present.any():
            latent = self.pretransform.encode(audio[present], noise=noise[present])  # (P, latent, N)
            assert latent.shape[-1] == self.cfg.n_tokens, f"{latent.shape=} {self.cfg.n_tokens=}"
            out[present] = self.proj_out(latent.transpose(1, 2)).to(out.dtype)
        return out


class WordEmbedding(nn.Module):
    """The ``words`` text encoder: one learned vector per vocabulary word (0 padding, 1 unknown),
    in the model's state dict as ``conditioner.conditioners.text_prompt.embedding.weight``."""

    def __init__(self, cfg: TextConditionerConfig, dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.index = {w: i + 2 for i, w in enumerate(cfg.vocabulary)}
        self.embedding = nn.Embedding(len(cfg.vocabulary) + 2, dim, padding_idx=0)

    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, max_length) ids and mask: each word (letters, lower case) in order, unknown ones as 1."""
        ids = torch.zeros(len(texts), self.cfg.max_length, dtype=torch.long)
        for i, text in enumerate(texts):
            row = [self.index.get(w, 1) for w in words(text)][: self.cfg.max_length]
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids, (ids != 0).long()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, L, dim), zero at padding
        return self.embedding(ids)


def words(text: str) -> list[str]:
    """The words a ``words`` text encoder reads: runs of letters, lower case."""
    return re.findall(r"[a-z]+", text.lower())


class TextEncoder:
    """T5 encoder and tokenizer, outside the nn.Module tree (the checkpoint holds no T5 weights)."""

    def __init__(
        self, cfg: TextConditionerConfig, dim: int, t5_dir: Path | None, words: WordEmbedding | None = None
    ) -> None:
        """``words``: the network's own word embedding, for a ``words`` config (it learns with the model)."""
        self.cfg = cfg
        match cfg.kind:
            case "byte-t5":
                self.model, self.tokenize = _byte_t5(cfg, dim)
            case "t5":
                self.model, self.tokenize = _local_t5(cfg, t5_dir)
            case "words":
                assert words is not None, "a 'words' text encoder is the network's own (AudioX.text_words)"
                self.model, self.tokenize = words, words.tokenize
                return
            case _:
                assert_never(cfg.kind)
        self.model.eval().requires_grad_(False)

    @property
    def trainable(self) -> bool:
        """Whether the encoder is part of the network (``words``): training feeds it ids, not tokens."""
        return self.cfg.kind == "words"

    def to(self, device: torch.device, dtype: torch.dtype) -> TextEncoder:
        self.model.to(device=device, dtype=dtype)
        return self

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        """(B, max_length, dim): last hidden state, zeroed at padding positions."""
        ids, mask = self.tokenize(texts)
        device = next(self.model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        if self.trainable:
            return self.model(ids).float() * mask[..., None].float()
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden.float() * mask[..., None].float()


def require_t5_dir(cfg: TextConditionerConfig, t5_dir: Path | None) -> Path:
    """``t5_dir`` when it looks like a local T5 folder (a config.json in it); else a ModelError saying how to give one."""
    hint = f"set AUDIOX_T5_DIR to a local {cfg.t5_model_name} folder"
    if t5_dir is None:
        raise ModelError(f"no T5 folder given ({hint})")
    if not (t5_dir / "config.json").is_file():
        raise ModelError(f"{t5_dir}: T5 folder missing or has no config.json ({hint})")
    return t5_dir


def _local_t5(cfg: TextConditionerConfig, t5_dir: Path | None):
    from transformers import AutoTokenizer, T5EncoderModel

    t5_dir = require_t5_dir(cfg, t5_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(t5_dir), local_files_only=True)
        model = T5EncoderModel.from_pretrained(str(t5_dir), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelError(f"{t5_dir}: cannot load T5 ({e})") from e

    def tokenize(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = tokenizer(texts, padding="max_length", truncation=True, max_length=cfg.max_length, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]

    return model, tokenize


def _byte_t5(cfg: TextConditionerConfig, dim: int):
    """A random tiny T5 over UTF-8 bytes (ids = byte + 3, 1 = end, 0 = pad) for tests without T5 weights."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=259,
        d_model=dim,
        d_kv=dim // cfg.byte_t5_heads,
        d_ff=2 * dim,
        num_layers=cfg.byte_t5_layers,
        num_heads=cfg.byte_t5_heads,
        dropout_rate=0.0,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = T5EncoderModel(config)

    def tokenize(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.zeros(len(texts), cfg.max_length, dtype=torch.long)
        for i, text in enumerate(texts):
            row = [b + 3 for b in text.encode("utf-8")][: cfg.max_length - 1] + [1]
            ids[i, : len(row)] = torch.tensor(row)
        return ids, (ids != 0).long()

    return model, tokenize
