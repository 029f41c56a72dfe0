"""Deployments from prefect.yaml against a real `prefect server start`, with process workers and
moto_server as S3 and SQS: an S3 drop starts exactly one run per object version, and two workers
on one pool never run a reel twice."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from harness import Processes, scaled_timeout, wait_until_serving

from audiox_core.reel.naming import reel_folder
from audiox_core.store.s3 import read_current, s3_client

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, s3_endpoint):
    """A Prefect server on a free port with the project's deployments, and the env to reach it."""
    port = free_port()
    home = tmp_path_factory.mktemp("prefect-home")
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "AUDIOX_HOME": str(tmp_path_factory.mktemp("audiox-home")),
    }
    env.pop("PREFECT_PROFILES_PATH", None)
    with Processes() as started:
        proc = started.start(
            [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_serving(f"{api}/health", proc, scaled_timeout(60), "prefect server")
        prefect(env, "work-pool", "create", "audiox", "--type", "process")
        prefect(env, "--no-prompt", "deploy", "--all")
        try:
            s3_client().create_bucket(Bucket="footage")
        except s3_client().exceptions.BucketAlreadyOwnedByYou:
            pass
        yield api, env


def call(method: str, url: str, **kwargs: Any) -> Any:
    """The JSON of one Prefect API call, its timeout scaled (httpx's 5 s default is too short under load)."""
    response = httpx.request(method, url, timeout=scaled_timeout(30), **kwargs)
    response.raise_for_status()
    return response.json()


def flow_runs(api: str, deployment: str) -> list[dict]:
    deployments = call("POST", f"{api}/deployments/filter", json={"deployments": {"name": {"any_": [deployment]}}})
    ids = [d["id"] for d in deployments]
    return call("POST", f"{api}/flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": ids}}})


