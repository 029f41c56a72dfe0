"""The soundtrack flow end to end under Prefect's test harness, and the CLI on bad input."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from harness import Processes, scaled_timeout
from readers import packet_md5s

from audiox_core.reel.naming import reel_folder
from audiox_core.sound.audio import read_wav
from audiox_core.store.files import sha256_file
from audiox_core.video.probe import probe
from audiox_core.workspace import studio_home
from db import repository
from db.session import database_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def finished(prefect_api, reel, tmp_path_factory):
    """Run the flow once for the module: (result, output folder, AUDIOX_HOME)."""
    from flows.soundtrack import soundtrack

    home = tmp_path_factory.mktemp("home")
    out = tmp_path_factory.mktemp("out")
    mp = pytest.MonkeyPatch()
    mp.setenv("AUDIOX_HOME", str(home))
    mp.delenv("AUDIOX_DB_URL", raising=False)
    try:
        result = soundtrack(str(reel.path), str(out), {"steps": 3, "seed": 5})
        yield result, out / reel_folder(str(reel.path)), database_url(studio_home())
    finally:
        mp.undo()


def _sheet_cues(folder: Path) -> int:
    """The cues of the sheet a version followed (cues.yaml): one generation each, none muted here."""
    return len(yaml.safe_load((folder / "cues.yaml").read_text())["cues"])


@pytest.fixture
def same_home(finished, monkeypatch: pytest.MonkeyPatch):
    """AUDIOX_HOME pointing at the finished run's database."""
    _, _, url = finished
    monkeypatch.setenv("AUDIOX_HOME", str(Path(url.removeprefix("sqlite:///")).parent))
    monkeypatch.delenv("AUDIOX_DB_URL", raising=False)
    return url


def test_outputs_exist_and_picture_is_untouched(finished, reel) -> None:
    _, folder, _ = finished
    names = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert {
        "soundtrack.mp4",
        "mix.wav",
        "stems/foley.wav",
        "stems/music.wav",
        "stems/dialogue.wav",
        "scenes.json",
        "scenes.csv",
        "scenes.edl",
        "provenance.json",
        "stems/m_and_e.wav",
        "loudness.json",
        "waveform.png",
        "spectrogram.png",
    } <= names
    assert packet_md5s(folder / "soundtrack.mp4") == packet_md5s(reel.path)
    info = probe(folder / "soundtrack.mp4")
    assert info.audio is not None and info.audio.channels == 2
    assert abs(info.audio.duration_s - info.video.duration_s) <= 1 / 25
    assert folder.is_symlink() and folder.resolve().parent.name == f"{folder.name}.versions"  # behind the pointer
    leftovers = [*folder.parent.iterdir(), *folder.resolve().parent.iterdir()]
    assert not [p for p in leftovers if p.name.startswith(".")]  # no staging leftovers


def test_mix_and_stems_are_48k_24bit_picture_length(finished, reel) -> None:
    _, folder, _ = finished
    mix, rate = read_wav(folder / "mix.wav")
    assert rate == 48_000 and mix.shape == (2, round(reel.frames / reel.fps * 48_000))
    stems = [read_wav(folder / "stems" / f"{k}.wav")[0] for k in ("dialogue", "foley", "music")]
    assert np.abs(mix - sum(stems)).max() < 1e-4  # stems sum to the mix (24-bit rounding only)
    assert np.abs(stems[1]).max() > 0 and np.abs(stems[2]).max() > 0
    assert b"WAVE" in (folder / "mix.wav").read_bytes()[:12]


def test_scenes_json_and_provenance_match_the_reel_and_the_outputs(finished, reel) -> None:
    _, folder, _ = finished
    scenes = json.loads((folder / "scenes.json").read_text())
    assert [s["start_frame"] for s in scenes["scenes"]] == [0, *reel.cuts]
    prov = json.loads((folder / "provenance.json").read_text())
    assert prov["source"]["sha256"] == sha256_file(reel.path)
    assert prov["model"]["random_weights"] is True and "RANDOM" in prov["model"]["label"]
    sheet = yaml.safe_load((folder / "cues.yaml").read_text())  # the drafted sheet this version followed
    foley = [c for c in sheet["cues"] if c["kind"] == "foley"]
    assert [c["scenes"] for c in foley] == [[s["index"], s["index"]] for s in scenes["scenes"]]
    assert len(prov["generations"]) == len(sheet["cues"])
    assert (folder / "music_cues.csv").read_text().startswith("cue,title,in,out,duration,usage\n1,")
    by_uri = {o["uri"]: o["sha256"] for o in prov["outputs"]}
    assert by_uri[(folder / "mix.wav").resolve().as_uri()] == sha256_file(folder / "mix.wav")  # the version's own file


