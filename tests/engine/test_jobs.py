"""The one job-forwarding helper: relabelling, placing into a parent's range, results,
timing, thinning, and closing (a stopped parent stops its sub-job where it is)."""

from __future__ import annotations

import re

from napari_cryorient.cli._common import StageBars, run_with_progress
from napari_cryorient.engine.jobs import Progress, forward, run_job


def _job(n, stage="inner", result="done", log=None):
    try:
        for i in range(n):
            yield Progress(stage, i + 1, n, f"step {i + 1}")
    finally:
        if log is not None:
            log.append(f"closed {stage}")
    return result


def test_forward_relabels_places_and_returns():
    timings: dict[str, float] = {}

    def parent():
        a = yield from forward(_job(3, result="a"), "outer", offset=10, total=20, message="part",
                               timings=timings)
        b = yield from forward(_job(2, result="b"), transform=lambda e: None if e.done == 1 else e)
        return a + b

    seen = []
    assert run_job(parent(), seen.append) == "ab"
    assert [(e.stage, e.done, e.total, e.message) for e in seen[:3]] == [
        ("outer", 11, 20, "part: step 1"), ("outer", 12, 20, "part: step 2"), ("outer", 13, 20, "part: step 3")]
    assert seen[3] is None and seen[4].stage == "inner" and seen[4].done == 2
    assert set(timings) == {"outer"} and timings["outer"] >= 0


def test_closing_the_parent_closes_the_sub_job():
    log: list[str] = []

    def parent():
        yield from forward(_job(100, log=log))

    gen = parent()
    next(gen)
    gen.close()
    assert log == ["closed inner"]


def test_cli_bars_name_each_stage_and_never_run_past_their_total(capsys):
    bars = StageBars()
    seen = []
    for stage, n in (("simulate", 4), ("simulate", 4), ("train", 6)):
        for event in _job(n, stage):
            bars(event)
            seen.append((bars.bar.desc, bars.bar.n, bars.bar.total, bars.bar.postfix))
    bars.close()
    assert seen[0][0] == "simulate" and seen[-1][0] == "train"
    assert all(n <= total for _, n, total, _ in seen)
    assert seen[4][1] == 1  # the second simulation starts a new bar instead of running past 4
    assert seen[-1][3] == "step 6"  # the event's message is shown
    assert run_with_progress(_job(3, result=7)) == 7
    err = capsys.readouterr().err
    for done, total in re.findall(r"(\d+)/(\d+) ", err):
        assert int(done) <= int(total), err


def test_stage_clock_gives_elapsed_time_and_eta_per_stage():
    from napari_cryorient.engine.jobs import StageClock, format_duration

    now = [100.0]
    clock = StageClock(lambda: now[0])
    assert clock.update(Progress("refine", 0, 100)) == (0.0, None)
    now[0] = 110.0
    elapsed, eta = clock.update(Progress("refine", 25, 100))
    assert elapsed == 10.0 and eta == 30.0  # 25 units in 10 s, 75 to go
    now[0] = 111.0
    assert clock.update(Progress("reconstruct", 0, 10)) == (0.0, None)  # a new stage restarts it
    assert format_duration(42) == "42 s" and format_duration(185) == "3 min 05 s"
    assert format_duration(3720) == "1 h 02 min"
