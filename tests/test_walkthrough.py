"""The walkthrough's promise: every notebook runs by hand on its defaults in under a minute.

The training and quantize notebooks need nothing (a tiny model on scikit-learn's digits,
then its quantization); the analysis notebooks read the newest finished runs of the
store, here the tiny pipeline's (as after `python run_all.py`).
"""

from __future__ import annotations

import re
import time

import pytest

from cielib import notebook_source, paths

BY_HAND_LIMIT_S = 60.0
ORDER = ("train", "results", "quantize", "quantization", "profiling", "cie", "discussion")  # the paper's


def _run_by_hand(name, cwd):
    start = time.perf_counter()
    notebook_source.execute(notebook_source.notebook_path(name), output=cwd / f"{name}.ipynb", parameters={}, cwd=cwd)
    return time.perf_counter() - start


@pytest.mark.slow
def test_every_notebook_runs_by_hand_on_its_defaults_within_a_minute(tiny_run, tmp_path, monkeypatch):
    project, _, res = tiny_run
    assert res.returncode == 0, res.stdout + res.stderr
    monkeypatch.setenv("CIELIB_ROOT", str(project))  # the kernels inherit it: the store to read
    seconds = {}
    for name in ORDER:
        cwd = tmp_path / "by_hand" if name in ("train", "quantize") else tmp_path / name
        cwd.mkdir(exist_ok=True)
        seconds[name] = _run_by_hand(name, cwd)
    print("by hand, seconds:", {k: round(v, 1) for k, v in seconds.items()})
    slow = {k: v for k, v in seconds.items() if v > BY_HAND_LIMIT_S}
    assert not slow, f"notebooks slower than {BY_HAND_LIMIT_S:.0f} s by hand: {slow}"


def test_the_walkthrough_covers_every_notebook_in_the_papers_order():
    text = (paths.notebooks_dir() / "README.md").read_text()
    found = re.findall(r"^## \d+\. .*`notebooks/(\w+)\.py`", text, flags=re.M)
    assert found == list(ORDER)
    for name in found:
        section = text.split(f"`notebooks/{name}.py`", 1)[1].split("\n## ", 1)[0]
        assert "Exercises" in section and section.count("\n- ") >= 2, name
        assert re.search(r"\d+ s", section), f"{name}: no measured time"