def test_database_holds_the_run_its_scenes_generations_and_outputs(finished) -> None:
    result, folder, url = finished
    run = repository.get_run(url, result["run_id"])
    assert run.status == "succeeded" and run.error is None and run.flow_run_id == result["flow_run_id"]
    assert len(run.scenes) == 3 and sum(len(s.generations) for s in run.scenes) == _sheet_cues(folder)
    outputs = {o.uri: o.sha256 for o in run.outputs}
    assert outputs[(folder / "soundtrack.mp4").resolve().as_uri()] == sha256_file(folder / "soundtrack.mp4")


def test_review_artifacts_in_prefect_come_in_order_and_link_through_serve(finished) -> None:
    """Expected: the version has one card on the flow run itself (no task run's), titled with the reel
    and the version's run, whose first link is the review page (through `audiox-studio serve`, never
    file://), then the pictures, every deliverable's link and one row per cue."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    result, folder, _ = finished
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[result["flow_run_id"]]))
        )
    (card,) = [a for a in artifacts if a.type == "markdown"]
    assert (
        card.key
        == result["review_artifact"]
        == f"{result['review_artifact'].rsplit('-run', 1)[0]}-run{result['run_id']}"
    )
    assert card.task_run_id is None and result["version"] in card.description
    assert not [a for a in artifacts if a.type in ("link", "image")]
    page = str((folder / "review.html").resolve())
    links = re.findall(r"\]\((http[^)]+)\)", card.data)
    assert links[0] == f"http://127.0.0.1:8765{page}"
    assert "![waveform](http://127.0.0.1:8765" in card.data and "[soundtrack.aaf](http://127.0.0.1:8765" in card.data
    assert "| F000 | 0 |" in card.data and "file://" not in "".join(str(a.data) for a in artifacts)


def test_the_flow_run_is_named_after_the_reel_and_its_source(finished, reel) -> None:
    from prefect.client.orchestration import get_client

    result, _, _ = finished
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(result["flow_run_id"])
    assert run.name == f"{reel.path.stem} · {reel.path.resolve()}"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("gone.mp4", None, "no such file"),
        ("zero.mp4", b"", "empty"),
        ("notes.mp4", b"hello\n", "cannot be read as media"),
    ],
)
def test_cli_bad_input_one_line_exit_1_nothing_left_failed_run(
    prefect_api, home, tmp_path, capsys, name, content, reason
) -> None:
    from cli.main import main

    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    out = tmp_path / "out"
    assert main(["run", str(source), "--out", str(out), "--steps", "2"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(source) in errors[0] and reason in errors[0]
    assert not out.exists()
    assert not list((home / "work").glob("*")) if (home / "work").exists() else True
    from sqlalchemy import select

    from db.models import Run
    from db.session import sessions

    with sessions(database_url(home))() as s:
        run = s.scalars(select(Run).order_by(Run.id.desc())).first()
    assert run.status == "failed" and str(source) in run.error and reason in run.error


def test_cli_process_prints_exactly_one_line(prefect_api, home, tmp_path) -> None:
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "AUDIOX_HOME": str(home)}
    source = tmp_path / "fake.mp4"
    source.write_text("not a video")
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "run", str(source), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=scaled_timeout(300),
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {source}: cannot be read as media by ffprobe (Invalid data found when processing input)"
    ]
    assert not (tmp_path / "out").exists()


def test_rerun_reuses_generations_and_rows(finished, same_home, reel) -> None:
    from sqlalchemy import func, select

    from db.models import Asset, Generation, Output
    from db.session import sessions
    from flows.soundtrack import soundtrack

    result, folder, url = finished
    before = {p.name: sha256_file(p) for p in (folder / "cues").iterdir()}

    def counts() -> tuple[int, ...]:
        with sessions(url)() as s:
            return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Asset, Generation, Output))

    first = counts()
    again = soundtrack(str(reel.path), str(folder.parent), {"steps": 3, "seed": 5})
    assert again["run_id"] != result["run_id"]
    assert counts()[:2] == first[:2]  # same asset, same generations: nothing regenerated or duplicated
    assert {p.name: sha256_file(p) for p in (folder / "cues").iterdir()} == before
    run = repository.get_run(url, again["run_id"])
    assert sum(len(s.generations) for s in run.scenes) == _sheet_cues(folder) and run.mix is not None


def test_provenance_of_a_renamed_copy(finished, same_home, tmp_path) -> None:
    import shutil

    from prov.model import ProvDocument

    from cli.lineage import lookup, render

    _, folder, _ = finished
    copy = tmp_path / "renamed-final-mix.wav"
    shutil.copyfile(folder / "mix.wav", copy)
    found = lookup(str(copy))
    assert (
        found.role == "output"
        and found.provenance.source.sha256 == json.loads((folder / "provenance.json").read_text())["source"]["sha256"]
    )
    assert len(found.provenance.generations) == _sheet_cues(folder) and found.provenance.mix.preset == "ebu-r128"
    (tmp_path / "prov.json").write_text(render(found, "prov"))
    document = ProvDocument.deserialize(source=str(tmp_path / "prov.json"), format="json")
    assert len(list(document.get_records())) > 20
    cue = lookup(str(next((folder / "cues").glob("*_music.wav"))))
    assert cue.role in ("output", "generated cue")


def test_lineage_json_is_the_reels_provenance_json(finished, same_home, capsys) -> None:
    """`audiox-studio provenance mix.wav --json` rebuilds from the database the very document the
    run wrote beside its outputs (after the rerun above: reused cues keep their original records)."""
    from audiox_core.provenance.records import ProvenanceDocument
    from cli.main import main

    _, folder, _ = finished
    assert main(["provenance", str(folder / "mix.wav"), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = (folder / "provenance.json").read_text()
    assert (printed["is"], printed["status"]) == ("output", "succeeded")
    assert ProvenanceDocument.from_dict(printed["provenance"]) == ProvenanceDocument.from_json(written)
    assert printed["provenance"] == json.loads(written)


@pytest.mark.long(30)
def test_rerun_after_a_crash_skips_the_batches_that_finished(
    prefect_api, home, reel, tmp_path, processes: Processes
) -> None:
    """Kill a run as soon as its first generation batch (one scene here) has finished: the rerun
    finds that batch's cues in the tensor cache (keyed on their generation keys) and generates only
    the others: the cues the crashed run left are the very same files afterwards, not rewritten."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL

    from audiox_core.store.cache import entry_name
    from flows.soundtrack import soundtrack

    settings = {"steps": 60, "seed": 9, "batch_size": 1}  # batches of 4 cues (PACK x 1 window per pass)
    out = tmp_path / "out"
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "AUDIOX_HOME": str(home)}
    code = f"from flows.soundtrack import soundtrack; soundtrack({str(reel.path)!r}, {str(out)!r}, {settings!r})"
    proc = processes.start([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finished_batches(flow_run_ids: list | None = None) -> dict:
        with get_client(sync_client=True) as client:
            flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)) if flow_run_ids else None
            runs = client.read_task_runs(flow_run_filter=flow_filter)
        return {
            r.id: r.state.name for r in runs if r.name.startswith("generate-cues") and r.state and r.state.is_final()
        }

    earlier = finished_batches()  # other tests' runs share the harness
    deadline = time.monotonic() + scaled_timeout(300)
    while not set(finished_batches()) - set(earlier):
        assert proc.poll() is None, "the first run ended before any batch finished"
        assert time.monotonic() < deadline, "no batch finished in time"
        time.sleep(0.05)
    proc.kill()  # the crash
    proc.wait(timeout=scaled_timeout(10))
    assert not (out / reel_folder(str(reel.path))).exists()  # the crashed run published nothing
    cues = home / "cache" / "cues"
    staged = {cues / entry_name(k) for f in (home / "cache" / "staged").iterdir() for k in f.read_text().split()}
    cached = {p: p.stat().st_ino for p in cues.rglob("*.safetensors") if p not in staged}
    assert cached, "the finished batch left no cues in the tensor cache"

    result = soundtrack(str(reel.path), str(out), settings)
    states = list(finished_batches([result["flow_run_id"]]).values())
    assert states == ["Completed"] * 2, states  # five cues (three Foley, two music): batches of four and one
    assert {p: p.stat().st_ino for p in cached} == cached  # a regenerated cue would be a new file
    assert not any(p.exists() for p in staged)  # the rerun's sweep removed the dead run's staged frames
    assert len(list((home / "cache" / "cues").rglob("*.safetensors"))) > len(cached)  # the others were generated
    folder = out / reel_folder(str(reel.path))
    assert len(list((folder / "cues").iterdir())) == _sheet_cues(folder)


