"""The producer's review page: a markdown artifact per reel in the Prefect UI."""

from __future__ import annotations

import re
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from audiox_core.media.mix import MasterReport
from audiox_core.reel import Analysis, RenderedCue


def artifact_key(reel: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes; stable per reel so runs version it."""
    return "review-" + (re.sub(r"[^a-z0-9]+", "-", reel.lower()).strip("-") or "reel")


def review_markdown(reel: str, analysis: Analysis, rendered: list[RenderedCue], model: dict, mix: MasterReport, final_dir: Path) -> str:
    by_scene: dict[int, dict[str, RenderedCue]] = {}
    for c in rendered:
        by_scene.setdefault(c.scene_index, {})[c.kind] = c
    lines = [
        f"# Soundtrack review: {reel}",
        "",
        f"**Model:** {model['label']}  ",
        f"**Checkpoint sha256:** `{model['checkpoint_sha256']}`  ",
        f"**Picture:** {analysis.info.video.width}×{analysis.info.video.height} at {analysis.scenes.fps} fps, "
        f"{analysis.scenes.frames} frames  ",
        f"**Mix ({mix.preset}):** {mix.outputs['mix']['integrated_lufs']:.1f} LUFS, LRA {mix.outputs['mix']['loudness_range_lu']:.1f} LU, "
        f"true peak {mix.outputs['mix']['true_peak_dbtp']:.1f} dBTP; limiter up to {mix.max_gain_reduction_db:.1f} dB  ",
        f"**Stems:** {', '.join(k for k in mix.outputs if k != 'mix')}  ",
        f"**Outputs:** `{final_dir}`",
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


@task(name="review", cache_policy=NO_CACHE)
def review_task(reel: str, markdown: str) -> str:
    create_markdown_artifact(key=artifact_key(reel), markdown=markdown, description=f"Soundtrack review for {reel}")
    return artifact_key(reel)
