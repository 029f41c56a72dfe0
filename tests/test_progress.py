"""The progress bars' time left: the average rate since the first update, steady through a batch's pauses."""

from rich.progress import Progress

from tasks.progress import SteadyTimeRemaining, time_left


def test_time_left_is_the_average_rate_since_the_first_update() -> None:
    assert time_left(None, 10.0, 1.0, 8.0) is None
    assert time_left((100.0, 2.0), 100.0, 2.0, 8.0) is None  # nothing done since: no rate yet
    # two reused cues before the first update count for nothing; then 1 cue per 60 s
    assert time_left((100.0, 2.0), 220.0, 4.0, 8.0) == 240.0
    # batches of 50 s of sampling steps then 20 s of decoding and writing (no progress): after the
    # first two batches the estimate stays within 15 % of the truth at every moment
    batches, cues = 10, 8

    def done_at(t: float) -> float:
        whole, into = divmod(t, 70.0)
        return cues * (whole + min(into, 50.0) / 50.0)

    for t in range(140, 690, 5):
        left = time_left((0.0, 0.0), float(t), done_at(t), float(cues * batches))
        assert abs(left - (batches * 70 - 20 - t)) <= 0.15 * (batches * 70 - t) + 20, (t, left)


def test_the_column_shows_the_steady_estimate() -> None:
    bar = Progress(SteadyTimeRemaining())
    task = bar.add_task("generate", total=10, first=(0.0, 0.0))
    bar.update(task, completed=0)
    assert bar.columns[0].render(bar.tasks[0]).plain == "-:--:--"
    bar.update(task, completed=10)
    assert bar.columns[0].render(bar.tasks[0]).plain == "0:00:00"
