"""The review page of one reel version (``review.html``): one self-contained file, no script or style from elsewhere."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from audiox_core.provenance.records import ModelFacts, RenderedCue
from audiox_core.reel.cuesheet import SheetCue, SpannedCue
from audiox_core.reel.naming import version_label
from audiox_core.sound.audio import MIX_RATE
from audiox_core.sound.loudness import LoudnessReport
from audiox_core.video.scenes import Scene

STEMS = ("dialogue", "music", "foley")
DIFF_FIELDS = ("kind", "span", "prompt", "seed", "gain_db", "mute", "takes", "regenerate", "prompt_audio")


@dataclass(frozen=True)
class OtherVersion:
    """Another kept version of the reel, to A/B against this one at the same playhead."""

    version: str
    mix: str  # the URL of its mix.wav, as this page reaches it
    cues: Sequence[SheetCue]  # its cue sheet, for what changed


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
    fps: Fraction = Fraction(25)
    start_frame: int = 0  # the timeline's start timecode (the DAW's), as a frame number at ``fps``
    takes: Mapping[int, Sequence[RenderedCue]] = field(default_factory=dict)  # take 2 … → its cues' files
    takes_folder: str = "takes"  # where the takes are, relative to the version folder
    others: Sequence[OtherVersion] = ()  # the reel's other kept versions, newest first


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
        f'<p class="meta">{_e(facts.source)} · version {_e(version_label(facts.version))} · trigger: {_e(facts.trigger)}</p>',
        '<div class="stage"><div class="picture">',
        f'<video id="picture" controls preload="auto" src="{_e(link(video))}"></video>'
        if video
        else "<p>(no picture in this version)</p>",
        '</div><div class="side">',
        _transport(facts, files),
        _pictures(files, link),
        "</div></div>",
        _takes(facts, rendered),
        _comments(),
        _changes(facts),
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
        "<h2>Scenes and cues</h2>",
        _cue_table(facts, rendered),
        "<h2>Files</h2><ul class='files'>",
        *(f'<li><a href="{_e(link(n))}">{_e(n)}</a></li>' for n in sorted(files)),
        "</ul>",
    ]
    return PAGE.format(
        title=_e(f"Review: {facts.reel}"),
        body="\n".join(parts),
        script=SCRIPT,
        data=_e(json.dumps(_data(facts, files, link))),
    )


def _data(facts: ReviewFacts, files: set[str], link: Callable[[str], str]) -> dict[str, Any]:
    """What the page's script plays: stems, the versions to A/B, the takes, the cues and the timecode."""
    by_id = {(c.scene_index, c.cue.kind): c for c in facts.cues}
    takes = []
    for r in facts.rendered:
        c = by_id.get((r.scene_index, r.kind))
        if c is None or c.cue.takes < 2:
            continue
        made = [(1, r, f"cues/{r.path.name}")]
        made += [
            (n, t, f"{facts.takes_folder}/take{n}/{t.path.name}")
            for n, cues in sorted(facts.takes.items())
            for t in cues
            if (t.scene_index, t.kind) == (r.scene_index, r.kind)
        ]
        for n, t, name in made:
            takes.append(
                {
                    "cue": c.cue.id,
                    "kind": r.kind,
                    "take": n,
                    "seed": t.seed,
                    "url": link(name),
                    "at": t.placement.start / facts.rate,
                    "start": c.start_s,
                    "end": c.end_s,
                    "gain": 10 ** (c.cue.gain_db / 20),
                }
            )
    return {
        "reel": facts.reel,
        "version": facts.version,
        "duration": facts.mix.samples / facts.rate,
        "fps": [facts.fps.numerator, facts.fps.denominator],
        "startFrame": facts.start_frame,
        "stems": {s: link(f"stems/{s}.wav") for s in STEMS if f"stems/{s}.wav" in files},
        "versions": [{"label": f"this version, {version_label(facts.version)}", "mix": link("mix.wav")}]
        + [{"label": version_label(o.version), "mix": o.mix} for o in facts.others],
        "takes": takes,
        "cues": [{"id": c.cue.id, "kind": c.cue.kind, "start": c.start_s, "end": c.end_s} for c in facts.cues],
    }


