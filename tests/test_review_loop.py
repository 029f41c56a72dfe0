"""The producer's loop under Prefect's test harness: a rendered version waits (paused, with the typed
form), changes to two cues resume it and make a new version where only those two are generated, and
approval delivers the version and records who approved it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import scaled_timeout

from audiox_core.reel.naming import reel_folder
from db import repository

pytestmark = pytest.mark.integration


def _paused(flow_run_id: str | None, timeout_s: float = 300, seen: set[str] | None = None) -> str:
    """The id of the soundtrack flow run once it is paused (waiting for direction) under a pause key
    not in ``seen`` (each question has its own key; the key is added to ``seen``)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType

    deadline = time.monotonic() + scaled_timeout(timeout_s)
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["PAUSED"])))
            )
            for r in runs:
                details = r.state.state_details if r.state else None
                fresh = details is not None and details.pause_key not in (seen or set())
                if flow_run_id in (None, str(r.id)) and fresh and details.run_input_keyset:
                    if seen is not None:
                        seen.add(details.pause_key)
                    return str(r.id)
            time.sleep(0.5)
    raise AssertionError("the flow run did not pause for review")


def _form(flow_run_id: str) -> dict[str, Any]:
    """The form the paused run shows: its description (markdown above it) and its JSON schema."""
    from prefect.client.orchestration import get_client
    from prefect.input.actions import read_flow_run_input

    with get_client(sync_client=True) as client:
        keyset = client.read_flow_run(flow_run_id).state.state_details.run_input_keyset
    return {
        "description": read_flow_run_input(keyset["description"], flow_run_id),
        "schema": read_flow_run_input(keyset["schema"], flow_run_id),
    }


def _resume(flow_run_id: str, direction: dict[str, Any]) -> None:
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(flow_run_id, run_input=direction)


