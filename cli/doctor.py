"""``audiox-studio doctor``: is this machine ready to run the pipeline, and what to fix if not."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_ffmpeg() -> list[Check]:
    checks = []
    for tool in ("ffmpeg", "ffprobe"):
        path = shutil.which(tool)
        if path is None:
            checks.append(Check(tool, False, "not found on PATH", "apt-get install -y ffmpeg"))
            continue
        version = subprocess.run([path, "-version"], capture_output=True, text=True, check=False).stdout.split("\n", 1)[
            0
        ]
        checks.append(Check(tool, True, f"{path} ({version})"))
    return checks


def check_torch() -> Check:
    import torch

    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        return Check("torch", True, f"{torch.__version__}, CUDA {torch.version.cuda}: {names}")
    return Check(
        "torch", True, f"{torch.__version__}, no CUDA device: generation runs on the CPU (slow for the full model)"
    )


def check_model(spec: str) -> Check:
    """The model ``--model`` names, by the loader's own rules, and the T5 folder when it needs one."""
    from audiox_core.environment import t5_dir
    from audiox_core.errors import ModelError
    from audiox_core.model.conditioners import require_t5_dir
    from audiox_core.model.spec import resolve_model_spec

    try:
        model = resolve_model_spec(spec)
    except ModelError as e:
        return Check(
            "model",
            False,
            str(e),
            "use --model demo (shipped), tiny (random test model), or PATH: an AudioX release folder",
        )
    if model.weights_path is None:
        return Check("model", True, "tiny: built-in random-weight test model (not a trained model)")
    if model.needs_t5:
        try:
            require_t5_dir(model.config.text, t5_dir())
        except ModelError as e:
            return Check("model", False, f"{model.weights_path} found, but {e}")
    size = model.weights_path.stat().st_size
    if model.kind == "demo":
        return Check("model", True, f"demo: {model.label}, {model.weights_path} ({size / 1e6:.1f} MB)")
    return Check("model", True, f"{model.weights_path} ({size / 1e9:.2f} GB)")


def check_database() -> Check:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.exc import SQLAlchemyError

    from audiox_core.workspace import studio_home
    from db.session import alembic_config, database_url, make_engine, redact

    url = database_url(studio_home())
    try:
        with make_engine(url).connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as e:
        return Check(
            "database",
            False,
            f"{redact(url)}: {str(e).splitlines()[0]}",
            "check AUDIOX_DB_URL and that the server is up",
        )
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current != head:
        return Check(
            "database",
            True,
            f"{redact(url)} at revision {current}; head is {head} (migrated automatically on first run)",
        )
    return Check("database", True, f"{redact(url)} at revision {head}")


def check_prefect() -> Check:
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        return Check(
            "prefect", True, "no PREFECT_API_URL: runs use a temporary local API and the local Prefect database"
        )
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error:
        return Check("prefect", False, f"{api}: {error}", "start it with `prefect server start` or fix PREFECT_API_URL")
    return Check("prefect", True, f"{api} is healthy")


def run_checks(model: str) -> list[Check]:
    return [*check_ffmpeg(), check_torch(), check_model(model), check_database(), check_prefect()]


def repair() -> list[str]:
    """``doctor --repair``: the sweep over every output root the database knows; one line per thing
    closed or removed, then a summary line. An unreachable database is an InputError (one line)
    before anything is touched."""
    from collections import Counter

    from audiox_core.reel.preflight import check_database
    from audiox_core.workspace import studio_home
    from db import repository
    from db.session import connection_problem, database_url
    from tasks.sweep import sweep

    url = database_url(studio_home())
    check_database(url, connection_problem)
    repairs = sweep(url, repository.out_uris(url))
    counts = Counter(r.kind for r in repairs)
    summary = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items()) or "nothing"
    return [r.line for r in repairs] + [f"repaired: {summary} (runs and folders of live processes left alone)"]
