"""The scheduler: dependency order, failure isolation and fail-fast, on a fake executor."""

from __future__ import annotations

import concurrent.futures as cf
from pathlib import Path

import pytest

from cielib import execute, runs


class FakeExecutor:
    """Runs nothing: records submission order and fails the runs it is told to."""

    capacity = 2

    def __init__(self, fail=()):
        self.fail = set(fail)
        self.order: list[str] = []

    def submit(self, spec, runs_dir):
        self.order.append(spec.params["name"])
        fut: cf.Future = cf.Future()
        status = "failed" if spec.params["name"] in self.fail else "ran"
        if status == "ran":
            path = runs.run_path(runs_dir, spec.stage, spec.run_id)
            path.mkdir(parents=True)
            (path / runs.DONE).write_text("{}")
        fut.set_result(execute.RunResult(spec.run_id, spec.stage, spec.label(), status, 0.1, ""))
        return fut

    def shutdown(self):
        pass


def _specs():
    a = runs.RunSpec("train", "train.py", {"name": "a"})
    b = runs.RunSpec("train", "train.py", {"name": "b"})
    c = runs.RunSpec("results", "results.py", {"name": "c"}, upstream=(a.run_id, b.run_id))
    d = runs.RunSpec("train", "train.py", {"name": "d"})
    return [c, a, b, d]  # deliberately out of order


def test_upstream_first(tmp_path):
    ex = FakeExecutor()
    res = execute.run_plan(_specs(), runs_dir=tmp_path, executor=ex)
    assert ex.order.index("c") > max(ex.order.index("a"), ex.order.index("b"))
    assert {r.status for r in res} == {"ran"} and len(res) == 4


def test_failure_skips_dependents_only(tmp_path):
    specs = _specs()
    names = {s.run_id: s.params["name"] for s in specs}
    out = execute.run_plan(specs, runs_dir=tmp_path, executor=FakeExecutor(fail={"a"}))
    assert {names[r.run_id]: r.status for r in out} == {
        "a": "failed", "b": "ran", "d": "ran", "c": "skipped"}


def test_fail_fast_starts_nothing_new(tmp_path):
    ex = FakeExecutor(fail={"c", "a"})
    out = execute.run_plan(_specs(), runs_dir=tmp_path, executor=ex, fail_fast=True)
    assert "failed" in {r.status for r in out}
    assert any(r.error == "--fail-fast" for r in out)
    assert len(out) == 4


def test_done_runs_are_not_submitted(tmp_path):
    specs = _specs()
    for s in specs:
        p = runs.run_path(tmp_path, s.stage, s.run_id)
        p.mkdir(parents=True)
        (p / runs.DONE).write_text("{}")
    ex = FakeExecutor()
    out = execute.run_plan(specs, runs_dir=tmp_path, executor=ex)
    assert ex.order == [] and {r.status for r in out} == {"cached"}


def test_the_deepest_ready_run_starts_first(tmp_path):
    """A run whose upstream just finished (a quantize run) starts before other ready
    runs of an earlier stage, whatever the plan's order; without this, a long quantize
    run waited for every training run and then ran alone."""

    class OneAtATime(FakeExecutor):
        capacity = 1

    a1, a2, a3 = (runs.RunSpec("train", "train.py", {"name": n}) for n in ("a1", "a2", "a3"))
    q1 = runs.RunSpec("quantize", "quantize.py", {"name": "q1"}, upstream=(a1.run_id,))
    r = runs.RunSpec("results", "results.py", {"name": "r"},
                     upstream=(a1.run_id, a2.run_id, a3.run_id))
    ex = OneAtATime()
    out = execute.run_plan([a1, a2, a3, r, q1], runs_dir=tmp_path, executor=ex)
    assert ex.order == ["a1", "q1", "a2", "a3", "r"]
    assert {x.status for x in out} == {"ran"}


NB = '''# %% tags=["parameters"]
run_dir = "."
value = 0

# %%
import os, sys
preloaded = "tensorflow" in sys.modules
assert "leak" not in globals()
leak = value
from cielib.keras import configure_threads
configure_threads(1)  # refuses if a TensorFlow op had run before (in the server)
import tensorflow as tf
print(preloaded, os.getpid(), tf.config.threading.get_intra_op_parallelism_threads(), os.getcwd())
if value == 2:
    raise ValueError("planted failure")
'''


@pytest.mark.slow
def test_warm_kernels_are_fresh_isolated_processes(tmp_path):
    """Kernels forked from the kernel server: TensorFlow already imported but no op run
    (configure_threads works), a new process per notebook with nothing left from the
    previous one, the run's directory as cwd, and a failure keeps its traceback."""
    import json

    from cielib import kernel_server, notebook_source

    src = tmp_path / "nb.py"
    src.write_text(NB)
    proc, address = kernel_server.start()
    try:
        seen = []
        for value in (0, 1):
            out = tmp_path / f"run{value}"
            out.mkdir()
            notebook_source.execute(src, output=out / "executed.ipynb", parameters={"value": value},
                              cwd=out, kernel_server=address)
            nb = json.loads((out / "executed.ipynb").read_text())
            text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
            preloaded, pid, threads, cwd = text.split()
            assert (preloaded, threads, cwd) == ("True", "1", str(out)), text
            seen.append(int(pid))
        assert len(set(seen)) == 2 and proc.pid not in seen
        out = tmp_path / "run2"
        out.mkdir()
        with pytest.raises(Exception, match="planted failure"):
            notebook_source.execute(src, output=out / "executed.ipynb", parameters={"value": 2},
                              cwd=out, kernel_server=address)
        assert "planted failure" in (out / "executed.ipynb").read_text()
    finally:
        kernel_server.stop(proc, address)
    assert proc.poll() is not None and not Path(address).parent.exists()
