"""bench/feature_bench.py runs end to end (scaled far down: 30 s of footage) and ends with the line
the issue asks for."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.mark.integration
def test_the_feature_bench_runs_the_whole_pipeline_and_reports_its_figures(capsys) -> None:
    import feature_bench

    feature_bench.main(["--cpu-smoke", "--minutes", "0.5", "--steps", "2", "--batch", "4"])
    out = capsys.readouterr().out.strip().splitlines()
    last = re.fullmatch(r"wall_s=(\d+\.\d) non_generation_share=(\d\.\d{3})", out[-1])
    assert last, out[-1]
    assert float(last[1]) > 0 and 0 < float(last[2]) < 1
    scenes = next(line for line in out if line.startswith("scenes: "))
    made = re.search(r"\((\d+) cuts found, (\d+) made\)", scenes)
    assert made and made[1] == made[2]  # every cut of the synthetic feature found
    assert any(line.startswith("windows per second: ") for line in out)
