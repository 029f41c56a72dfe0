"""The range tasks of a long job in forked worker processes, two CPU cores at once (threads would share one GIL)."""

from __future__ import annotations

import ctypes
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any, Generic, TypeVar

Job = TypeVar("Job")
Result = TypeVar("Result")
Span = tuple[int, int]
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_JOB: Any = None  # in a worker only: the job it was forked for
_QUEUE: Any = None  # in a worker only: where it reports progress


def _initialise(job: Any, queue: Any) -> None:
    """A new worker's set-up: its job and progress queue (inherited at the fork, not pickled), one thread,
    glibc's allocator tuned."""
    global _JOB, _QUEUE
    import torch

    _JOB, _QUEUE = job, queue
    torch.set_num_threads(1)  # one core per worker: the workers are the parallelism
    try:  # glibc: keep freed blocks for reuse instead of mapping fresh zeroed pages for every
        # block-sized temporary (the page faults cost a worker a third of its time in the kernel)
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except OSError:
        pass


def _run(task: Callable[..., Result], span: Span, args: tuple[Any, ...]) -> Result:
    return task(_JOB, span, *args)


def report(n: int) -> bool:
    """In a worker: send ``n`` units of progress to the parent and return True; elsewhere False."""
    if _QUEUE is None:
        return False
    _QUEUE.put(n)
    return True


class RangePool(Generic[Job]):
    """``map(task, *args)`` calls ``task(job, span, *args)`` for every span, in ``workers`` forked
    processes when there is more than one span; ``progress(n)`` is called with what they report.
    ``task`` is a module-level function or a method of the job's class (``Mixer.measure``): pickled
    by its qualified name."""

    def __init__(self, job: Job, spans: Sequence[Span], workers: int, progress: Callable[[int], None]) -> None:
        self.job, self.spans, self.progress = job, list(spans), progress
        parallel = workers > 1 and len(self.spans) > 1 and "fork" in multiprocessing.get_all_start_methods()
        self.workers = min(workers, len(self.spans)) if parallel else 1
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> RangePool[Job]:
        if self.workers > 1:
            context = multiprocessing.get_context("fork")
            self.queue = context.SimpleQueue()
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_initialise, initargs=(self.job, self.queue)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def map(self, task: Callable[..., Result], *args: Any) -> list[Result]:
        if self.pool is None:
            return [task(self.job, span, *args) for span in self.spans]
        futures = [self.pool.submit(_run, task, span, args) for span in self.spans]
        pending: set[Future] = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            self._drain()
            if any(f.exception() is not None for f in done):
                for f in pending:
                    f.cancel()
                wait(pending)
                break
        self._drain()
        for f in futures:
            if not f.cancelled() and f.exception() is not None:
                raise f.exception()
        return [f.result() for f in futures]

    def _drain(self) -> None:
        while not self.queue.empty():
            self.progress(self.queue.get())
