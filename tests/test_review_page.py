"""`audiox-studio serve` (range requests, media types, nothing outside the output roots) and the
review page's contents."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import httpx
import pytest

from audiox_core.provenance.records import ModelFacts, ProcessFacts, RenderedCue
from audiox_core.reel.cuesheet import CueSheet, SheetCue, resolve
from audiox_core.reel.review import ReviewFacts, review_html
from audiox_core.sound.loudness import LoudnessReport, StemLoudness
from audiox_core.sound.timeline import Placement
from audiox_core.store.serving import local_link, served_path
from audiox_core.video.scenes import Scene
from cli.serve import byte_range, make_server
from tasks.review import review_page_task


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "out"
    (root / "reel-1").mkdir(parents=True)
    (root / "reel-1" / "soundtrack.mp4").write_bytes(bytes(range(256)) * 40)  # 10240 bytes
    (root / "reel-1" / "mix.wav").write_bytes(b"RIFF" + b"\0" * 60)
    (tmp_path / "secret.txt").write_text("not an output")
    server = make_server([root], port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", root
    finally:
        server.shutdown()
        server.server_close()


def test_serve_answers_ranges_as_a_player_asks_them(served: tuple[str, Path]) -> None:
    base, root = served
    url = base + str((root / "reel-1" / "soundtrack.mp4").resolve())
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes" and len(whole.content) == 10240
    part = httpx.get(url, headers={"Range": "bytes=1000-1009"})
    assert part.status_code == 206 and part.headers["content-range"] == "bytes 1000-1009/10240"
    assert part.content == whole.content[1000:1010]
    tail = httpx.get(url, headers={"Range": "bytes=-16"})
    assert tail.status_code == 206 and tail.content == whole.content[-16:]
    open_ended = httpx.get(url, headers={"Range": "bytes=10200-"})
    assert open_ended.content == whole.content[10200:]
    beyond = httpx.get(url, headers={"Range": "bytes=20000-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == "bytes */10240"
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == "10240" and head.content == b""
    assert httpx.get(base + str((root / "reel-1" / "mix.wav").resolve())).headers["content-type"] == "audio/wav"


def test_serve_shows_nothing_outside_the_output_roots(served: tuple[str, Path]) -> None:
    base, root = served
    for path in (str(root.parent / "secret.txt"), str(root) + "/../secret.txt", "/etc/passwd", str(root)):
        assert httpx.get(base + path).status_code == 404, path


def test_local_links_point_at_the_serve_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIOX_SERVE_URL", "http://review.studio:9000/")
    f = tmp_path / "a b.wav"
    f.write_bytes(b"x")
    link = local_link(f)
    assert link == "http://review.studio:9000" + str(f.resolve()).replace(" ", "%20")
    assert served_path(link.removeprefix("http://review.studio:9000"), [tmp_path]) == f.resolve()


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("bytes=0-9", (0, 9)), ("bytes=5-", (5, 99)), ("bytes=-10", (90, 99)), ("bytes=0-500", (0, 99))],
)
def test_byte_ranges(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=9-3", "bytes=0-1,5-6", "items=0-1", "bytes=-0"])
def test_unsatisfiable_byte_ranges(header: str) -> None:
    assert byte_range(header, 100) is False


def _facts() -> ReviewFacts:
    fps = Fraction(25)
    scenes = [
        Scene(1, 0, 50, 0.0, 2.0, "00:00:00:00", "00:00:02:00"),
        Scene(2, 50, 125, 2.0, 5.0, "00:00:02:00", "00:00:05:00"),
    ]
    sheet = CueSheet(
        "reel1",
        fps,
        (
            SheetCue("F001", "foley", "glass <breaks>", 11, (1, 1)),
            SheetCue("F002", "foley", "steps", 12, (2, 2), mute=True),
            SheetCue("M01", "music", "strings", 13, (1, 2), gain_db=-3.0),
        ),
    )
    spanned = resolve(sheet, scenes, fps, "cues.yaml")

    def rendered(scene: int, kind: str, reused: bool) -> RenderedCue:
        p = Placement(scene, kind, 0, 10, 0, 0, False)
        return RenderedCue(scene, kind, "p", 1, 1.0, Path("x.wav"), "0" * 64, p, "0" * 64, 1, 0.1, reused)

    figures = StemLoudness(-23.0, 4.0, -2.0)
    mix = LoudnessReport("ebu-r128", -23, -1, 0, 0, 0.5, 0, {"mix": figures, "music": figures}, 240_000)
    model = ModelFacts(
        "demo", "demo model", "ab" * 32, False, "cpu", 24, 32, "fp32", "2", None, ProcessFacts("h", 1, "t")
    )
    return ReviewFacts(
        "reel1",
        "s3://footage/reel1.mp4",
        "v1",
        "nightly",
        {"steps": 25},
        model,
        mix,
        scenes,
        spanned,
        [rendered(1, "foley", True), rendered(1, "music", False)],
        ["soundtrack.mp4", "stems/music.wav", "stems/foley.wav", "waveform.png", "mix.wav"],
        "edited",
    )


def test_the_review_page_plays_seeks_and_says_what_is_new() -> None:
    page = review_html(_facts(), lambda name: f"https://signed.example/{name}?sig=1")
    assert '<video id="picture" controls preload="auto" src="https://signed.example/soundtrack.mp4?sig=1">' in page
    assert 'data-stem="music"' in page and 'data-stem="foley"' in page and 'data-stem="dialogue"' not in page
    assert '<a href="#" class="seek" data-t="2.000">00:00:02:00</a>' in page  # F002's in point seeks to 2 s
    assert "glass &lt;breaks&gt;" in page and "<breaks>" not in page  # prompts are escaped
    rows = {row.split("</td>")[0].split(">")[-1]: row for row in page.split("<tr class=")[1:]}
    assert "'reused'" in rows["F001"] and "'muted'" in rows["F002"] and "'new'" in rows["M01"]
    assert "<td>1–2</td>" in rows["M01"] and "-3.0 dB" in rows["M01"]
    assert "trigger: nightly" in page and "steps = 25" in page and "1 of 2 cues generated" in page
    assert "<script src" not in page and "<link " not in page  # self-contained


def test_the_review_page_ab_lists_the_other_versions_with_what_changed_and_plays_the_takes() -> None:
    """Expected: B buttons for the kept versions (newest first), the cue-sheet diff against each, the
    takes of a cue asking for two (take 1 its cue file, take 2 under takes/take2/) in the page's data."""
    import html as html_module
    import json

    from audiox_core.reel.review import OtherVersion, sheet_changes

    facts = _facts()
    before = [c.cue for c in facts.cues]
    by_id = {c.id: c for c in before}
    older = [replace(by_id["F001"], prompt="glass"), replace(by_id["F002"], mute=False), by_id["M01"]]
    cues = [replace(c, cue=replace(c.cue, takes=2)) if c.cue.id == "F001" else c for c in facts.cues]
    r = facts.rendered[0]
    take2 = replace(r, seed=12, path=Path("x.wav"), reused=False)
    facts = replace(
        facts,
        cues=cues,
        others=(OtherVersion("20261207T101500000000Z-run4", "../20261207T101500000000Z-run4/mix.wav", older),),
        takes={2: [take2]},
    )
    page = review_html(facts, lambda name: name)
    assert ">B: run 4 (2026-12-07 10:15 UTC)</button>" in page and ">A: this version</button>" in page
    assert sheet_changes(older, [c.cue for c in cues]) == [
        ("F001", "prompt", "glass", "glass <breaks>"),
        ("F001", "takes", "1", "2"),
        ("F002", "mute", "False", "True"),
    ]
    assert "<td>F002</td><td>mute</td><td>False</td><td>True</td>" in page and "3 change(s)" in page
    data = json.loads(html_module.unescape(page.split('data-review="')[1].split('"')[0]))
    assert data["versions"][1]["mix"] == "../20261207T101500000000Z-run4/mix.wav"
    assert [(t["cue"], t["take"], t["seed"], t["url"]) for t in data["takes"]] == [
        ("F001", 1, 1, "cues/x.wav"),
        ("F001", 2, 12, "takes/take2/x.wav"),
    ]
    assert 'data-cue="F001" data-take="2">take 2</button>' in page
    assert sheet_changes(before, before) == [] and sheet_changes(before, before[:2])[-1] == (
        "F002",
        "cue",
        "—",
        "removed",
    )


