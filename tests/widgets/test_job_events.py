"""What reaches the main thread of a running job: thinned progress, never a lost result."""

from napari_cryorient.engine.jobs import Progress
from napari_cryorient.widgets._jobs import _guarded


def _collect(job):
    out = []
    try:
        while True:
            out.append(next(job))
    except StopIteration as stop:
        return out, stop.value


def test_fast_progress_is_thinned_but_a_complete_round_always_arrives():
    def job():
        for i in range(50):  # far faster than ten a second
            yield Progress("refine", i, 100, "")
        yield Progress("round", 0, 2, "round 0", {"result": "first"})
        for i in range(50, 60):
            yield Progress("refine", i, 100, "")
        return "done"

    events, value = _collect(_guarded(job, interval_s=10.0))
    shown = [e for e in events if e is not None]
    assert value == "done"
    assert len(shown) < 10  # thinned
    assert [e.data["result"] for e in shown if "result" in e.data] == ["first"]
