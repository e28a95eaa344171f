"""The stage table: adding a stage is a row plus a notebook, never a planner edit."""

from __future__ import annotations

import re

import pytest

from cielib import config, execute, paths, plan, runs, stages, store

TOY_A = '''# %% tags=["parameters"]
task = "t"
factor = 1
run_dir = "."

# %%
import json, pathlib
pathlib.Path(run_dir, "metrics.json").write_text(json.dumps({"value": len(task) * factor}))

# %% tags=["assert"]
assert factor > 0
'''

TOY_B = '''# %% tags=["parameters"]
inputs = []
runs_dir = "runs"
run_dir = "."

# %%
import json, pathlib
from cielib import runs
table = runs.table(runs_dir, inputs)
total = sum(runs.read_json(pathlib.Path(p) / "metrics.json")["value"] for p in table["path"])
pathlib.Path(run_dir, "metrics.json").write_text(json.dumps({"total": total}))

# %% tags=["assert"]
assert len(table) == len(inputs)
'''


@pytest.fixture
def toy_table(tmp_path):
    (tmp_path / "toy_a.py").write_text(TOY_A)
    (tmp_path / "toy_b.py").write_text(TOY_B)
    toy_a = stages.Stage("toy_a", str(tmp_path / "toy_a.py"), per="task",
                         params=lambda prof, task, key: {"task": task.name, "factor": 3})
    toy_b = stages.Stage("toy_b", str(tmp_path / "toy_b.py"), per="profile",
                         params=lambda prof, task, key: {},
                         reads=(stages.Read("toy_a", "inputs"),), runtime=("runs_dir",))
    return (toy_a, toy_b)


def test_a_toy_stage_is_planned_and_executed_without_touching_the_planner(toy_table, tmp_path):
    prof = config.parse_profile({
        "profile": {"name": "toy", "sparsities": [0.0], "seeds": [0]},
        "tasks": {name: {"dataset": "digits", "model": "vgg_small", "optimizer": "sgd",
                         "learning_rate": 0.1, "epochs": 1, "batch_size": 8}
                  for name in ("ab", "abcd")}})
    runs_dir = tmp_path / "runs"
    p = plan.build_plan(prof, runs_dir=runs_dir, table=toy_table)
    a, b = p.by_stage("toy_a"), p.by_stage("toy_b")
    assert len(a) == 2 and len(b) == 1 and set(b[0].upstream) == {s.run_id for s in a}
    results = execute.run_plan(p.specs, runs_dir=runs_dir, executor=execute.LocalExecutor(jobs=1))
    assert [r.status for r in results] == ["ran"] * 3, results
    out = runs.read_json(runs.run_path(runs_dir, "toy_b", b[0].run_id) / "metrics.json")
    assert out == {"total": (2 + 4) * 3}


def test_undeclared_parameter_of_a_new_stage_is_refused_at_planning(toy_table, tmp_path):
    from cielib.notebook_source import ParameterError

    bad = (stages.Stage("toy_a", toy_table[0].notebook, per="task",
                        params=lambda prof, task, key: {"task": task.name, "factr": 3}),)
    prof = config.parse_profile({
        "profile": {"name": "toy", "sparsities": [0.0], "seeds": [0]},
        "tasks": {"x": {"dataset": "digits", "model": "vgg_small", "optimizer": "sgd",
                        "learning_rate": 0.1, "epochs": 1, "batch_size": 8}}})
    with pytest.raises(ParameterError, match=r"\['factr'\]"):
        plan.build_plan(prof, runs_dir=tmp_path / "runs", table=bad)
    assert not (tmp_path / "runs").exists()


def test_readme_what_runs_table_matches_the_stage_table():
    readme = (paths.PACKAGE_DIR.parent / "README.md").read_text()
    section = readme.split("## What runs", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `notebooks/(\w+)\.py` \| ([^|]+) \|", section, flags=re.M)
    assert [(name, nb) for name, nb, _ in rows] == [(s.name, s.notebook) for s in stages.STAGES]
    per_words = {"seed": "task × seed (once per task with pretrained weights)",
                 "point": "task × sparsity × seed", "model": "trained model",
                 "task": "task", "profile": "profile"}
    assert [per.strip() for _, _, per in rows] == [per_words[s.per] for s in stages.STAGES]
    whats = re.findall(r"^\| `\w+` \| `notebooks/\w+\.py` \| [^|]+ \| ([^|]+) \|", section, flags=re.M)
    assert [w.strip() for w in whats] == [s.what for s in stages.STAGES]


def test_every_stage_reads_earlier_stages_only():
    seen: set[str] = set()
    for s in stages.STAGES:
        assert s.per in stages.PER
        for r in s.reads:
            assert r.stage in seen or r.stage == s.name, f"{s.name} reads {r.stage} before it exists"
        seen.add(s.name)


def test_store_check_on_cached_runs_is_cheap(tmp_path):
    """The cheap integrity check stats files only; it never hashes them."""
    spec = runs.RunSpec("train", "train.py", {"task": "a"})
    tmp = store.make_tmp_dir(tmp_path, "train", spec.run_id)
    (tmp / "big.bin").write_bytes(b"x" * 1000)
    final = store.commit(tmp, runs.run_path(tmp_path, "train", spec.run_id))
    (final / "big.bin").write_bytes(b"y" * 1000)  # same size, other content
    assert store.is_done(final)  # cheap check: sizes only
    assert store.problems(final, full=True) == ["content changed: big.bin"]