def _transport(facts: ReviewFacts, files: set[str]) -> str:
    """Timecode, the versions to A/B, the stems' solo and mute, and what is heard."""
    versions = "".join(
        f'<button type="button" class="ver{" on" if i == 0 else ""}" data-v="{i}">'
        f"{'A' if i == 0 else 'B'}: {_e('this version' if i == 0 else version_label(o))}</button>"
        for i, o in enumerate([facts.version, *(o.version for o in facts.others)])
    )
    stems = "".join(
        f'<span class="stem" data-stem="{s}">{s} <button class="solo" type="button">solo</button>'
        f'<button class="mute" type="button">mute</button></span>'
        for s in STEMS
        if f"stems/{s}.wav" in files
    )
    return (
        '<div class="transport"><div class="tc"><span id="tc">--:--:--:--</span>'
        '<span class="reel-tc">reel <span id="reel-tc">--:--:--:--</span></span></div>'
        f'<div class="versions">{versions}</div>'
        + (f'<div class="stems">{stems}</div>' if stems else "")
        + '<div id="heard" class="heard">heard: the picture\'s own mix</div></div>'
    )


def _takes(facts: ReviewFacts, rendered: Mapping[tuple[int, str], RenderedCue]) -> str:
    """Each cue with takes: a button per take that plays it in place, looping the cue's span."""
    rows = []
    for c in facts.cues:
        r = rendered.get((c.scene_index, c.cue.kind))
        if c.cue.takes < 2 or r is None:
            continue
        found = {
            n for n, cues in facts.takes.items() for t in cues if (t.scene_index, t.kind) == (r.scene_index, r.kind)
        }
        buttons = "".join(
            f'<button type="button" class="take" data-cue="{_e(c.cue.id)}" data-take="{n}">take {n}'
            f"{' (in the mix)' if n == 1 else ''}</button>"
            for n in sorted({1, *found})
        )
        rows.append(f"<tr><th>{_e(c.cue.id)} ({_e(c.cue.kind)})</th><td>{buttons}</td></tr>")
    if not rows:
        return ""
    return (
        "<h2>Takes</h2><p class='hint'>A take plays in place: the picture loops the cue's span with the other "
        "stems and this take. To use one, give its number as <code>take</code> for the cue in the direction form.</p>"
        f"<table class='takes'>{''.join(rows)}</table><button type='button' id='stop-take'>stop the take</button>"
    )


def _comments() -> str:
    return (
        "<h2>Comments</h2><div class='comments'><input id='comment' size='60' placeholder='a note at the playhead'>"
        "<button type='button' id='add-comment'>comment at the playhead</button>"
        "<ol id='comment-list'></ol><p class='hint'>Pinned to the reel timecode and the cues there. "
        "<button type='button' id='copy-comments'>copy for the direction form</button> and paste into its "
        "<code>comments</code> field.</p><textarea id='comment-text' rows='3' cols='80' readonly></textarea></div>"
    )


def sheet_changes(before: Sequence[SheetCue], after: Sequence[SheetCue]) -> list[tuple[str, str, str, str]]:
    """What changed between two cue sheets: (cue, field, before, after); a cue only in one is "added" or "removed"."""
    old, new = {c.id: c for c in before}, {c.id: c for c in after}
    changes = []
    for cue_id in dict.fromkeys([*old, *new]):
        a, b = old.get(cue_id), new.get(cue_id)
        if a is None or b is None:
            changes.append((cue_id, "cue", "" if a is None else "—", "added" if a is None else "removed"))
            continue
        for name in DIFF_FIELDS:
            x, y = _field(a, name), _field(b, name)
            if x != y:
                changes.append((cue_id, name, x, y))
    return changes


