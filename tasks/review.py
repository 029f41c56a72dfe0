"""The producer's review page: a markdown artifact per reel in the Prefect UI."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
)
from prefect.cache_policies import NO_CACHE

from audiox_core.provenance import public_uri
from audiox_core.records import LoudnessReport, ModelFacts, OutputRecord, RenderedCue
from audiox_core.reel import Analysis
from audiox_core.storage import store_for


def artifact_slug(folder: str) -> str:
    """A reel's part of its artifact keys, from its output folder name (``audiox_core/naming.py``:
    unique per source, so two reels named alike never share a review): Prefect keys allow only
    lowercase letters, digits and dashes. Stable per source, so each run adds a version."""
    return re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-") or "reel"


def review_markdown(
    reel: str,
    analysis: Analysis,
    rendered: list[RenderedCue],
    model: ModelFacts,
    mix: LoudnessReport,
    base_uri: str,
) -> str:
    """The review page's text: model, picture and mix figures, then one table row per scene with its cues."""
    by_scene: dict[int, dict[str, RenderedCue]] = {}
    for c in rendered:
        by_scene.setdefault(c.scene_index, {})[c.kind] = c
    lines = [
        f"# Soundtrack review: {reel}",
        "",
        f"**Model:** {model.label}  ",
        f"**Checkpoint sha256:** `{model.checkpoint_sha256}`  ",
        f"**Picture:** {analysis.info.video.width}×{analysis.info.video.height} at {analysis.scenes.fps} fps, "
        f"{analysis.scenes.frames} frames  ",
        f"**Mix ({mix.preset}):** {mix.mix.integrated_lufs:.1f} LUFS, LRA {mix.mix.loudness_range_lu:.1f} LU, "
        f"true peak {mix.mix.true_peak_dbtp:.1f} dBTP; limiter up to {mix.max_gain_reduction_db:.1f} dB  ",
        f"**Stems:** {', '.join(mix.stems)}  ",
        f"**Outputs:** `{base_uri}`",
        "",
        "| scene | start TC | end TC | seconds | Foley prompt | Foley seed | music prompt | music seed |",
        "|---:|---|---|---:|---|---:|---|---:|",
    ]
    for scene in analysis.scenes.scenes:
        cues = by_scene.get(scene.index, {})
        foley, music = cues.get("foley"), cues.get("music")
        lines.append(
            f"| {scene.index} | {scene.start_tc} | {scene.end_tc} | {scene.duration_s:.3f} | "
            f"{foley.prompt if foley else ''} | {foley.seed if foley else ''} | {music.prompt if music else ''} | {music.seed if music else ''} |"
        )
    return "\n".join(lines) + "\n"


LINKED = ("soundtrack", "mix", "stems/dialogue", "stems/foley", "stems/music", "stems/m_and_e", "review_proxy")
PICTURES = ("waveform", "spectrogram")


@task(name="review", cache_policy=NO_CACHE)
def review_task(reel: str, markdown: str, outputs: list[OutputRecord]) -> str:
    """The review page in the Prefect UI: the markdown scene table, links to the deliverables and the
    waveform and spectrogram pictures. Keys are stable per reel, so each nightly run adds a version.
    S3 links are the objects' plain URLs: a presigned URL is a bearer credential, and Prefect keeps
    artifacts for good, so none is stored (they open where the browser may read the bucket)."""
    slug = artifact_slug(reel)
    create_markdown_artifact(key=f"review-{slug}", markdown=markdown, description=f"Soundtrack review for {reel}")
    by_kind = {o.kind: o.uri for o in outputs}
    for kind in LINKED:
        if kind in by_kind:
            name = kind.replace("stems/", "stem-").replace("_", "-")
            create_link_artifact(
                key=f"{name}-{slug}",
                link=public_uri(store_for(by_kind[kind]).link(by_kind[kind])),
                link_text=f"{reel}: {kind}",
                description=f"{kind} of {reel}",
            )
    for kind in PICTURES:
        if kind in by_kind:
            create_image_artifact(
                image_url=public_uri(store_for(by_kind[kind]).link(by_kind[kind])),
                key=f"{kind}-{slug}",
                description=f"{kind} of the {reel} mix",
            )
    return f"review-{slug}"