def _reviewed_run(
    source: Path, out: Path, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[threading.Thread, dict[str, Any]]:
    """The soundtrack flow with review on, started in a thread (its home under ``tmp_path``); what it
    returned or raised lands in the dict as ``result`` or ``error``."""
    from flows.soundtrack import soundtrack

    monkeypatch.setenv("AUDIOX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUDIOX_DB_URL", raising=False)
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["result"] = soundtrack(
                str(source),
                str(out),
                {"steps": 2, "seed": seed},
                review=True,
                review_timeout_s=round(scaled_timeout(600)),
            )
        except BaseException as e:  # reported below
            done["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done


def _cue_hashes(folder: Path) -> dict[str, str]:
    from audiox_core.store.files import sha256_file

    return {p.name: sha256_file(p) for p in (folder / "cues").iterdir()}


def test_changes_regenerate_only_those_cues_and_approval_delivers(prefect_api, reel, tmp_path, monkeypatch) -> None:

    out = tmp_path / "out"
    thread, done = _reviewed_run(reel.path, out, 3, tmp_path, monkeypatch)
    try:
        keys: set[str] = set()
        flow_run_id = _paused(None, seen=keys)
        folder = out / reel_folder(str(reel.path))
        first = _cue_hashes(folder)
        sheet = yaml.safe_load((folder / "cues.yaml").read_text())
        foley = [c["id"] for c in sheet["cues"] if c["kind"] == "foley"]
        changed = {foley[0]: "a heavy door slams shut", foley[-1]: "glass shatters on stone"}
        _resume(
            flow_run_id, {"decision": "request changes", "reviewer": "Ana (producer)", "changes": [{"cue": "F404"}]}
        )
        _paused(flow_run_id, seen=keys)  # refused (no such cue): the same version waits again
        assert _cue_hashes(folder) == first
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:  # the run's state says why, beside the form
            message = client.read_flow_run(flow_run_id).state.message
        assert message.startswith("direction refused: cue sheet of ") and "no cue 'F404'" in message, message
        form = _form(flow_run_id)  # it says why, above the version's cues, with the refused input kept
        assert form["description"].startswith("**Your last direction was refused: cue sheet of ")
        assert "no cue 'F404'" in form["description"] and f"| {foley[0]} | foley | scene 0 |" in form["description"]
        assert form["schema"]["properties"]["changes"]["default"][0]["cue"] == "F404"
        _resume(
            flow_run_id,
            {
                "decision": "request changes",
                "reviewer": "Ana (producer)",
                "note": "doors, not hum",
                "changes": [{"cue": cue, "prompt": prompt} for cue, prompt in changed.items()],
            },
        )
        _paused(flow_run_id, seen=keys)  # the second version waits
        second = _cue_hashes(folder)
        sheet2 = yaml.safe_load((folder / "cues.yaml").read_text())
        assert {c["id"]: c["prompt"] for c in sheet2["cues"] if c["id"] in changed} == changed
        differ = {name for name in first if first[name] != second.get(name)}
        assert differ == {f"scene{int(cue[1:]):04d}_foley.wav" for cue in changed}, differ
        assert "new" in (folder / "review.html").read_text()
        _resume(flow_run_id, {"decision": "approve", "reviewer": "Ana (producer)", "note": "good"})
        thread.join(timeout=scaled_timeout(300))
    finally:
        if thread.is_alive():
            from prefect.flow_runs import resume_flow_run

            resume_flow_run(flow_run_id, run_input={"decision": "approve", "reviewer": "test teardown"})
            thread.join(timeout=scaled_timeout(120))
    assert "error" not in done, done.get("error")
    result = done["result"]
    assert result["approved"] is True and result["reviewer"] == "Ana (producer)"
    delivered = out / "delivered" / reel_folder(str(reel.path))
    named = f"{reel.path.stem}_v{result['run_id']:03d}"
    assert (delivered / f"{named}_PM_2ch_48k_24b_25.wav").is_file() and (delivered / "cues.yaml").is_file()
    assert (delivered / f"{named}_FXStem_2ch_48k_24b_25.wav").is_file() and (delivered / "soundtrack.aaf").is_file()
    assert not (delivered / "mix.wav").exists()  # stems and printmaster go by the studio's naming pattern
    approval = json.loads((delivered / "provenance.json").read_text())["approval"]
    assert approval["approved_by"] == "Ana (producer)" and approval["version"] == result["version"]
    assert approval["run_id"] == result["run_id"] and approval["note"] == "good" and approval["approved_at"]
    _approval_is_on_the_run_page(flow_run_id, result)
    assert (delivered / "soundtrack.mp4").read_bytes() == (folder / "soundtrack.mp4").read_bytes()
    db_url = f"sqlite:///{tmp_path / 'home' / 'studio.db'}"
    versions = repository.flow_run_versions(db_url, flow_run_id)
    assert len(versions) == 2
    decisions = repository.reviews(db_url, [v["run_id"] for v in versions])
    assert [(d["decision"], d["reviewer"]) for d in decisions] == [
        ("refused", "Ana (producer)"),
        ("changes", "Ana (producer)"),
        ("approved", "Ana (producer)"),
    ]
    assert "no cue 'F404'" in decisions[0]["note"]
    assert decisions[1]["changes"] == [{"cue": c, "prompt": p} for c, p in changed.items()]
    assert decisions[2]["delivered_uri"] and decisions[2]["decided_at"] is not None


def _approval_is_on_the_run_page(flow_run_id: str, result: dict[str, Any]) -> None:
    """The finished run says it was approved: its final state's message, its tag, its artifacts
    (the approval, and the refused direction before it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    assert run.state.is_completed() and run.state.message.startswith("approved by Ana (producer): version ")
    assert result["version"] in run.state.message and "delivered to " in run.state.message
    assert "approved" in run.tags
    by_key = {a.key: a for a in artifacts if a.key}
    slug = result["review_artifact"].removeprefix("review-")
    assert "**Ana (producer)** approved version" in by_key[f"approval-{slug}"].data
    (refused,) = [a for key, a in by_key.items() if key.startswith("direction-refused-")]
    assert refused.key.endswith(f"-run{result['run_id'] - 1}")  # on the first version, which it left waiting
    assert "no cue 'F404'" in refused.data


def test_without_an_answer_the_version_stays_unapproved(prefect_api, reel, tmp_path, monkeypatch) -> None:
    from flows.soundtrack import soundtrack

    monkeypatch.setenv("AUDIOX_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUDIOX_DB_URL", raising=False)
    result = soundtrack(str(reel.path), str(tmp_path / "out"), {"steps": 2}, review=True, review_timeout_s=3)
    assert result["approved"] is False
    assert not (tmp_path / "out" / "delivered").exists()


def test_takes_are_made_beside_the_cue_played_on_the_page_and_the_chosen_one_is_reused(
    prefect_api, reel, tmp_path, monkeypatch
) -> None:
    """Expected: the form starts with every cue's item; two takes of one Foley cue asked by editing its
    item make take 2 (the next seed) under takes/take2/, recorded as a generation beside the version
    (not in its scenes), offered on the review page, which A/Bs against the first version and says
    what changed; choosing take 2 makes a version that generates nothing and whose cue is take 2's
    very bytes; each version keeps its own folder behind the reel's pointer."""
    from audiox_core.reel.cuesheet import take_seed
    from audiox_core.store.files import sha256_file

    out = tmp_path / "out"
    thread, done = _reviewed_run(reel.path, out, 5, tmp_path, monkeypatch)
    flow_run_id = None
    try:
        keys: set[str] = set()
        flow_run_id = _paused(None, seen=keys)
        folder = out / reel_folder(str(reel.path))
        first_version = folder.resolve()
        items = _form(flow_run_id)["schema"]["properties"]["changes"]["default"]
        sheet = yaml.safe_load((folder / "cues.yaml").read_text())
        assert [i["cue"] for i in items] == [c["id"] for c in sheet["cues"]]
        assert [(i["prompt"], i["seed"]) for i in items] == [(c["prompt"], c["seed"]) for c in sheet["cues"]]
        cue = next(c for c in sheet["cues"] if c["kind"] == "foley")
        items = [{**i, "takes": 2} if i["cue"] == cue["id"] else i for i in items]
        _resume(flow_run_id, {"decision": "request changes", "reviewer": "Ana (producer)", "changes": items})
        _paused(flow_run_id, seen=keys)
        second_version = folder.resolve()
        assert second_version != first_version and first_version.is_dir()  # both kept
        name = f"scene{cue['scenes'][0]:04d}_foley.wav"
        take2 = second_version / "takes" / "take2" / name
        assert take2.is_file() and sha256_file(take2) != sha256_file(second_version / "cues" / name)
        assert not (second_version / "takes" / "take2" / f"scene{cue['scenes'][0]:04d}_music.wav").exists()
        prov = json.loads((second_version / "provenance.json").read_text())
        (take,) = prov["takes"]
        assert (take["take"], take["seed"], take["output_sha256"]) == (2, take_seed(cue["seed"], 2), sha256_file(take2))
        db_url = f"sqlite:///{tmp_path / 'home' / 'studio.db'}"
        assert take["key"] in repository.find_generations(db_url, [take["key"]])
        assert all(g["key"] != take["key"] for g in prov["generations"])
        page = (second_version / "review.html").read_text()
        assert f'data-cue="{cue["id"]}" data-take="2">take 2</button>' in page
        assert f"../{first_version.name}/mix.wav" in page  # B: the first version, at the same playhead
        assert f"<td>{cue['id']}</td><td>takes</td><td>1</td><td>2</td>" in page  # what changed
        _resume(
            flow_run_id,
            {"decision": "request changes", "reviewer": "Ana (producer)", "changes": [{"cue": cue["id"], "take": 2}]},
        )
        _paused(flow_run_id, seen=keys)
        third_version = folder.resolve()
        assert sha256_file(third_version / "cues" / name) == sha256_file(take2)  # the take itself, not made again
        chosen = yaml.safe_load((third_version / "cues.yaml").read_text())
        assert next(c for c in chosen["cues"] if c["id"] == cue["id"])["seed"] == take_seed(cue["seed"], 2)
        assert len(list(folder.parent.joinpath(f"{folder.name}.versions").iterdir())) == 3
        _resume(flow_run_id, {"decision": "approve", "reviewer": "Ana (producer)"})
        thread.join(timeout=scaled_timeout(300))
    finally:
        if thread.is_alive() and flow_run_id:
            from prefect.flow_runs import resume_flow_run

            resume_flow_run(flow_run_id, run_input={"decision": "approve", "reviewer": "test teardown"})
            thread.join(timeout=scaled_timeout(120))
    assert "error" not in done, done.get("error")
    versions = repository.flow_run_versions(db_url, flow_run_id)
    assert versions[-1]["run_id"] == done["result"]["run_id"]
    third = repository.get_run(db_url, done["result"]["run_id"])
    assert third.status == "succeeded"