def _field(c: SheetCue, name: str) -> str:
    if name == "span":
        return f"scenes {c.scenes[0]}–{c.scenes[1]}" if c.scenes else f"{c.tc_in}–{c.tc_out}"
    if name == "regenerate":
        return ", ".join(f"{a}-{b}" for a, b in c.regenerate)
    value = getattr(c, name)
    return f"{value:+.1f} dB" if name == "gain_db" else str(value if value is not None else "")


def _changes(facts: ReviewFacts) -> str:
    """What changed from each other kept version to this one (the newest first, opened)."""
    if not facts.others:
        return ""
    parts = ["<h2>What changed</h2>"]
    this = [c.cue for c in facts.cues]
    for i, other in enumerate(facts.others):
        rows = sheet_changes(other.cues, this)
        body = (
            "".join(f"<tr><td>{_e(c)}</td><td>{_e(f)}</td><td>{_e(a)}</td><td>{_e(b)}</td></tr>" for c, f, a, b in rows)
            or "<tr><td colspan=4>the same cue sheet</td></tr>"
        )
        parts.append(
            f"<details class='diff'{' open' if i == 0 else ''}><summary>from {_e(version_label(other.version))}: "
            f"{len(rows)} change(s)</summary><table class='diff'><tr><th>cue</th><th>field</th>"
            f"<th>{_e(version_label(other.version))}</th><th>this version</th></tr>{body}</table></details>"
        )
    return "".join(parts)


def _daw_row(files: set[str], link: Callable[[str], str]) -> str:
    """Where the sound editor starts: the timelines that open in a DAW (README, *Into the DAW*)."""
    names = [n for n in ("soundtrack.aaf", "soundtrack.otio") if n in files]
    if not names:
        return ""
    anchors = " · ".join(f'<a href="{_e(link(n))}">{_e(n)}</a>' for n in names)
    return f"<tr><th>Into the DAW</th><td>{anchors} (the AAF for Pro Tools and Media Composer, audio embedded; the OTIO for DaVinci Resolve and OTIO-aware tools)</td></tr>"


