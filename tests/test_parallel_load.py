"""The model loads once per process, whichever threads ask at once (issue 12).

The nightly flow runs reels in threads; when two of them loaded the model at the same time,
transformers' lazy imports raced (`ImportError: cannot import name 'CLIPVisionConfig'`). The child
process is fresh so transformers is not imported yet, as in a worker's first batch; its threads
start together behind a barrier. Without ``ModelCache``'s lock every thread sees no model and loads
one: four loads every time, and on this machine the import race failed threads in 8 of 10 runs
(the count catches a missing lock even where the race does not show).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from harness import scaled_timeout

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
THREADS = 4

CHILD = f"""
import json, sys, threading
import tasks.inference as inference

assert "transformers" not in sys.modules, "transformers was imported before the threads started"
loads = []
real_load = inference.load_model

def counted_load(*args, **kwargs):
    loads.append(threading.get_ident())
    return real_load(*args, **kwargs)

inference.load_model = counted_load
barrier = threading.Barrier({THREADS})
models, errors = [], []

def ask() -> None:
    barrier.wait()
    try:
        models.append(inference.MODELS.get("tiny", "cpu")[0])
    except BaseException as e:
        errors.append(f"{{type(e).__name__}}: {{e}}")

threads = [threading.Thread(target=ask) for _ in range({THREADS})]
for t in threads:
    t.start()
for t in threads:
    t.join()
distinct = len({{id(m) for m in models}})
print(json.dumps({{"loads": len(loads), "errors": errors, "models": len(models), "distinct": distinct}}))
"""


def test_threads_asking_at_once_share_one_load() -> None:
    """Expected: all four threads get the model, the same object, from a single load."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=scaled_timeout(120),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"loads": 1, "errors": [], "models": THREADS, "distinct": 1}
