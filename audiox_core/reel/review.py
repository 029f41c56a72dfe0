"""The review page of one reel version (``review.html``): one self-contained file, no script or style from elsewhere."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from audiox_core.provenance.records import ModelFacts, RenderedCue
from audiox_core.reel.cuesheet import SpannedCue
from audiox_core.sound.audio import MIX_RATE
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.video.scenes import Scene

STEMS = ("dialogue", "music", "foley")


@dataclass(frozen=True)
class ReviewFacts:
    """What the page shows of one version, gathered by the flow."""

    reel: str
    source: str
    version: str
    trigger: str
    settings_changed: Mapping[str, Any]  # setting → value, only those that differ from the defaults
    model: ModelFacts
    mix: LoudnessReport
    scenes: Sequence[Scene]
    cues: Sequence[SpannedCue]
    rendered: Sequence[RenderedCue]
    files: Sequence[str]  # names in the version folder: soundtrack.mp4, stems/music.wav, …
    cue_sheet_origin: str = "draft"
    rate: int = MIX_RATE
    text_tokens: int = 0  # how many tokens of a prompt the model's text encoder reads (0: not counted)
    prompt_tokens: Mapping[str, int] = field(default_factory=dict)  # cue id → its prompt's tokens


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _seek(seconds: float, label: str) -> str:
    return f'<a href="#" class="seek" data-t="{seconds:.3f}">{_e(label)}</a>'


def review_html(facts: ReviewFacts, link: Callable[[str], str]) -> str:
    """The page's HTML; media are linked, not embedded: ``link(name)`` gives the URL of a file of the version
    folder (relative for local outputs that ``audiox-studio serve`` serves, presigned for S3)."""
    files = set(facts.files)
    video = next((n for n in ("soundtrack.mp4", "review_proxy.mp4", "soundtrack.mov") if n in files), None)
    rendered = {(r.scene_index, r.kind): r for r in facts.rendered}
    new = sum(1 for r in facts.rendered if not r.reused)
    mix = facts.mix.mix
    settings = ", ".join(f"{k} = {v}" for k, v in facts.settings_changed.items()) or "all defaults"
    parts = [
        f"<h1>{_e(facts.reel)}</h1>",
        f'<p class="meta">{_e(facts.source)} · version {_e(facts.version)} · trigger: {_e(facts.trigger)}</p>',
        '<div class="player">',
        f'<video id="picture" controls preload="metadata" src="{_e(link(video))}"></video>'
        if video
        else "<p>(no picture in this version)</p>",
        _stem_controls(files, link),
        "</div>",
        "<table class='facts'>",
        f"<tr><th>Model</th><td>{_e(facts.model.label)}</td></tr>",
        f"<tr><th>Checkpoint sha256</th><td><code>{_e(facts.model.checkpoint_sha256)}</code></td></tr>",
        f"<tr><th>Mix ({_e(facts.mix.preset)})</th><td>{mix.integrated_lufs:.1f} LUFS integrated, LRA "
        f"{mix.loudness_range_lu:.1f} LU, true peak {mix.true_peak_dbtp:.1f} dBTP; limiter up to "
        f"{facts.mix.max_gain_reduction_db:.1f} dB</td></tr>",
        f"<tr><th>Settings</th><td>{_e(settings)}</td></tr>",
        f"<tr><th>Cue sheet</th><td>{_e(facts.cue_sheet_origin)}; {new} of {len(facts.rendered)} cues generated "
        f"in this version, {len(facts.rendered) - new} reused</td></tr>",
        _daw_row(files, link),
        "</table>",
        _pictures(files, link),
        "<h2>Scenes and cues</h2>",
        _cue_table(facts, rendered),
        "<h2>Files</h2><ul class='files'>",
        *(f'<li><a href="{_e(link(n))}">{_e(n)}</a></li>' for n in sorted(files)),
        "</ul>",
    ]
    data = {"duration": facts.mix.samples / facts.rate}
    return PAGE.format(
        title=_e(f"Review: {facts.reel}"), body="\n".join(parts), script=SCRIPT, data=_e(json.dumps(data))
    )


def _daw_row(files: set[str], link: Callable[[str], str]) -> str:
    """Where the sound editor starts: the timelines that open in a DAW (README, *Into the DAW*)."""
    names = [n for n in ("soundtrack.aaf", "soundtrack.otio") if n in files]
    if not names:
        return ""
    anchors = " · ".join(f'<a href="{_e(link(n))}">{_e(n)}</a>' for n in names)
    return f"<tr><th>Into the DAW</th><td>{anchors} (the AAF for Pro Tools and Media Composer, audio embedded; the OTIO for DaVinci Resolve and OTIO-aware tools)</td></tr>"


def _stem_controls(files: set[str], link: Callable[[str], str]) -> str:
    stems = [s for s in STEMS if f"stems/{s}.wav" in files]
    if not stems:
        return ""
    rows = ['<div class="stems"><label><input type="checkbox" id="use-stems"> play the stems</label>']
    for s in stems:
        rows.append(
            f'<span class="stem" data-stem="{s}"><audio preload="auto" src="{_e(link(f"stems/{s}.wav"))}"></audio>'
            f'{s} <button class="solo" type="button">solo</button>'
            f'<button class="mute" type="button">mute</button></span>'
        )
    return "".join(rows) + "</div>"


def _pictures(files: set[str], link: Callable[[str], str]) -> str:
    return "".join(
        f'<figure><img class="timeline" alt="{name} of the mix" src="{_e(link(f"{name}.png"))}"></figure>'
        for name in ("waveform", "spectrogram")
        if f"{name}.png" in files
    )


def _cue_table(facts: ReviewFacts, rendered: Mapping[tuple[int, str], RenderedCue]) -> str:
    rows = [
        "<table class='cues'><tr><th>cue</th><th>kind</th><th>scenes</th><th>in</th><th>out</th>"
        "<th>prompt</th><th>seed</th><th>gain</th><th>status</th></tr>"
    ]
    by_index = {s.index: s for s in facts.scenes}
    for c in facts.cues:
        r = rendered.get((c.scene_index, c.cue.kind))
        status = "muted" if c.cue.mute else ("reused" if r is not None and r.reused else "new")
        last = max(s.index for s in facts.scenes if s.start_s < c.end_s - 1e-9)
        scenes = f"{c.scene_index}" if last == c.scene_index else f"{c.scene_index}–{last}"
        tc_in = c.cue.tc_in if c.cue.tc_in else by_index[c.scene_index].start_tc
        tc_out = c.cue.tc_out if c.cue.tc_out else by_index[last].end_tc
        rows.append(
            f"<tr class='{status}'><td>{_e(c.cue.id)}</td><td>{_e(c.cue.kind)}</td><td>{scenes}</td>"
            f"<td>{_seek(c.start_s, tc_in)}</td><td>{_e(tc_out)}</td><td>{_e(c.cue.prompt)}{_cut_note(facts, c)}</td>"
            f"<td>{c.cue.seed}</td><td>{c.cue.gain_db:+.1f} dB</td><td>{status}</td></tr>"
        )
    return "\n".join(rows) + "</table>"


def _cut_note(facts: ReviewFacts, c: SpannedCue) -> str:
    """A note under a prompt the text encoder cuts: the model hears only its first ``text_tokens``."""
    n, m = facts.prompt_tokens.get(c.cue.id, 0), facts.text_tokens
    if not m or n <= m:
        return ""
    return f"<p class='note'>prompt longer than the model reads ({n} of {m} tokens): only the first {m} count</p>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1640px; padding: 0 1em;
  background: #111; color: #e8e8e8; }}
a {{ color: #7cc4ff; }} h1 {{ margin: 0; }} .meta {{ color: #aaa; margin-top: .2em; }}
video {{ width: 100%; max-height: 60vh; background: #000; }}
.stems {{ margin: .5em 0; }} .stem {{ margin-left: 1.2em; }}
.stem button {{ margin-left: .3em; background: #333; color: #eee; border: 1px solid #555; border-radius: 3px; }}
.stem button.on {{ background: #c93; color: #000; }}
table {{ border-collapse: collapse; margin: .8em 0; }} th, td {{ padding: .25em .6em; text-align: left;
  border-bottom: 1px solid #333; vertical-align: top; }}
table.cues tr.new td:last-child {{ color: #8f8; }} table.cues tr.muted {{ color: #777; }}
img.timeline {{ width: 100%; cursor: crosshair; display: block; }} figure {{ margin: .5em 0; }}
p.note {{ margin: .2em 0 0; color: #fc6; font-size: 90%; }}
</style></head>
<body data-review="{data}">
{body}
<script>{script}</script>
</body></html>
"""

