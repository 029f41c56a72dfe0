"""The producer's review of one reel version: ``review.html`` written into the version (the page that
plays it: ``audiox_core/reel/review.py``), and the Prefect UI's artifacts, in a fixed order: the link to the
review page, the markdown summary (with the pictures), then the deliverables and the pictures.

Links play in the browser: S3 outputs are presigned (7 days, the longest SigV4 allows; a bearer
credential, so they go to the producer's UI and nowhere else), local outputs go through
``audiox-studio serve`` (``audiox_core/store/serving.py``), never ``file://``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from audiox_core.environment import t5_dir
from audiox_core.errors import ModelError, PipelineError
from audiox_core.model.prompt_length import prompt_tokens
from audiox_core.model.spec import load_config
from audiox_core.provenance.records import ModelFacts, OutputRecord, RenderedCue
from audiox_core.reel.cuesheet import SpannedCue, parse_sheet
from audiox_core.reel.daw_reel import start_sample
from audiox_core.reel.destination import Destination
from audiox_core.reel.review import OtherVersion, ReviewFacts, review_html
from audiox_core.reel.settings import RunSettings
from audiox_core.reel.source import Source
from audiox_core.reel.stages import Analysis, SheetPlan
from audiox_core.sound.audio import MIX_RATE
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.store.by_uri import store_for
from audiox_core.store.files import write_atomic

REVIEW_PAGE = "review.html"
LINKED = (  # the deliverables linked from a version's card, in this order
    "soundtrack.mp4",
    "soundtrack.mov",
    "soundtrack.mkv",
    "mix.wav",
    "stems/dialogue.wav",
    "stems/music.wav",
    "stems/foley.wav",
    "stems/m_and_e.wav",
    "review_proxy.mp4",
    "soundtrack.otio",
    "soundtrack.aaf",
    "cues.yaml",
    "music_cues.csv",
    "scenes.edl",
    "scenes.csv",
)
PICTURES = ("waveform", "spectrogram")


def artifact_slug(folder: str) -> str:
    """A reel's part of its artifact keys, from its output folder name (``audiox_core/reel/naming.py``:
    unique per source, so two reels named alike never share a review): Prefect keys allow only
    lowercase letters, digits and dashes. Stable per source, so each run adds a version."""
    return re.sub(r"[^a-z0-9]+", "-", folder.lower()).strip("-") or "reel"


def page_links(base_uri: str) -> Callable[[str], str]:
    """How the review page links a file of its version: presigned on S3 (the page's own URL carries no
    signature its relative links could reuse), relative for local outputs (served beside it)."""
    if base_uri.startswith("s3://"):
        store = store_for(base_uri)
        return lambda name: store.link(f"{base_uri.rstrip('/')}/{name}")
    return lambda name: name


def version_facts(
    stage: Path,
    where: Destination,
    source: Source,
    trigger: str,
    settings: RunSettings,
    model: ModelFacts,
    mix: LoudnessReport,
    analysis: Analysis,
    spotted: SheetPlan,
    rendered: list[RenderedCue],
    takes: dict[int, list[RenderedCue]] | None = None,
    work: Path | None = None,
) -> ReviewFacts:
    """What the review page and the Prefect UI show of the staged version, with the reel's other kept
    versions to A/B against (read from where they are published) and its cues' takes."""
    fps = analysis.scenes.fps
    return ReviewFacts(
        reel=source.title,
        source=source.shown,
        version=where.version,
        trigger=trigger,
        settings_changed=settings.changed(),
        model=model,
        mix=mix,
        scenes=analysis.scenes.scenes,
        cues=spotted.spanned,
        rendered=rendered,
        files=version_files(stage),
        cue_sheet_origin=spotted.origin,
        rate=settings.mix.rate,
        fps=fps,
        start_frame=round(start_sample(settings.daw, fps) * fps / MIX_RATE),
        takes=takes or {},
        others=other_versions(where, work or stage.parent),
    )


OTHERS_SHOWN = 4  # the newest kept versions a review page A/Bs against


def other_versions(where: Destination, work: Path) -> tuple[OtherVersion, ...]:
    """The reel's published versions but this one, newest first (at most ``OTHERS_SHOWN``), each with
    its mix's URL as this page reaches it and its cue sheet; one that cannot be read is left out (a line in the log)."""
    store = store_for(where.folder_uri)
    try:
        kept = [v for v in store.versions(where.folder_uri) if v != where.version]
    except PipelineError as e:  # the page is still worth having without A/B
        get_run_logger().warning("other versions not offered for A/B on the review page: %s", e)
        return ()
    found = []
    for version in reversed(kept[-OTHERS_SHOWN:]):
        base = store.version_uri(where.folder_uri, version)
        try:
            sheet = store.fetch(f"{base}/cues.yaml", work / "other-versions" / version).path.read_text()
            cues = parse_sheet(sheet, f"{version}/cues.yaml").cues
        except (PipelineError, OSError) as e:
            get_run_logger().info("version %s not offered for A/B on the review page: %s", version, e)
            continue
        mix = store.link(f"{base}/mix.wav") if base.startswith("s3://") else f"../{version}/mix.wav"
        found.append(OtherVersion(version, mix, cues))
    return tuple(found)


