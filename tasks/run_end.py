"""How a version's run ends, whatever ends it: its row closed with a status and a one-line reason (failed,
interrupted, cancelled in Prefect, crashed), and no secret kept in Prefect's parameters."""

from __future__ import annotations

import _thread
import contextvars
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from prefect import get_client
from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.exceptions import TerminationSignal
from prefect.runtime import deployment, flow_run
from prefect.states import Cancelled

from audiox_core.errors import PipelineError
from audiox_core.lifecycle import SIGNAL_NAMES, Interrupted, StopRequested
from audiox_core.store.uri import public_uri, scrub, secret_in_uri
from audiox_core.workspace import studio_home
from db.pending import PENDING_CLOSINGS, database_lost, defer_closing, lost_reason
from db.repository import CANCELLED, CRASHED, FAILED
from db.session import database_url
from tasks.provenance import close_flow_run, close_run

CANCELLED_IN_PREFECT = "cancelled in Prefect"
CANCELLATION_POLL_S = 2.0  # how often a run started here asks Prefect whether it was cancelled
_delivered: set[str] = set()  # flow runs whose cancellation this process delivered to itself


def close_cancelled(flow: Any, run: FlowRun, state: State) -> None:
    """``on_cancellation``: a runner that cancels a deployment's run stops its process and calls this;
    a run row the process did not close is closed as cancelled."""
    close_flow_run(database_url(studio_home()), str(run.id), error=CANCELLED_IN_PREFECT, status=CANCELLED)


def close_crashed(flow: Any, run: FlowRun, state: State) -> None:
    """``on_crashed``: a run row still open when Prefect reports the flow run crashed is closed as crashed.
    A cancellation this process delivered (``cancellation_delivered``) reaches the engine as a SIGTERM,
    which it reports as a crash: the flow run is put back to Cancelled, as its run row says."""
    if str(run.id) in _delivered:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, Cancelled(message=CANCELLED_IN_PREFECT), force=True)
        return
    reason = f"crashed in Prefect: {state.message}"
    close_flow_run(database_url(studio_home()), str(run.id), error=reason, status=CRASHED)


@contextmanager
def cancellation_delivered() -> Iterator[None]:
    """Prefect delivers a cancellation only to runs its runners started (as SIGTERM); a run started in
    this process (the CLI's) just turns Cancelling and goes on to the end. While the body runs, a
    thread watches the state and, once it is Cancelling, interrupts the main thread as SIGTERM would."""
    run_id = flow_run.get_id()
    if deployment.get_id() is not None or threading.current_thread() is not threading.main_thread():
        yield  # a runner cancels its own runs; a flow in a worker thread cannot interrupt the main one
        return
    done = threading.Event()

    def watch() -> None:
        while not done.wait(CANCELLATION_POLL_S):
            if cancelling_in_prefect() and not done.is_set():
                _delivered.add(run_id)
                _thread.interrupt_main(signal.SIGTERM)
                return

    threading.Thread(target=contextvars.copy_context().run, args=(watch,), name="cancellation", daemon=True).start()
    try:
        yield
    finally:
        done.set()


def close_or_keep(db_url: str, run_id: int, reason: str, status: str, e: BaseException) -> None:
    """Close the run row with ``reason`` (a plain call: after an interrupt or a cancellation Prefect
    may refuse new tasks). A database that went away keeps the closing for the next sweep to write
    (``db/pending.py``) and the run ends with one line saying so."""
    try:
        close_run(db_url, run_id, error=reason, status=status)
    except Exception as closing:
        if not database_lost(closing):
            raise
        defer_closing(studio_home() / PENDING_CLOSINGS, db_url, run_id, status, scrub(reason))
        if isinstance(e, Exception):
            said = reason if database_lost(e) else lost_reason(db_url, closing)
            raise PipelineError(
                f"{said}; run {run_id} is recorded as {status} when it answers again "
                "(the next run on this machine or `audiox-studio doctor --repair`)"
            ) from e


def close_failed(db_url: str, run_id: int, e: Exception) -> None:
    """Close a failed version's row with its reason; when the database went away, the one line says so
    instead of ``e`` (raised as a PipelineError)."""
    reason = lost_reason(db_url, e) if database_lost(e) else failure(e)
    close_or_keep(db_url, run_id, reason, FAILED, e)
    if database_lost(e):  # back already: the row says why, and so does the one line
        raise PipelineError(reason) from e


def close_interrupted(db_url: str, run_id: int, e: BaseException) -> None:
    """Close an interrupted or cancelled version's row with why it stopped."""
    close_or_keep(db_url, run_id, interruption_reason(e), CANCELLED, e)


def failure(e: Exception) -> str:
    """A failed run's reason: a pipeline error's own line, anything else named as an internal error."""
    return str(e) if isinstance(e, PipelineError) else f"internal error: {type(e).__name__}: {e}"


def interruption_reason(e: BaseException) -> str:
    """Why a run stopped on a BaseException: cancelled in Prefect (its flow run is Cancelling, as a
    runner sets it before it sends SIGTERM), interrupted by a signal, or ended by the exception."""
    if isinstance(e, StopRequested):  # a reel in a worker thread, stopped with its batch
        return e.reason
    if cancelling_in_prefect():
        return CANCELLED_IN_PREFECT
    if isinstance(e, TerminationSignal):
        return f"interrupted by {SIGNAL_NAMES.get(e.signal, signal.Signals(e.signal).name)}"
    if isinstance(e, Interrupted):
        return f"interrupted by {e.signal_name}"
    if isinstance(e, KeyboardInterrupt):
        return f"interrupted by {SIGNAL_NAMES[signal.SIGINT]}"
    return f"ended by {type(e).__name__}: {e}"


def cancelling_in_prefect() -> bool:
    """Whether this flow run is being cancelled in Prefect; False when the API does not answer."""
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(flow_run.get_id()).state
    except httpx.HTTPError:
        return False
    return state is not None and state.type in (StateType.CANCELLING, StateType.CANCELLED)


def forget_secret_parameters(uris: dict[str, str | None]) -> None:
    """A deployment or API caller may pass a presigned or credential-bearing URI, which the checks
    refuse; before that, this flow run's stored parameters are overwritten with every string in them
    cleaned (``public_uri``), so Prefect's database keeps no secret."""
    if not any(uri and secret_in_uri(uri) for uri in uris.values()):
        return
    cleaned = {k: public_uri(v) if isinstance(v, str) else v for k, v in flow_run.parameters.items()}
    with get_client(sync_client=True) as client:
        client.update_flow_run(flow_run.get_id(), parameters=cleaned)