SCRIPT = """
(function () {
  const video = document.getElementById('picture');
  const stems = Array.from(document.querySelectorAll('.stem'));
  const useStems = document.getElementById('use-stems');
  const audios = stems.map(s => s.querySelector('audio'));
  function stemsOn() { return useStems && useStems.checked; }
  function applyLevels() {
    const soloed = stems.filter(s => s.querySelector('.solo').classList.contains('on'));
    stems.forEach(s => {
      const muted = s.querySelector('.mute').classList.contains('on');
      const audible = soloed.length ? soloed.includes(s) : !muted;
      s.querySelector('audio').muted = !audible;
    });
    if (video) video.muted = stemsOn();
  }
  function sync(force) {
    if (!video) return;
    audios.forEach(a => {
      if (!stemsOn()) { a.pause(); return; }
      if (force || Math.abs(a.currentTime - video.currentTime) > 0.08) a.currentTime = video.currentTime;
      if (video.paused) a.pause(); else a.play().catch(() => {});
    });
  }
  stems.forEach(s => s.querySelectorAll('button').forEach(b => b.addEventListener('click', () => {
    b.classList.toggle('on'); applyLevels();
  })));
  if (useStems) useStems.addEventListener('change', () => { applyLevels(); sync(true); });
  if (video) ['play', 'pause', 'seeked', 'ratechange'].forEach(e => video.addEventListener(e, () => sync(true)));
  if (video) video.addEventListener('timeupdate', () => sync(false));
  function seek(t) { if (video) { video.currentTime = t; video.play().catch(() => {}); } }
  document.querySelectorAll('a.seek').forEach(a => a.addEventListener('click', ev => {
    ev.preventDefault(); seek(parseFloat(a.dataset.t));
  }));
  const duration = JSON.parse(document.body.dataset.review).duration;
  document.querySelectorAll('img.timeline').forEach(img => img.addEventListener('click', ev => {
    const r = img.getBoundingClientRect();
    seek(Math.max(0, (ev.clientX - r.left) / r.width) * (video && video.duration ? video.duration : duration));
  }));
  applyLevels();
})();
"""