def version_files(stage: Path) -> list[str]:
    """The names of a staged version's files, with those still to come (the review page, provenance)."""
    names = {p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()}
    return sorted(names | {REVIEW_PAGE, "provenance.json"})


@task(name="review-page", cache_policy=NO_CACHE)
def review_page_task(stage: Path, facts: ReviewFacts, base_uri: str) -> Path:
    """review.html in the staged version folder (published with the rest)."""
    path = stage / REVIEW_PAGE
    write_atomic(path, review_html(with_prompt_tokens(facts), page_links(base_uri)).encode())
    return path


def with_prompt_tokens(facts: ReviewFacts) -> ReviewFacts:
    """The facts with each prompt's length in the model's text tokens, so the page notes a prompt the
    encoder cuts; without them (a line in the log) where this process cannot read the T5 tokenizer."""
    try:
        text = load_config(facts.model.name).text
        counts = prompt_tokens(text, [c.cue.prompt for c in facts.cues], t5_dir())
    except ModelError as e:
        get_run_logger().info("prompt lengths in tokens not checked for the review page: %s", e)
        return facts
    return replace(facts, text_tokens=text.max_length, prompt_tokens=dict(zip((c.cue.id for c in facts.cues), counts)))


def review_markdown(facts: ReviewFacts, links: dict[str, str]) -> str:
    """The summary in the Prefect UI: a link to the review page, the figures, the pictures, and one
    short row per cue (wide tables are cut off there; the page has the rest)."""
    mix = facts.mix.mix
    new = sum(1 for r in facts.rendered if not r.reused)
    changed = ", ".join(f"`{k}={v}`" for k, v in facts.settings_changed.items()) or "defaults"
    lines = [
        f"# {facts.reel}: version {facts.version}",
        "",
        f"**[Open the review page]({links[REVIEW_PAGE]})**: picture with the new mix, stems, seekable cues."
        if REVIEW_PAGE in links
        else "",
        "",
        f"Source `{facts.source}` · version `{facts.version}` · trigger **{facts.trigger}** · settings: {changed}  ",
        f"Model **{facts.model.label}**, checkpoint `{facts.model.checkpoint_sha256[:16]}…`  ",
        f"Mix ({facts.mix.preset}): **{mix.integrated_lufs:.1f} LUFS**, LRA {mix.loudness_range_lu:.1f} LU, "
        f"true peak {mix.true_peak_dbtp:.1f} dBTP  ",
        f"Cues: {new} new, {len(facts.rendered) - new} reused (cue sheet: {facts.cue_sheet_origin})",
        "",
    ]
    for name in PICTURES:
        if f"{name}.png" in links:
            lines += [f"![{name}]({links[f'{name}.png']})", ""]
    lines += ["| cue | scenes | prompt | seed | status |", "|---|---|---|---:|---|"]
    rendered = {(r.scene_index, r.kind): r for r in facts.rendered}
    for c in facts.cues:
        r = rendered.get((c.scene_index, c.cue.kind))
        status = "muted" if c.cue.mute else ("reused" if r is not None and r.reused else "**new**")
        lines.append(f"| {c.cue.id} | {_scenes(c)} | {c.cue.prompt.replace('|', '/')} | {c.cue.seed} | {status} |")
    return "\n".join(line for line in lines) + "\n"


def _scenes(c: SpannedCue) -> str:
    """The scenes a cue covers as the sheet spans it: ``2``, ``0–3``, or its timecodes."""
    if c.cue.scenes is None:
        return f"{c.cue.tc_in}–{c.cue.tc_out}"
    first, last = c.cue.scenes
    return str(first) if first == last else f"{first}–{last}"


def review_key(reel: str, run_id: int) -> str:
    """A version's review card: the reel and the version's run, so each version's card is titled apart."""
    return f"review-{artifact_slug(reel)}-run{run_id}"


def show_review(reel: str, run_id: int, facts: ReviewFacts, outputs: Sequence[OutputRecord], base_uri: str) -> str:
    """The version's one card on the run's page, under the flow run (not a task): titled with the reel
    and the version's run, the review page's link its first line, then the figures, the pictures,
    every deliverable's link and the cues. Returns its key."""
    prefix = base_uri.rstrip("/") + "/"
    links = {o.uri.removeprefix(prefix): store_for(o.uri).link(o.uri) for o in outputs}
    files = [f"[{name}]({links[name]})" for name in LINKED if name in links]
    markdown = review_markdown(facts, links)
    if files:
        markdown += "\nFiles: " + " · ".join(files) + "\n"
    key = review_key(reel, run_id)
    create_markdown_artifact(key=key, markdown=markdown, description=f"{facts.reel}: version {facts.version}")
    return key