def test_the_review_page_notes_a_prompt_longer_than_the_model_reads(tmp_path: Path) -> None:
    """Expected: the demo model's word encoder reads 64 words; M01's 100-word prompt is 100 tokens and
    its row says only the first 64 count; the short prompts get no note."""
    facts = _facts()
    cues = [replace(c, cue=replace(c.cue, prompt="x " * 100)) if c.cue.id == "M01" else c for c in facts.cues]
    page = review_page_task.fn(tmp_path, replace(facts, cues=cues), str(tmp_path)).read_text()
    rows = {row.split("</td>")[0].split(">")[-1]: row for row in page.split("<tr class=")[1:]}
    note = "prompt longer than the model reads (100 of 64 tokens): only the first 64 count"
    assert note in rows["M01"]
    assert "longer than the model reads" not in rows["F001"] + rows["F002"]


def test_the_prefect_summary_spans_a_music_cue_over_its_scenes() -> None:
    from tasks.review import review_markdown

    rows = {line.split(" | ")[0].removeprefix("| "): line for line in review_markdown(_facts(), {}).splitlines()}
    assert rows["M01"].split(" | ")[1] == "1–2" and rows["F001"].split(" | ")[1] == "1"
    assert "muted" in rows["F002"] and "reused" in rows["F001"]


def test_the_cli_lists_the_pictures_and_gives_the_review_page_as_its_serve_address(tmp_path: Path, capsys) -> None:
    from cli.main import _print_outputs

    for name in ("review.html", "mix.wav", "waveform.png", "spectrogram.png", "soundtrack.otio"):
        (tmp_path / name).write_bytes(b"x")
    result = {
        "reel": "reel1",
        "model": "demo model",
        "out_dir": str(tmp_path),
        "review_artifact": "review-reel1",
        "flow_run_id": "abc",
        "review_page": "http://127.0.0.1:8765/out/reel1-0123456789/review.html",
    }
    _print_outputs(result)
    out = capsys.readouterr().out
    assert f"  {tmp_path / 'waveform.png'}" in out and f"  {tmp_path / 'spectrogram.png'}" in out
    assert "Review page: http://127.0.0.1:8765/out/reel1-0123456789/review.html" in out and "audiox-studio serve" in out
