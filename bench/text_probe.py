"""Does the caption reach the DiT? For one caption per sound class of a data folder's held-out clips,
with no picture and no audio prompt (the text-control condition of ``bench/sync_eval.py``):

- the cross-attention mass per token group in each DiT layer (video, the caption's words, the caption's
  padding, the audio prompt), beside each group's share of the tokens (what uniform attention gives);
- how far apart the denoised latents of the class captions are, relative to their size, at a few
  noise levels (0 would be a model that ignores the caption);
- the class recovered from short generations (``--per-class`` clips each, ≤ 5 s): from the caption
  alone, and from the caption with the clip's picture, by the same nearest-centroid classifier as
  ``sync_eval.py`` (a quick look; ``sync_eval.py`` gives the figure).

    .venv/bin/python bench/text_probe.py --data /work/data/demo2 --model demo
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audiox_core.model.dit import Conditions  # noqa: E402
from audiox_core.model.generate import SamplingSettings, audio_prompt_tensor, stack_video  # noqa: E402
from audiox_core.model.longform import SceneRequest, generate_scenes  # noqa: E402
from audiox_core.model.runtime import LoadedModel, load_model  # noqa: E402
from audiox_core.train.evaluation import LogMelCentroids  # noqa: E402
from audiox_core.train.examples import Example, decode_audio, decode_example, load_examples  # noqa: E402


def _attention_mass(model: LoadedModel, captions: list[str], sigma: float) -> tuple[list[dict[str, float]], float]:
    """Per layer, the mean attention mass on each token group; and the captions' denoised spread."""
    cfg, net = model.config, model.network
    n, size = len(captions), cfg.video.clip.image_size
    video = stack_video(cfg, [np.zeros((0, size, size, 3), np.uint8)] * n)
    prompts = torch.stack([audio_prompt_tensor(cfg, None) for _ in range(n)])
    text = model.text_encoder(captions)
    noise = torch.randn(
        n, cfg.audio.autoencoder.latent_dim, cfg.audio.n_tokens, generator=torch.Generator().manual_seed(0)
    )
    words = text.norm(dim=-1) > 0  # (B, L)
    n_video, n_text = cfg.video.n_tokens, text.shape[1]
    layers: list[dict[str, float]] = []

    def hook(module: torch.nn.Module, inputs: tuple, _out: torch.Tensor) -> None:
        x, (k, _v) = inputs
        q = module.to_q(x).view(x.shape[0], x.shape[1], module.heads, -1).transpose(1, 2)
        k = k.repeat_interleave(module.heads // module.kv_heads, dim=1)
        w = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1).mean(dim=(1, 2))  # (B, S)
        t = w[:, n_video : n_video + n_text]
        layers.append(
            {
                "video": float(w[:, :n_video].sum(-1).mean()),
                "words": float((t * words).sum(-1).mean()),
                "padding": float((t * ~words).sum(-1).mean()),
                "audio": float(w[:, n_video + n_text :].sum(-1).mean()),
            }
        )

    dit = net.model.model
    handles = [layer.cross_attn.register_forward_hook(hook) for layer in dit.transformer.layers]
    try:
        with torch.no_grad():
            cond = net.condition(video, text, prompts, noise, torch.zeros(n, dtype=torch.bool))
            x = torch.randn(1, cfg.dit.io_channels, cfg.latent_frames, generator=torch.Generator().manual_seed(1))
            x = x.expand(n, -1, -1) * sigma
            out = net.denoise(
                x, torch.tensor(sigma), Conditions(net.cross_attention_kv(cond), None, net.pooled_text(text)), 1.0
            )
    finally:
        for h in handles:
            h.remove()
    spread = (out[:, None] - out[None]).flatten(2).norm(dim=-1).sum() / (n * (n - 1))
    return layers, float(spread / out.flatten(1).norm(dim=-1).mean())


def _recovered(model: LoadedModel, clips: list[Example], classifier: LogMelCentroids, picture: bool) -> int:
    cfg = model.config
    size, fps = cfg.video.clip.image_size, cfg.video.video_fps
    none = np.zeros((0, size, size, 3), np.uint8)
    scenes = []
    for i, e in enumerate(clips):
        frames = decode_example(e, sample_rate=cfg.sample_rate, fps=fps, size=size).frames if picture else none
        scenes.append(SceneRequest(frames, e.caption, 2000 + i, min(e.seconds, cfg.video.window_s)))
    sounds = [a.float().numpy() for a in generate_scenes(model, scenes, SamplingSettings())]
    return sum(classifier.predict(s) == e.sound_class for e, s in zip(clips, sounds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="a folder made by `audiox-studio train data build`")
    ap.add_argument("--model", default="demo")
    ap.add_argument("--per-class", type=int, default=2, help="generations per class for the quick class check")
    args = ap.parse_args()
    model = load_model(args.model, device="cpu")
    rate = model.config.sample_rate
    by_class: dict[str, list[Example]] = defaultdict(list)
    for e in load_examples(args.data, split="heldout").examples:
        if e.sound_class:
            by_class[e.sound_class].append(e)
    captions = [v[0].caption for v in by_class.values()]
    n_tokens = model.config.video.n_tokens + model.config.text.max_length + model.config.audio.n_tokens
    words = sum(len(model.text_encoder.tokenize([c])[1][0].nonzero()) for c in captions) / len(captions)
    print(f"model {model.label}; {len(captions)} class captions, {words:.1f} words each of {n_tokens} tokens")
    print(f"uniform attention would give the words {words / n_tokens:.3f}")
    for sigma in (0.3, 1.0, 5.0):
        layers, spread = _attention_mass(model, captions, sigma)
        for i, m in enumerate(layers):
            print(f"sigma {sigma} layer {i}: " + " ".join(f"{k} {v:.3f}" for k, v in m.items()))
        print(f"sigma {sigma}: denoised latents of the class captions differ by {spread:.4f} of their size")
    real = {e.id: decode_audio(e.audio, rate) for v in by_class.values() for e in v}
    classifier = LogMelCentroids(rate).fit({c: [real[e.id] for e in v] for c, v in by_class.items()})
    clips = [e for v in by_class.values() for e in v[: args.per_class]]
    alone, seen = _recovered(model, clips, classifier, False), _recovered(model, clips, classifier, True)
    print(f"class recovered: caption alone {alone}/{len(clips)}, caption with the picture {seen}/{len(clips)}")


if __name__ == "__main__":
    main()
