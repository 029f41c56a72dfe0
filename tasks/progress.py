"""Progress bars for long steps (rich, already a Prefect dependency); silent when not on a terminal."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


def time_left(first: tuple[float, float] | None, now: float, completed: float, total: float) -> float | None:
    """Seconds left at the average rate since ``first`` (the time and count of the bar's first
    update, so cues reused before it and the model's loading count for nothing), None before any
    rate is known."""
    if first is None or completed <= first[1] or now <= first[0]:
        return None
    rate = (completed - first[1]) / (now - first[0])
    return max(0.0, (total - completed) / rate)


class SteadyTimeRemaining(ProgressColumn):
    """Time left from the average rate since the bar's first update. Rich's own column takes the
    rate over the last 30 s, which swings (15 to 28 minutes and back on a reel) while a batch
    decodes and writes between its sampling steps; the average over every step does not."""

    def render(self, task: Task) -> Text:
        if task.finished:
            return Text("0:00:00", style="progress.remaining")
        left = time_left(task.fields.get("first"), time.monotonic(), task.completed, task.total or 0)
        return Text("-:--:--" if left is None else str(timedelta(seconds=round(left))), style="progress.remaining")


COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
    SteadyTimeRemaining(),
)


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """Yield ``update(done, total)`` driving one bar; the bar appears on the first update, so a step
    that fails before doing any work prints nothing."""
    bar = Progress(*COLUMNS, transient=False)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(description, total=total, first=(time.monotonic(), done))
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:
            bar.stop()


@contextmanager
def working(what: str) -> Iterator[None]:
    """A spinner saying what a step without a count is doing (loading the model, starting the API),
    so the console is never silent; on a terminal only (logs get no spinner frames)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(what):
        yield
