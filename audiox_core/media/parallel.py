"""Run the range tasks of a long job in worker processes, two CPU cores at once.

Threads would share one interpreter lock: pydub's bus (audioop), numpy's copies and casts hold it,
so two threads mixing gain little. Forked processes share nothing but what they are given: each
task is a method name, a range and its arguments, run on the job object the workers inherited at
fork; results come back pickled (small: measurements, peaks), audio goes straight to files.
Progress travels on a queue. Where ``fork`` is unavailable, or for one range, tasks run in-process.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_JOB: Any = None  # what a forked worker works for (set in the parent just before the fork)
_QUEUE: Any = None  # where a worker reports progress


def _initialise() -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker: the workers are the parallelism
    try:  # glibc: keep freed blocks for reuse instead of mapping fresh zeroed pages for every
        # block-sized temporary (the page faults cost a worker a third of its time in the kernel)
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    except OSError:
        pass


def _run(method: str, span: tuple[int, int], args: tuple[Any, ...]) -> Any:
    return getattr(_JOB, method)(span, *args)


def report(n: int) -> bool:
    """In a worker: send ``n`` units of progress to the parent and return True; elsewhere False."""
    if _QUEUE is None:
        return False
    _QUEUE.put(n)
    return True


class RangePool:
    """``map(method, *args)`` runs ``job.method(span, *args)`` for every span, in ``workers`` forked
    processes when there is more than one span; ``progress(n)`` is called with what they report."""

    def __init__(self, job: Any, spans: Sequence[tuple[int, int]], workers: int, progress: Callable[[int], None]) -> None:
        self.job, self.spans, self.progress = job, list(spans), progress
        parallel = workers > 1 and len(self.spans) > 1 and "fork" in multiprocessing.get_all_start_methods()
        self.workers = min(workers, len(self.spans)) if parallel else 1
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> RangePool:
        global _JOB, _QUEUE
        if self.workers > 1:
            context = multiprocessing.get_context("fork")
            _JOB, _QUEUE = self.job, context.SimpleQueue()
            self.queue = _QUEUE
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_initialise)
        return self

    def __exit__(self, *exc: object) -> None:
        global _JOB, _QUEUE
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            _JOB, _QUEUE = None, None

    def map(self, method: str, *args: Any) -> list[Any]:
        if self.pool is None:
            return [getattr(self.job, method)(span, *args) for span in self.spans]
        futures = [self.pool.submit(_run, method, span, args) for span in self.spans]
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