def test_an_inference_worker_loads_the_model_once_for_several_runs(
    prefect_api, home, reel, tmp_path, monkeypatch, processes: Processes
) -> None:
    """AUDIOX_INFERENCE=task-worker: two flow runs send their model load and generation batches to
    one long-lived inference worker (a Prefect task worker), which loads the model once for both;
    the flows themselves never load it."""
    from prefect.settings import PREFECT_API_URL

    from flows.soundtrack import soundtrack
    from tasks.inference import MODELS

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "AUDIOX_HOME": str(home)}
    log = tmp_path / "worker.log"
    with log.open("w") as sink:
        worker = processes.start(
            [sys.executable, "-m", "cli", "inference-worker"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    monkeypatch.setenv("AUDIOX_INFERENCE", "task-worker")
    MODELS.clear()
    results = [soundtrack(str(reel.path), str(tmp_path / f"out{seed}"), {"steps": 2, "seed": seed}) for seed in (1, 2)]
    loaders = [json.loads((Path(r["out_dir"]) / "provenance.json").read_text())["model"]["process"] for r in results]
    assert loaders[0] == loaders[1], loaders  # one load, at one moment, in one process
    assert loaders[0]["pid"] == worker.pid, (loaders, log.read_text()[-2000:])
    assert len(MODELS) == 0  # the flows' own process never loaded the model
    for r in results:
        assert len(list((Path(r["out_dir"]) / "cues").iterdir())) == _sheet_cues(Path(r["out_dir"]))


def test_without_an_inference_worker_the_run_fails_with_one_clear_line(
    prefect_api, home, reel, tmp_path, monkeypatch
) -> None:
    from audiox_core.errors import ModelError
    from flows.soundtrack import soundtrack

    monkeypatch.setenv("AUDIOX_INFERENCE", "task-worker")
    monkeypatch.setenv("AUDIOX_INFERENCE_WAIT_S", "3")
    with pytest.raises(
        ModelError,
        match=r"^tiny: no inference worker loaded the model within 3 s; start `audiox-studio inference-worker`",
    ):
        soundtrack(str(reel.path), str(tmp_path / "out"), {"steps": 2})
    assert not (tmp_path / "out" / reel_folder(str(reel.path))).exists()


def test_a_task_run_without_a_state_yet_is_waited_for_other_errors_are_not(monkeypatch) -> None:
    """Prefect's distributed future raises at once while a just-sent run has no state (seen under
    load in CI); ``result_of`` asks again, and passes every other error on."""
    from tasks import inference

    class Future:
        def __init__(self, errors: list[Exception]) -> None:
            self.errors, self.calls = errors, 0

        def result(self, timeout=None):
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)
            return ["key"]

    monkeypatch.setattr(inference.time, "sleep", lambda s: None)
    no_state = RuntimeError("Task run 1169 has no state which means it hasn't started yet.")
    waiting = Future([no_state, no_state])
    assert inference.result_of(waiting) == ["key"] and waiting.calls == 3
    with pytest.raises(RuntimeError, match="boom"):
        inference.result_of(Future([RuntimeError("boom")]))
    monkeypatch.setattr(inference, "NO_STATE_WAIT_S", -1.0)
    with pytest.raises(RuntimeError, match="has no state"):
        inference.result_of(Future([no_state]))