def worker(processes: Processes, env: dict, *extra: str) -> subprocess.Popen:
    """A `prefect worker start --run-once` on the pool, stopped with the test however it ends."""
    return processes.start(
        [BIN / "prefect", "worker", "start", "--pool", "audiox", "--run-once", *extra],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def prefect(env: dict, *args: str) -> str:
    """`prefect ARGS`' output (a failure raises, naming the command and its stderr)."""
    done = subprocess.run(
        [BIN / "prefect", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=scaled_timeout(120)
    )
    assert done.returncode == 0, (args, done.stderr[-2000:])
    return done.stdout


def test_the_nightly_schedule_is_deployed_switched_off(server) -> None:
    """prefect.yaml's buckets are placeholders: `deploy --all` must not start nightly runs against them."""
    api, _ = server
    (nightly,) = call("POST", f"{api}/deployments/filter", json={"deployments": {"name": {"any_": ["nightly"]}}})
    assert [(s["schedule"]["cron"], s["active"]) for s in nightly["schedules"]] == [("0 2 * * *", False)]


@pytest.mark.long(165)
def test_s3_drop_starts_exactly_one_run_per_object_version(server, reel, processes) -> None:
    api, env = server
    sqs = __import__("boto3").client("sqs")
    queue = sqs.create_queue(QueueName="drops")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3_client().put_bucket_notification_configuration(
        Bucket="footage",
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    for _ in range(2):  # a burst: the same reel uploaded twice
        s3_client().upload_file(str(reel.path), "footage", "incoming/dropped.mp4")
    message = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, VisibilityTimeout=0)["Messages"][0]
    sqs.send_message(QueueUrl=queue, MessageBody=message["Body"])  # and SQS delivering a message twice
    for _ in range(2):
        subprocess.run(
            [BIN / "audiox-studio", "watch", "--queue", queue, "--once"],
            env=env,
            check=True,
            capture_output=True,
            timeout=scaled_timeout(120),
        )
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)  # all consumed once accepted
    deadline = time.monotonic() + scaled_timeout(90)
    while not flow_runs(api, "s3-drop"):
        assert time.monotonic() < deadline, "the s3-drop trigger started no run"
        time.sleep(2)
    time.sleep(35)  # the trigger schedules its run 30 s after the burst (debounce)
    assert len(flow_runs(api, "s3-drop")) == 1
    assert worker(processes, env).wait(timeout=scaled_timeout(400)) == 0
    (run,) = flow_runs(api, "s3-drop")
    assert run["state_type"] == "COMPLETED" and run["parameters"]["source_uri"] == "s3://footage/incoming/dropped.mp4"
    current = read_current(f"s3://footage/soundtracks/{reel_folder('s3://footage/incoming/dropped.mp4')}")
    assert current is not None
    assert {"soundtrack.mp4", "mix.wav", "provenance.json"} <= {
        f.key.removeprefix(current.prefix) for f in current.files
    }


@pytest.mark.long(90)
def test_two_workers_never_run_a_reel_twice(server, reel, processes) -> None:
    api, env = server
    ids = []
    for i in range(4):
        s3_client().upload_file(str(reel.path), "footage", f"batch/reel{i}.mp4")
        params = json.dumps(
            {
                "source_uri": f"s3://footage/batch/reel{i}.mp4",
                "out_uri": "s3://footage/batch-out",
                "settings": {"steps": 2},
                "review": False,  # unattended: the batch is about workers, not producers
            }
        )
        ids.append(prefect(env, "deployment", "run", "soundtrack/on-demand", "--params", params))

    def batch() -> list[dict]:
        return [
            r for r in flow_runs(api, "on-demand") if r["parameters"]["source_uri"].startswith("s3://footage/batch/")
        ]

    for _ in range(3):  # a --run-once worker takes what one poll offers; start pairs until none is left
        workers = [worker(processes, env, "--limit", "2"), worker(processes, env, "--limit", "2")]
        for w in workers:
            assert w.wait(timeout=scaled_timeout(600)) == 0
        if not any(r["state_type"] in ("SCHEDULED", "PENDING") for r in batch()):
            break
    runs = batch()
    assert len(runs) == 4 and all(r["state_type"] == "COMPLETED" for r in runs), [
        (r["name"], r["state_name"], r["state"]["message"]) for r in runs
    ]
    for r in runs:
        states = call("GET", f"{api}/flow_run_states/", params={"flow_run_id": r["id"]})
        assert sum(s["type"] == "RUNNING" for s in states) == 1, r["name"]  # claimed and run by one worker only
    for i in range(4):
        current = read_current(f"s3://footage/batch-out/{reel_folder(f's3://footage/batch/reel{i}.mp4')}")
        assert current is not None and current.prefix + "mix.wav" in {f.key for f in current.files}


def _browser():
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    options = Options()
    # Offline and sandbox-free as root: no background calls home, no first-run screens.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(flag)
    options.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=options)