def _pictures(files: set[str], link: Callable[[str], str]) -> str:
    """The waveform and spectrogram, each with the playhead over it (its time axis spans the whole width)."""
    return "".join(
        f'<figure class="timeline"><img class="timeline" alt="{name} of the mix" src="{_e(link(f"{name}.png"))}">'
        '<div class="playhead"></div></figure>'
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
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1em auto; max-width: 1800px; padding: 0 1em;
  background: #111; color: #e8e8e8; }}
a {{ color: #7cc4ff; }} h1 {{ margin: 0; font-size: 22px; }} .meta {{ color: #aaa; margin: .1em 0 .5em; }}
.stage {{ display: grid; grid-template-columns: minmax(0, 1.15fr) minmax(0, 1fr); gap: 1em; align-items: start; }}
@media (max-width: 1100px) {{ .stage {{ grid-template-columns: 1fr; }} }}
video {{ width: 100%; max-height: 62vh; background: #000; display: block; }}
.transport {{ background: #1b1b1b; border: 1px solid #333; border-radius: 4px; padding: .4em .6em; }}
.tc {{ font: 600 26px ui-monospace, monospace; letter-spacing: 1px; }}
.reel-tc {{ font-size: 13px; color: #aaa; margin-left: 1em; font-weight: normal; }}
.transport button {{ margin: .2em .3em .2em 0; background: #333; color: #eee; border: 1px solid #555;
  border-radius: 3px; padding: .15em .5em; }}
.transport button.on, button.take.on {{ background: #c93; color: #000; }}
.stem {{ margin-right: .9em; white-space: nowrap; }} .heard {{ color: #9c9; font-size: 13px; }}
button.take {{ margin-right: .4em; background: #333; color: #eee; border: 1px solid #555; border-radius: 3px; }}
table {{ border-collapse: collapse; margin: .8em 0; }} th, td {{ padding: .25em .6em; text-align: left;
  border-bottom: 1px solid #333; vertical-align: top; }}
table.cues tr.new td:last-child {{ color: #8f8; }} table.cues tr.muted {{ color: #777; }}
figure.timeline {{ position: relative; margin: .5em 0; }}
img.timeline {{ width: 100%; cursor: crosshair; display: block; }}
.playhead {{ position: absolute; top: 0; bottom: 0; left: 0; width: 2px; background: #3f6; pointer-events: none; }}
p.note {{ margin: .2em 0 0; color: #fc6; font-size: 90%; }} .hint {{ color: #aaa; font-size: 90%; }}
textarea, input {{ background: #1b1b1b; color: #eee; border: 1px solid #555; }}
</style></head>
<body data-review="{data}">
{body}
<script>{script}</script>
</body></html>
"""

SCRIPT = """
(function () {
  const data = JSON.parse(document.body.dataset.review);
  const video = document.getElementById('picture');
  const fps = data.fps[0] / data.fps[1], nominal = Math.round(fps);
  const drop = data.fps[1] === 1001 && (nominal === 30 || nominal === 60);
  // SMPTE timecode of a frame number (drop frame at 29.97 and 59.94, as video/timecode.py writes it)
  function timecode(frame) {
    if (drop) {
      const skip = nominal / 15, per10 = nominal * 600 - 9 * skip, perMin = nominal * 60 - skip;
      const tens = Math.floor(frame / per10), rem = frame % per10;
      frame += 9 * skip * tens + (rem > skip ? skip * Math.floor((rem - skip) / perMin) : 0);
    }
    const ff = frame % nominal, s = Math.floor(frame / nominal), p = n => String(n).padStart(2, '0');
    return p(Math.floor(s / 3600) % 24) + ':' + p(Math.floor(s / 60) % 60) + ':' + p(s % 60) + (drop ? ';' : ':') + p(ff);
  }
  function frameAt(t) { return Math.floor(t * fps + 1e-6); }
  const now = () => (video ? video.currentTime : 0);

  // The sound: the picture's own mix, or Web Audio buffers started against the video's clock.
  let ctx = null, nodes = [], anchor = null, maxDrift = 0, resyncs = 0, sources = [], drifts = [];
  const buffers = {};
  const state = { version: 0, take: null };
  function audioContext() { if (!ctx) ctx = new AudioContext({ latencyHint: 'interactive' }); return ctx; }
  function load(url) {
    if (!buffers[url]) buffers[url] = fetch(url).then(r => {
      if (!r.ok) throw new Error(url + ': ' + r.status); return r.arrayBuffer();
    }).then(b => audioContext().decodeAudioData(b));
    return buffers[url];
  }
  const stems = Array.from(document.querySelectorAll('.stem'));
  function soloed() { return stems.filter(s => s.querySelector('.solo').classList.contains('on')); }
  function audible(s) { const so = soloed(); return so.length ? so.includes(s) : !s.querySelector('.mute').classList.contains('on'); }
  function wanted() {  // what should be heard: [] = the picture's own mix
    if (state.take) {
      const t = state.take;
      const others = Object.keys(data.stems).filter(k => k !== t.kind).map(k => ({ url: data.stems[k], gain: 1, at: 0 }));
      return { what: 'take ' + t.take + ' of ' + t.cue + ' (seed ' + t.seed + ') in place, its span looping',
               list: others.concat([{ url: t.url, gain: t.gain, at: t.at }]) };
    }
    if (state.version > 0) {
      const v = data.versions[state.version];
      return { what: 'B: the mix of ' + v.label, list: [{ url: v.mix, gain: 1, at: 0 }] };
    }
    const changed = stems.some(s => !audible(s));
    if (!changed) return { what: "the picture's own mix", list: [] };
    const on = stems.filter(audible).map(s => s.dataset.stem);
    return { what: 'stems: ' + (on.join(' + ') || 'none'),
             list: on.map(k => ({ url: data.stems[k], gain: 1, at: 0 })) };
  }
  function stopNodes() { nodes.forEach(n => { try { n.stop(); } catch (e) {} }); nodes = []; anchor = null; }
  function start() {  // the buffers from the video's position, compensating the output's latency
    stopNodes();
    if (!video || video.paused || !sources.length) return;
    const c = audioContext(), lead = c.outputLatency || c.baseLatency || 0, t = video.currentTime + lead;
    const when = c.currentTime;
    sources.forEach(src => {
      const node = c.createBufferSource(), gain = c.createGain();
      node.buffer = src.buffer; node.playbackRate.value = video.playbackRate; gain.gain.value = src.gain;
      node.connect(gain).connect(c.destination);
      const offset = t - src.at;
      if (offset >= 0) { if (offset < src.buffer.duration) node.start(when, offset); }
      else node.start(when - offset / video.playbackRate, 0);
      nodes.push(node);
    });
    anchor = { ctx: when, video: video.currentTime, rate: video.playbackRate };
  }
  let generation = 0;
  async function apply() {
    const w = wanted(), mine = ++generation;
    document.getElementById('heard').textContent = 'heard: ' + w.what + (w.list.length ? ' (loading…)' : '');
    if (!w.list.length) { sources = []; stopNodes(); if (video) video.muted = false; return; }
    if (video) video.muted = true;
    try {
      const loaded = await Promise.all(w.list.map(x => load(x.url)));
      if (mine !== generation) return;
      sources = w.list.map((x, i) => ({ buffer: loaded[i], gain: x.gain, at: x.at }));
      document.getElementById('heard').textContent = 'heard: ' + w.what + ' (Web Audio, on the picture\\'s clock)';
      if (ctx && ctx.state === 'suspended') await ctx.resume();
      if (video && !video.paused) arm();
    } catch (e) { document.getElementById('heard').textContent = 'cannot play ' + w.what + ': ' + e.message; }
  }
  // The frame on screen (requestVideoFrameCallback's media time), else the one at currentTime.
  let shown = null;
  function onFrame(_, meta) { shown = meta.mediaTime; video.requestVideoFrameCallback(onFrame); }
  if (video && video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  function shownFrame() {
    const t = now();
    return shown !== null && Math.abs(shown - t) < 1.5 / fps ? Math.round(shown * fps) : frameAt(t);
  }
  function tick() {
    const t = now();
    const f = shownFrame();
    document.getElementById('tc').textContent = timecode(data.startFrame + f);
    document.getElementById('reel-tc').textContent = timecode(f);
    const x = Math.min(1, t / ((video && video.duration) || data.duration));
    document.querySelectorAll('.playhead').forEach(p => { p.style.left = (100 * x) + '%'; });
    if (anchor && video && !video.paused && !video.seeking) {
      const drift = anchor.video + (ctx.currentTime - anchor.ctx) * anchor.rate - video.currentTime;
      maxDrift = Math.max(maxDrift, Math.abs(drift)); drifts.push(Math.abs(drift));
      if (Math.abs(drift) > 0.5 / fps) { resyncs++; start(); }  // kept within half a frame
    }
    if (armed && video && !video.paused && !video.seeking) {  // start once the picture's clock moves
      if (armedAt === null) armedAt = video.currentTime;
      else if (video.currentTime > armedAt + 1e-4) { armed = false; start(); }
    }
    if (state.take && video && t >= state.take.end) { video.currentTime = state.take.start; }
    requestAnimationFrame(tick);
  }
  let armed = false, armedAt = null;
  function arm() { stopNodes(); armed = true; armedAt = null; }
  if (video) {
    video.addEventListener('playing', () => { if (ctx && ctx.state === 'suspended') ctx.resume(); arm(); });
    ['pause', 'seeking', 'waiting'].forEach(e => video.addEventListener(e, () => { armed = false; stopNodes(); }));
    ['seeked', 'ratechange'].forEach(e => video.addEventListener(e, () => { if (!video.paused) arm(); }));
  }
  stems.forEach(s => s.querySelectorAll('button').forEach(b => b.addEventListener('click', () => {
    b.classList.toggle('on'); audioContext(); apply();
  })));
  document.querySelectorAll('button.ver').forEach(b => b.addEventListener('click', () => {
    document.querySelectorAll('button.ver').forEach(x => x.classList.toggle('on', x === b));
    state.version = parseInt(b.dataset.v, 10); state.take = null; audioContext(); apply();
  }));
  let lastB = 1;
  document.addEventListener('keydown', ev => {  // "b" flips between A and the last B, at the same playhead
    if (ev.target.tagName === 'INPUT' || ev.target.tagName === 'TEXTAREA' || data.versions.length < 2) return;
    if (ev.key === 'b' || ev.key === 'B') {
      if (state.version) lastB = state.version;
      const target = state.version ? 0 : lastB;
      document.querySelector('button.ver[data-v="' + target + '"]').click();
    }
  });
  document.querySelectorAll('button.take').forEach(b => b.addEventListener('click', () => {
    const t = data.takes.find(x => x.cue === b.dataset.cue && String(x.take) === b.dataset.take);
    document.querySelectorAll('button.take').forEach(x => x.classList.toggle('on', x === b));
    state.take = t; audioContext();
    if (video) { video.currentTime = t.start; video.play().catch(() => {}); }
    apply();
  }));
  const stopTake = document.getElementById('stop-take');
  if (stopTake) stopTake.addEventListener('click', () => {
    state.take = null; document.querySelectorAll('button.take').forEach(x => x.classList.remove('on')); apply();
  });
  function seek(t) { if (video) { video.currentTime = t; video.play().catch(() => {}); } }
  document.querySelectorAll('a.seek').forEach(a => a.addEventListener('click', ev => {
    ev.preventDefault(); seek(parseFloat(a.dataset.t));
  }));
  document.querySelectorAll('img.timeline').forEach(img => img.addEventListener('click', ev => {
    const r = img.getBoundingClientRect();
    seek(Math.max(0, (ev.clientX - r.left) / r.width) * ((video && video.duration) || data.duration));
  }));

  // Comments pinned to the reel timecode (kept in this browser), copied into the direction form.
  const store = 'audiox-comments:' + data.reel + ':' + data.version;
  let comments = JSON.parse(localStorage.getItem(store) || '[]');
  function cuesAt(t) { return data.cues.filter(c => c.start <= t && t < c.end).map(c => c.id); }
  function showComments() {
    const list = document.getElementById('comment-list');
    list.innerHTML = '';
    comments.forEach(c => {
      const li = document.createElement('li'), a = document.createElement('a');
      a.href = '#'; a.textContent = c.tc; a.addEventListener('click', ev => { ev.preventDefault(); seek(c.t); });
      li.append(a, ' ' + (c.cues.length ? '[' + c.cues.join(', ') + '] ' : '') + c.text);
      list.append(li);
    });
    document.getElementById('comment-text').value =
      comments.map(c => c.tc + ' ' + (c.cues.length ? c.cues.join(',') + ': ' : '') + c.text).join('\\n');
  }
  document.getElementById('add-comment').addEventListener('click', () => {
    const input = document.getElementById('comment'), text = input.value.trim();
    if (!text) return;
    const t = now();
    comments.push({ t: t, tc: timecode(shownFrame()), cues: cuesAt(t), text: text });
    comments.sort((a, b) => a.t - b.t); input.value = '';
    localStorage.setItem(store, JSON.stringify(comments)); showComments();
  });
  document.getElementById('copy-comments').addEventListener('click', () => {
    const area = document.getElementById('comment-text'); area.select();
    if (navigator.clipboard) navigator.clipboard.writeText(area.value).catch(() => document.execCommand('copy'));
    else document.execCommand('copy');
  });
  showComments();
  function p95() { const d = drifts.slice().sort((a, b) => a - b); return d.length ? d[Math.floor(0.95 * (d.length - 1))] : 0; }
  window.reviewPlayer = { drift: () => ({ max: maxDrift, p95: p95(), checks: drifts.length, resyncs: resyncs, playing: !!anchor }),
                          frame: shownFrame, resetDrift: () => { maxDrift = 0; resyncs = 0; drifts = []; }, timecode: timecode, state: state };
  requestAnimationFrame(tick);
})();
"""
