"""Deployments from prefect.yaml against a real `prefect server start`, with process workers and
moto_server as S3 and SQS: an S3 drop starts exactly one run per object version, and two workers
on one pool never run a reel twice."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from audiox_core.naming import reel_folder
from audiox_core.s3 import read_current, s3_client
from tasks.review import artifact_slug

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
    proc = subprocess.Popen(
        [BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "prefect server did not start within 60 s"
            time.sleep(0.5)
        subprocess.run(
            [BIN / "prefect", "work-pool", "create", "audiox", "--type", "process"],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [BIN / "prefect", "--no-prompt", "deploy", "--all"], env=env, cwd=ROOT, check=True, capture_output=True
        )
        try:
            s3_client().create_bucket(Bucket="footage")
        except s3_client().exceptions.BucketAlreadyOwnedByYou:
            pass
        yield api, env
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def flow_runs(api: str, deployment: str) -> list[dict]:
    deployments = httpx.post(f"{api}/deployments/filter", json={"deployments": {"name": {"any_": [deployment]}}}).json()
    ids = [d["id"] for d in deployments]
    return httpx.post(f"{api}/flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": ids}}}).json()


def worker(env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [BIN / "prefect", "worker", "start", "--pool", "audiox", "--run-once", *extra],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_s3_drop_starts_exactly_one_run_per_object_version(server, reel) -> None:
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
            timeout=120,
        )
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)  # all consumed once accepted
    deadline = time.monotonic() + 90
    while not flow_runs(api, "s3-drop"):
        assert time.monotonic() < deadline, "the s3-drop trigger started no run"
        time.sleep(2)
    time.sleep(35)  # the trigger schedules its run 30 s after the burst (debounce)
    assert len(flow_runs(api, "s3-drop")) == 1
    assert worker(env).wait(timeout=400) == 0
    (run,) = flow_runs(api, "s3-drop")
    assert run["state_type"] == "COMPLETED" and run["parameters"]["source_uri"] == "s3://footage/incoming/dropped.mp4"
    current = read_current(f"s3://footage/soundtracks/{reel_folder('s3://footage/incoming/dropped.mp4')}")
    assert current is not None
    assert {"soundtrack.mp4", "mix.wav", "provenance.json"} <= {
        f.key.removeprefix(current.prefix) for f in current.files
    }


def test_two_workers_never_run_a_reel_twice(server, reel) -> None:
    api, env = server
    ids = []
    for i in range(4):
        s3_client().upload_file(str(reel.path), "footage", f"batch/reel{i}.mp4")
        params = json.dumps(
            {
                "source_uri": f"s3://footage/batch/reel{i}.mp4",
                "out_uri": "s3://footage/batch-out",
                "settings": {"steps": 2},
            }
        )
        out = subprocess.run(
            [BIN / "prefect", "deployment", "run", "soundtrack/on-demand", "--params", params],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        ids.append(out)

    def batch() -> list[dict]:
        return [
            r for r in flow_runs(api, "on-demand") if r["parameters"]["source_uri"].startswith("s3://footage/batch/")
        ]

    for _ in range(3):  # a --run-once worker takes what one poll offers; start pairs until none is left
        workers = [worker(env, "--limit", "2"), worker(env, "--limit", "2")]
        for w in workers:
            assert w.wait(timeout=600) == 0
        if not any(r["state_type"] in ("SCHEDULED", "PENDING") for r in batch()):
            break
    runs = batch()
    assert len(runs) == 4 and all(r["state_type"] == "COMPLETED" for r in runs), [
        (r["name"], r["state_name"], r["state"]["message"]) for r in runs
    ]
    for r in runs:
        states = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": r["id"]}).json()
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
        "--window-size=1400,1200",
    ):
        options.add_argument(flag)
    options.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=options)


def test_prefect_ui_shows_the_review_scene_table(server, reel) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    api, env = server
    done = [r for name in ("s3-drop", "on-demand") for r in flow_runs(api, name) if r["state_type"] == "COMPLETED"]
    if not done:
        s3_client().upload_file(str(reel.path), "footage", "ui/ui_reel.mp4")
        params = json.dumps(
            {"source_uri": "s3://footage/ui/ui_reel.mp4", "out_uri": "s3://footage/ui-out", "settings": {"steps": 2}}
        )
        subprocess.run(
            [BIN / "prefect", "deployment", "run", "soundtrack/on-demand", "--params", params],
            env=env,
            check=True,
            capture_output=True,
        )
        assert worker(env).wait(timeout=400) == 0
        done = [r for r in flow_runs(api, "on-demand") if r["state_type"] == "COMPLETED"]
    run = done[0]
    browser = _browser()
    try:
        browser.get(f"{api.removesuffix('/api')}/runs/flow-run/{run['id']}")
        tab = WebDriverWait(browser, 60).until(
            lambda b: next(
                (e for e in b.find_elements(By.CSS_SELECTOR, "[role=tab], li") if e.text.strip() == "Artifacts"), None
            )
        )
        tab.click()
        key = f"review-{artifact_slug(reel_folder('s3://footage/ui/ui_reel.mp4'))}"
        card = WebDriverWait(browser, 30).until(
            lambda b: next(iter(b.find_elements(By.XPATH, f"//*[normalize-space()='{key}' and not(*)]")), None)
        )
        card.click()
        WebDriverWait(browser, 30).until(lambda b: any(e.text == "prompt" for e in b.find_elements(By.TAG_NAME, "th")))
        headers = [e.text for e in browser.find_elements(By.TAG_NAME, "th")]
        cells = [e.text for e in browser.find_elements(By.TAG_NAME, "td")]
    finally:
        browser.quit()
    assert headers == ["cue", "scenes", "prompt", "seed", "status"]
    assert cells[:2] == ["F000", "0"]