def _wait_state(api: str, flow_run_id: str, types: tuple[str, ...], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + scaled_timeout(timeout_s)
    while True:
        run = call("GET", f"{api}/flow_runs/{flow_run_id}")
        if run["state_type"] in types:
            return run
        assert time.monotonic() < deadline, (run["state_type"], run["state_name"], types)
        time.sleep(0.5)


def _cue_hashes(folder: Path) -> dict[str, str]:
    from audiox_core.store.files import sha256_file

    return {p.name: sha256_file(p) for p in (folder / "cues").iterdir()}


class _Producer:
    """The producer's browser: the run's page in the Prefect UI, the review page, the direction form."""

    def __init__(self, ui: str, shots: Path) -> None:
        self.browser, self.ui, self.shots = _browser(), ui, shots
        shots.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        self.browser.save_screenshot(str(self.shots / name))

    def open_run(self, flow_run_id: str, title: str, tab: str | None = None) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.browser.get(f"{self.ui}/runs/flow-run/{flow_run_id}")
        WebDriverWait(self.browser, scaled_timeout(60)).until(
            lambda b: title in b.find_element(By.TAG_NAME, "body").text
        )
        if tab:
            found = WebDriverWait(self.browser, scaled_timeout(30)).until(
                lambda b: next(
                    (e for e in b.find_elements(By.CSS_SELECTOR, "[role=tab], li") if e.text.strip() == tab), None
                )
            )
            found.click()
            time.sleep(2)

    def play_review_page(self, url: str) -> dict:
        self.browser.get(url)
        return self.play(1.0)

    def play(self, seconds: float) -> dict:
        """Play the picture (and whatever the page has chosen to be heard) for ``seconds`` of media
        time, then pause; the player's state: time, duration, error, what is heard, timecode, drift."""
        self.browser.execute_script("window.reviewPlayer.resetDrift(); document.getElementById('picture').play();")
        start = self.browser.execute_script("return document.getElementById('picture').currentTime")
        deadline = time.monotonic() + scaled_timeout(30)
        read = (
            "const v = document.getElementById('picture');"
            "return {ready: v.readyState, t: v.currentTime, duration: v.duration, error: v.error && v.error.code,"
            " heard: document.getElementById('heard').textContent, drift: window.reviewPlayer.drift(),"
            " tc: document.getElementById('tc').textContent, reel_tc: document.getElementById('reel-tc').textContent,"
            " frame: window.reviewPlayer.frame()};"
        )
        while time.monotonic() < deadline:
            state = self.browser.execute_script(read)
            if state["t"] - start > seconds or state["t"] >= state["duration"] - 0.05:
                break
            time.sleep(0.2)
        self.browser.execute_script("document.getElementById('picture').pause()")
        time.sleep(0.3)  # paused: the page's next frames show the time it stopped at
        return {**self.browser.execute_script(read), "drift": state["drift"]}

    def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        self.browser.find_element(By.CSS_SELECTOR, css).click()

    def heard(self, what: str) -> str:
        """Wait until the page says it plays ``what`` (its buffers loaded); the line it shows."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        line = lambda b: b.find_element(By.ID, "heard").text  # noqa: E731
        WebDriverWait(self.browser, scaled_timeout(30)).until(lambda b: what in line(b) and "loading" not in line(b))
        return line(self.browser)

    def form(self):
        """Click Resume; the direction form (after a refusal: with the producer's input kept)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        b = self.browser
        WebDriverWait(b, scaled_timeout(60)).until(
            lambda b: any(e.text.strip() == "Resume" for e in b.find_elements(By.TAG_NAME, "button"))
        )
        next(e for e in b.find_elements(By.TAG_NAME, "button") if e.text.strip() == "Resume").click()
        return WebDriverWait(b, scaled_timeout(30)).until(
            lambda b: b.find_element(
                By.XPATH,
                "//*[normalize-space()='Resume Flow Run']/ancestor::*[.//button[normalize-space()='Submit']][1]",
            )
        )

    def direct(
        self,
        decision: str,
        reviewer: str,
        shot: str,
        *,
        note: str = "",
        comments: str = "",
        edits: dict[str, dict[str, str]] | None = None,
    ) -> list[str]:
        """Resume with the form filled in: the decision, who, a note, comments, and per cue (by the id in
        its pre-filled item) new values of its text fields (cue, prompt, regenerate) and number fields
        (seed, gain_change_db, takes, take). Returns the cue ids the form's items started with."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        form = self.form()
        Select(form.find_elements(By.TAG_NAME, "select")[0]).select_by_value(decision)
        reviewer_box, note_box, comments_box, *item_boxes = form.find_elements(By.TAG_NAME, "textarea")
        reviewer_box.clear()
        reviewer_box.send_keys(reviewer)
        note_box.send_keys(note)
        comments_box.send_keys(comments)
        numbers = form.find_elements(By.CSS_SELECTOR, "input[type=number]")
        per_text, per_number = 3, 4  # cue, prompt, regenerate; seed, gain, takes, take
        assert len(item_boxes) % per_text == 0 and len(numbers) == per_number * (len(item_boxes) // per_text)
        cues = [item_boxes[k].get_attribute("value") for k in range(0, len(item_boxes), per_text)]
        for cue, fields in (edits or {}).items():
            k = cues.index(cue)
            boxes = dict(zip(("cue", "prompt", "regenerate"), item_boxes[per_text * k : per_text * (k + 1)]))
            boxes |= dict(
                zip(("seed", "gain_change_db", "takes", "take"), numbers[per_number * k : per_number * (k + 1)])
            )
            for name, value in fields.items():
                boxes[name].clear()
                boxes[name].send_keys(value)
        self.shot(shot)
        next(e for e in form.find_elements(By.TAG_NAME, "button") if e.text.strip() == "Submit").click()
        return cues

    def quit(self) -> None:
        self.browser.quit()


@pytest.mark.long(420)
def test_a_producer_plays_directs_and_approves_a_reel_in_the_prefect_ui(server, reel, tmp_path, processes) -> None:
    """Expected, driven through headless Chromium as a producer would, with `audiox-studio serve`
    started before the run: the on-demand run renders and waits (suspended: its worker exits); serve's
    index lists the reel, its review page plays the picture with SMPTE timecode from 01:00:00:00 and the
    stems soloed through Web Audio within a frame of the picture's clock (95 % of the checks while playing: a starved browser drops frames); the form starts with every
    cue's item; a typo in a cue id is refused where the producer looks (the run's state message and a
    card) and the form comes back with it kept; two takes of one cue and a new prompt for another make a
    second version whose review page plays take 2 in place and A/Bs against the first at the same
    playhead, with what changed; choosing take 2 (and the page's comments) makes a third version whose
    cue is take 2's bytes; approval completes the run, tagged, with the reviewer in the delivered
    provenance. The screenshots of each step are kept (and copied to $AUDIOX_SCREENSHOTS when set, as
    the README's are made)."""
    import shutil
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    from audiox_core.reel.cuesheet import take_seed
    from audiox_core.store.files import sha256_file
    from audiox_core.video.timecode import timecode
    from db import repository

    api, env = server
    serve_port = free_port()
    serve_url = f"http://127.0.0.1:{serve_port}"
    env = {**env, "AUDIOX_SERVE_URL": serve_url}  # the cards' links go through it
    serve = processes.start(
        [BIN / "audiox-studio", "serve", "--port", str(serve_port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_serving(f"{serve_url}/", serve, scaled_timeout(60), "audiox-studio serve")
    out = tmp_path / "out"
    params = json.dumps({"source_uri": str(reel.path), "out_uri": str(out), "settings": {"steps": 2}})
    prefect(env, "deployment", "run", "soundtrack/on-demand", "--params", params)
    run_id = next(r["id"] for r in flow_runs(api, "on-demand") if r["parameters"]["source_uri"] == str(reel.path))

    def next_version() -> None:
        _wait_state(api, run_id, ("SCHEDULED",))
        assert worker(processes, env).wait(timeout=scaled_timeout(400)) == 0
        _wait_state(api, run_id, ("PAUSED",))

    assert worker(processes, env).wait(timeout=scaled_timeout(400)) == 0
    waiting = _wait_state(api, run_id, ("PAUSED",))
    assert waiting["state_name"] == "Suspended" and waiting["name"] == f"{reel.path.stem} · {reel.path}"
    folder = out / reel_folder(str(reel.path))
    first_version = folder.resolve()
    sheet = yaml.safe_load((folder / "cues.yaml").read_text())
    foley = [c for c in sheet["cues"] if c["kind"] == "foley"]
    taken, reprompted = foley[0], foley[-1]
    take_name = f"scene{taken['scenes'][0]:04d}_foley.wav"
    shots = tmp_path / "screenshots"
    producer = _Producer(api.removesuffix("/api"), shots)
    b = producer.browser
    try:
        producer.open_run(run_id, reel.path.stem, tab="Artifacts")
        producer.shot("1-run-waits-for-review.png")
        b.get(f"{serve_url}/")  # serve, started before the run, lists the reel it published
        b.find_element(By.PARTIAL_LINK_TEXT, "(current)").click()
        assert b.current_url == f"{serve_url}{quote(str(first_version / 'review.html'))}"
        played = producer.play(1.0)
        assert played["error"] is None and played["duration"] > 2, played
        frame = played["frame"]  # the frame on screen
        assert abs(frame - played["t"] * 25) <= 1, played
        assert played["reel_tc"] == timecode(frame, Fraction(25)), played
        assert played["tc"] == timecode(90_000 + frame, Fraction(25)), played  # 01:00:00:00 + the frame
        producer.click('.stem[data-stem="music"] .solo')
        assert "stems: music" in producer.heard("stems: music")
        b.execute_script("document.getElementById('picture').currentTime = 0")
        played = producer.play(2.0)
        assert played["drift"]["p95"] < 1 / 25, played  # the stems within a frame of the picture
        print(
            f"stems against the picture: 95 % of {played['drift']['checks']} checks within "
            f"{played['drift']['p95'] * 1000:.1f} ms, at most {played['drift']['max'] * 1000:.1f} ms,"
            f" {played['drift']['resyncs']} restart(s)"
        )
        producer.shot("2-review-page-plays.png")

        producer.open_run(run_id, reel.path.stem)
        typo = taken["id"][0] + str(int(taken["id"][1:]))  # F001 typed as F1
        items = producer.direct(
            "request changes", "Ana (producer)", "3-form-pre-filled-with-a-typo.png", edits={taken["id"]: {"cue": typo}}
        )
        assert items == [c["id"] for c in sheet["cues"]]  # the form starts with every cue
        _wait_state(api, run_id, ("SCHEDULED",))
        assert worker(processes, env).wait(timeout=scaled_timeout(400)) == 0
        refused = _wait_state(api, run_id, ("PAUSED",))
        assert (
            refused["state"]["message"].startswith("direction refused: ")
            and f"no cue '{typo}'" in refused["state"]["message"]
        )
        assert folder.resolve() == first_version  # the same version waits again
        producer.open_run(run_id, reel.path.stem, tab="Artifacts")
        assert (
            f"direction refused: cue sheet of {reel.path.stem}: no cue '{typo}'"
            in b.find_element(By.TAG_NAME, "body").text
        )
        producer.shot("4-direction-refused.png")

        producer.open_run(run_id, reel.path.stem)
        kept = producer.direct(
            "request changes",
            "Ana (producer)",
            "5-two-takes-and-a-prompt.png",
            note="two takes of the door; glass, not hum",
            edits={typo: {"cue": taken["id"], "takes": "2"}, reprompted["id"]: {"prompt": "glass shatters on stone"}},
        )
        assert typo in kept  # the refused input came back in the form
        next_version()
        second_version = folder.resolve()
        assert second_version != first_version and first_version.is_dir()
        take2 = second_version / "takes" / "take2" / take_name
        assert take2.is_file()

        b.get(f"{serve_url}{quote(str(second_version / 'review.html'))}")
        producer.click(f'button.take[data-cue="{taken["id"]}"][data-take="2"]')
        assert f"take 2 of {taken['id']}" in producer.heard(f"take 2 of {taken['id']}")
        looped = producer.play(1.0)
        assert looped["drift"]["p95"] < 1 / 25, looped
        producer.shot("6-take-2-plays-in-place.png")
        producer.click("#stop-take")
        producer.click('button.ver[data-v="1"]')  # B: the first version, at the same playhead
        assert f"B: the mix of run {first_version.name.rsplit('run', 1)[1]}" in producer.heard("B: the mix of")
        at = b.execute_script("return document.getElementById('picture').currentTime")
        ab = producer.play(1.0)
        assert ab["t"] > at and ab["drift"]["p95"] < 1 / 25, ab
        diff = b.find_element(By.CSS_SELECTOR, "details.diff").text
        assert f"{taken['id']} takes 1 2" in diff and "glass shatters on stone" in diff
        b.find_element(By.ID, "comment").send_keys("door too early")
        producer.click("#add-comment")
        comment = b.find_element(By.ID, "comment-text").get_attribute("value")
        assert comment.startswith("00:00:") and comment.endswith("door too early")
        b.execute_script("document.querySelector('details.diff').scrollIntoView()")
        producer.shot("7-ab-and-what-changed.png")

        producer.open_run(run_id, reel.path.stem)
        producer.direct(
            "request changes",
            "Ana (producer)",
            "8-choose-take-2.png",
            comments=comment,
            edits={taken["id"]: {"take": "2"}},
        )
        next_version()
        third_version = folder.resolve()
        assert sha256_file(third_version / "cues" / take_name) == sha256_file(take2)  # the take itself
        chosen = yaml.safe_load((third_version / "cues.yaml").read_text())
        assert next(c for c in chosen["cues"] if c["id"] == taken["id"])["seed"] == take_seed(taken["seed"], 2)

        producer.open_run(run_id, reel.path.stem)
        producer.direct("approve", "Ana (producer)", "9-approve.png", note="ship it")
        _wait_state(api, run_id, ("SCHEDULED",))
        assert worker(processes, env).wait(timeout=scaled_timeout(400)) == 0
        done = _wait_state(api, run_id, ("COMPLETED", "FAILED", "CRASHED"))
        producer.open_run(run_id, reel.path.stem, tab="Artifacts")
        producer.shot("10-approved.png")
    except Exception:
        (shots / "failed-page.html").write_text(b.page_source)
        producer.shot("failed.png")
        raise
    finally:
        producer.quit()
    assert done["state_type"] == "COMPLETED" and done["state"]["message"].startswith("approved by Ana (producer)")
    assert "approved" in done["tags"]
    db_url = f"sqlite:///{Path(env['AUDIOX_HOME']) / 'studio.db'}"
    versions = repository.flow_run_versions(db_url, run_id)
    decisions = repository.reviews(db_url, [v["run_id"] for v in versions])
    assert [d["decision"] for d in decisions] == ["refused", "changes", "changes", "approved"]
    assert decisions[1]["changes"] == [
        {"cue": taken["id"], "takes": 2},
        {"cue": reprompted["id"], "prompt": "glass shatters on stone"},
    ]
    assert "door too early" in decisions[2]["note"]
    delivered = out / "delivered" / reel_folder(str(reel.path))
    approval = json.loads((delivered / "provenance.json").read_text())["approval"]
    assert approval["approved_by"] == "Ana (producer)" and approval["run_id"] == versions[-1]["run_id"]
    assert [p.name for p in delivered.glob("*_PM_2ch_48k_24b_*.wav")], sorted(p.name for p in delivered.iterdir())
    if target := os.environ.get("AUDIOX_SCREENSHOTS"):
        shutil.copytree(shots, target, dirs_exist_ok=True)


def _generating_pids(api: str, task_run_ids: list[str]) -> dict[str, int]:
    """Which inference worker process (pid from its log line) generated each batch task run."""
    logs = call("POST", f"{api}/logs/filter", json={"logs": {"task_run_id": {"any_": task_run_ids}}, "limit": 200})
    found = {}
    for line in logs:
        if line["message"].startswith("generating ") and "(pid " in line["message"]:
            found[line["task_run_id"]] = int(line["message"].rsplit("(pid ", 1)[1].rstrip(")"))
    return found


def _batches(api: str, since: str) -> list[dict]:
    return call(
        "POST",
        f"{api}/task_runs/filter",
        json={"task_runs": {"name": {"like_": "generate-cues"}, "start_time": {"after_": since}}, "limit": 200},
    )


def _manifest_hashes(folder_uri: str) -> dict[str, str]:
    current = read_current(folder_uri)
    assert current is not None, folder_uri
    return {
        f.key.removeprefix(current.prefix): f.sha256
        for f in current.files
        if f.key.endswith(".wav") and "/stems/" not in f.key
    }


def _sample_hashes(folder_uri: str) -> dict[str, str]:
    """sha256 of the PCM samples of the same files (their bext chunks say when each was made)."""
    current = read_current(folder_uri)
    assert current is not None, folder_uri
    bucket = folder_uri.removeprefix("s3://").split("/", 1)[0]
    hashes = {}
    for f in current.files:
        if f.key.endswith(".wav") and "/stems/" not in f.key:
            data = s3_client().get_object(Bucket=bucket, Key=f.key)["Body"].read()
            layout = _wav_layout(data)
            hashes[f.key.removeprefix(current.prefix)] = hashlib.sha256(
                data[layout[0] : layout[0] + layout[1]]
            ).hexdigest()
    return hashes


def _wav_layout(data: bytes) -> tuple[int, int]:
    """(offset, size) of a WAV's data chunk."""
    offset = 12
    while data[offset : offset + 4] != b"data":
        offset += 8 + int.from_bytes(data[offset + 4 : offset + 8], "little")
    return offset + 8, int.from_bytes(data[offset + 4 : offset + 8], "little")


@pytest.mark.long(250)
def test_two_machines_share_only_prefect_postgres_and_s3(server, reel, postgres_url, tmp_path, processes) -> None:
    """Two "machines" on this box, each a process worker and an inference worker with its own
    AUDIOX_HOME, sharing only the Prefect server, PostgreSQL and moto S3. Expected: the reel's
    batches (one cue each, two in flight) run on both inference workers; the one holding a batch is
    SIGKILLed mid-batch, its task run is marked Crashed and the batch is sent again, and the other
    machine finishes the reel; a rerun on the other machine reuses every cue from S3 and generates
    nothing; the cues and the mix equal a single-machine in-process run's; no row is duplicated."""
    import sqlalchemy as sa

    api, base = server
    s3_client().upload_file(str(reel.path), "footage", "machines/reel.mp4")
    source = "s3://footage/machines/reel.mp4"
    try:
        s3_client().create_bucket(Bucket="studio-shared")
    except s3_client().exceptions.BucketAlreadyOwnedByYou:
        pass
    db = f"{postgres_url.rsplit('/', 1)[0]}/machines"
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sa.text("DROP DATABASE IF EXISTS machines"))
        c.execute(sa.text("CREATE DATABASE machines"))
    engine.dispose()
    settings = {"steps": 100, "batch_size": 1, "seed": 7}

    def machine(name: str) -> dict:
        home = tmp_path / name
        return {
            **base,
            "AUDIOX_HOME": str(home),
            "AUDIOX_DB_URL": db,
            "AUDIOX_INFERENCE": "task-worker",
            "AUDIOX_SHARED_STORE": "s3://studio-shared/store",
            "AUDIOX_BATCHES_IN_FLIGHT": "2",
            "AUDIOX_BATCH_WAIT_S": str(round(scaled_timeout(40))),  # a live batch under load is not lost
        }

    envs = {name: machine(name) for name in ("a", "b")}
    inference = {}
    for name, env in envs.items():
        with (tmp_path / f"inference-{name}.log").open("w") as log:
            inference[name] = processes.start(
                [BIN / "audiox-studio", "inference-worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def run_on(name: str) -> dict:
        params = json.dumps(
            {"source_uri": source, "out_uri": "s3://footage/machines-out", "settings": settings, "review": False}
        )
        out = prefect(envs[name], "deployment", "run", "soundtrack/on-demand", "--params", params)
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", out).group(1)
        return {"id": flow_run_id, "worker": worker(processes, envs[name])}

    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    first = run_on("a")
    killed = None
    deadline = time.monotonic() + scaled_timeout(300)
    while killed is None:  # wait for one batch finished and another running, then kill its worker
        assert time.monotonic() < deadline, "no batch ran on the inference workers in time"
        assert first["worker"].poll() in (None, 0)
        for name, p in inference.items():  # a worker that died at start would leave its batches to time out
            assert p.poll() is None, (name, p.returncode, (tmp_path / f"inference-{name}.log").read_text()[-2000:])
        runs = _batches(api, since)
        running = [r["id"] for r in runs if r["state_type"] == "RUNNING"]
        if any(r["state_type"] == "COMPLETED" for r in runs) and running:
            pids = _generating_pids(api, running)
            holder = next((n for n, p in inference.items() if p.pid in pids.values()), None)
            if holder is not None:
                inference[holder].send_signal(signal.SIGKILL)
                inference[holder].wait(timeout=scaled_timeout(10))
                killed = holder
                lost = next(run for run, pid in pids.items() if pid == inference[holder].pid)
        time.sleep(0.3)
    assert first["worker"].wait(timeout=scaled_timeout(600)) == 0
    state = _wait_state(api, first["id"], ("COMPLETED", "FAILED", "CRASHED"))
    assert state["state_type"] == "COMPLETED", state["state"]
    runs = _batches(api, since)
    by_id = {r["id"]: r for r in runs}
    assert by_id[lost]["state_type"] == "CRASHED" and "sent again" in by_id[lost]["state"]["message"]
    pids = _generating_pids(api, [r["id"] for r in runs])
    assert {inference["a"].pid, inference["b"].pid} <= set(pids.values()), pids  # both machines generated
    two_machines = _manifest_hashes(f"s3://footage/machines-out/{reel_folder(source)}")
    two_machines_audio = _sample_hashes(f"s3://footage/machines-out/{reel_folder(source)}")

    # The rerun, on the other machine: every cue is already made, nothing is generated.
    other = "b" if killed == "a" else "a"
    before = {r["id"] for r in _batches(api, since)}
    again = run_on(other)
    assert again["worker"].wait(timeout=scaled_timeout(600)) == 0
    assert _wait_state(api, again["id"], ("COMPLETED", "FAILED", "CRASHED"))["state_type"] == "COMPLETED"
    new = [r["id"] for r in _batches(api, since) if r["id"] not in before]
    assert not _generating_pids(api, new)  # reused from S3 (or the database's record), none generated
    rerun = _manifest_hashes(f"s3://footage/machines-out/{reel_folder(source)}")
    cues = {name for name in two_machines if name.startswith("cues/")}
    assert {n: rerun[n] for n in cues} == {n: two_machines[n] for n in cues}  # the very files, copied
    assert _sample_hashes(f"s3://footage/machines-out/{reel_folder(source)}") == two_machines_audio  # the mix's
    # samples too: its bext chunk names the new version
    processes.stop_all()  # the machines' workers, before the single-machine run below

    # The same reel on one machine, in-process, its own home, database and store.
    alone = {k: v for k, v in base.items() if not k.startswith("AUDIOX_")} | {
        "AUDIOX_HOME": str(tmp_path / "alone"),
        "AUDIOX_MODEL": "tiny",
    }
    script = (
        "import json,sys; from flows.soundtrack import soundtrack; "
        f"soundtrack({source!r}, 's3://footage/machines-alone', json.loads(sys.argv[1]), review=False)"
    )
    subprocess.run(
        [sys.executable, "-c", script, json.dumps(settings)],
        env=alone,
        cwd=ROOT,
        check=True,
        timeout=scaled_timeout(600),
    )
    # The same audio, sample for sample; the files differ in their bext chunks' dates (made apart)
    assert _sample_hashes(f"s3://footage/machines-alone/{reel_folder(source)}") == two_machines_audio

    engine = sa.create_engine(db)
    with engine.connect() as c:
        runs = c.execute(sa.text("SELECT count(*) FROM runs")).scalar()
        generations = c.execute(sa.text("SELECT count(*) FROM generations")).scalar()
        outputs = c.execute(sa.text("SELECT count(*), count(DISTINCT (run_id, uri)) FROM outputs")).one()
        scenes = dict(c.execute(sa.text("SELECT run_id, count(*) FROM scenes GROUP BY run_id")).all())
    engine.dispose()
    assert runs == 2  # one per flow run: the lost batch made no run of its own
    assert generations == sum(name.startswith("cues/") for name in two_machines)  # one per cue, resent or not
    assert outputs[0] == outputs[1] > 0  # no output recorded twice for a run
    assert sorted(scenes.values()) == [3, 3]  # the reel's three shots, once per run
