"""Planning: the grid, what goes into run identity, and dependencies."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cielib import config, plan
from cielib.notebook_source import ParameterError


@pytest.fixture
def prof(tiny_profile):
    return config.load_profile(tiny_profile)


def test_grid_and_results_upstream(prof, tmp_path):
    p = plan.build_plan(prof, plan.Overrides(sparsities=[0.0, 0.5]), runs_dir=tmp_path)
    train = p.by_stage("train")
    assert len(train) == 2 * 2  # sparsities x seeds
    for stage in ("results", "profiling", "cie"):
        (res,) = p.by_stage(stage)
        assert set(res.upstream) == {s.run_id for s in train}
    dense = [s for s in train if s.params["sparsity"] == 0]
    pruned = [s for s in train if s.params["sparsity"] > 0]
    assert all("prune_schedule" not in s.params for s in dense)  # pruning knobs don't touch dense ids
    assert all(s.params["prune_schedule"] == "polynomial" and not s.upstream for s in pruned)


def test_pruning_settings_do_not_change_dense_run_ids(prof, tmp_path):
    a = plan.build_plan(prof, plan.Overrides(sparsities=[0.0, 0.5]), runs_dir=tmp_path)
    task = dataclasses.replace(prof.tasks[0], prune_schedule="constant")
    b = plan.build_plan(dataclasses.replace(prof, tasks=(task,)), plan.Overrides(sparsities=[0.0, 0.5]),
                        runs_dir=tmp_path)
    ids = lambda p, dense: {s.run_id for s in p.by_stage("train") if (s.params["sparsity"] == 0) == dense}  # noqa: E731
    assert ids(a, True) == ids(b, True)
    assert ids(a, False).isdisjoint(ids(b, False))


def test_prune_from_baseline_depends_on_its_dense_run(prof, tmp_path):
    task = dataclasses.replace(prof.tasks[0], prune_from="baseline", prune_epochs=1)
    p = plan.build_plan(dataclasses.replace(prof, tasks=(task,)), plan.Overrides(sparsities=[0.7]),
                        runs_dir=tmp_path)
    train = p.by_stage("train")
    dense = {s.params["seed"]: s for s in train if s.params["sparsity"] == 0}
    assert set(dense) == {0, 1}, "the dense runs to fine-tune from are added to the plan"
    assert sorted(s.params["seed"] for s in train if s.params["sparsity"] > 0) == [0, 1], \
        "fine-tuning derives from the dense model of the same seed (paired)"
    for s in train:
        if s.params["sparsity"] > 0:
            assert s.upstream == (dense[s.params["seed"]].run_id,)
            assert s.runtime["baseline_dir"].endswith(dense[s.params["seed"]].run_id)
    assert any("adds the dense runs" in n for n in p.notes)


def test_every_planned_parameter_is_declared(prof, tmp_path):
    p = plan.build_plan(prof, plan.Overrides(sparsities=[0.0, 0.3]), runs_dir=tmp_path)
    assert p.specs  # build_plan itself refuses undeclared parameters; check the hook bites:
    bad = dataclasses.replace(p.specs[0], params={**p.specs[0].params, "typo_param": 1})
    from cielib import notebook_source
    with pytest.raises(ParameterError, match="typo_param"):
        notebook_source.check_parameters(notebook_source.notebook_path("train"), bad.notebook_parameters("x"))


def test_quantize_runs_follow_their_training_run(prof, tmp_path):
    p = plan.build_plan(prof, plan.Overrides(sparsities=[0.0, 0.5], techniques=["float16", "full_int8"]),
                        runs_dir=tmp_path)
    train = {s.run_id: s for s in p.by_stage("train")}
    quant = p.by_stage("quantize")
    # one run per dense model converts every technique, float32 (the reference) first;
    # pruned models are not quantized by default
    assert len(quant) == len(prof.seeds)
    assert all(q.params["techniques"] == ["float32", "float16", "full_int8"] for q in quant)
    for q in quant:
        (src,) = q.upstream
        assert train[src].params["sparsity"] == 0 and train[src].params["seed"] == q.params["seed"]
        assert q.runtime["source_dir"].endswith(src)
        assert q.params["measure_speed"] == (q.params["seed"] == prof.seeds[0])
    (quantization,) = p.by_stage("quantization")
    assert set(quantization.upstream) == {q.run_id for q in quant}
    (cie_spec,) = p.by_stage("cie")
    assert set(cie_spec.upstream) == set(train) | {q.run_id for q in quant}


def test_quantize_pruned_and_no_techniques(prof, tmp_path):
    both = dataclasses.replace(prof, quantize_pruned=True)
    p = plan.build_plan(both, plan.Overrides(sparsities=[0.0, 0.5], techniques=["float16"]), runs_dir=tmp_path)
    assert {q.params["sparsity"] for q in p.by_stage("quantize")} == {0.0, 0.5}
    none = plan.build_plan(prof, plan.Overrides(techniques=[]), runs_dir=tmp_path)
    assert not none.by_stage("quantize") and not none.by_stage("quantization")


def test_download_fetches_only_missing_datasets(monkeypatch, prof):
    from cielib import data, pipeline

    cifar = dataclasses.replace(prof.tasks[0], name="c", dataset="cifar10")
    p = plan.Plan(profile=dataclasses.replace(prof, tasks=(prof.tasks[0], cifar)), specs=[])
    calls = []
    monkeypatch.setattr(data, "locate_dataset", lambda name, data_dir=None: None if name == "cifar10" else "here")
    monkeypatch.setattr(data, "load_dataset", lambda name, data_dir=None, download=False: calls.append((name, data_dir, download)))
    pipeline.fetch_missing_data(p, data_dir="/d")
    assert calls == [("cifar10", "/d", True)]


def test_thread_count_is_part_of_identity_and_jobs_is_not(prof, tmp_path):
    one = plan.build_plan(prof, runs_dir=tmp_path)
    two = plan.build_plan(dataclasses.replace(prof, threads=2), runs_dir=tmp_path)
    ids = lambda p: {s.run_id for s in p.by_stage("train")}  # noqa: E731
    assert ids(one).isdisjoint(ids(two))
    assert all(s.params["threads"] == 1 for s in one.by_stage("train"))
    # the executor's settings never reach a spec: planning twice gives the same ids
    assert ids(plan.build_plan(prof, runs_dir=tmp_path)) == ids(one)


def test_specs_are_complete_without_the_planner(prof, tmp_path):
    p = plan.build_plan(prof, plan.Overrides(techniques=["float16"]), runs_dir=tmp_path)
    (q,) = [s for s in p.by_stage("quantize") if s.params["seed"] == 0]
    params = q.notebook_parameters("/out")
    assert params["source_dir"].endswith(q.upstream[0]) and params["run_dir"] == "/out"
    assert params["techniques"] == ["float32", "float16"] and "data_dir" in params
    (cie_spec,) = p.by_stage("cie")
    assert set(cie_spec.notebook_parameters(".")["inputs"]) == set(cie_spec.upstream)


def test_compressed_from_scratch_seeds_are_disjoint_and_shown(prof, tmp_path):
    """Models pruned from scratch train with their own seeds (independent of the dense
    models); quantized and fine-tuned models keep their dense model's seed (paired); the
    plan's note says which."""
    p = plan.build_plan(prof, plan.Overrides(sparsities=[0.0, 0.5], techniques=["float16"]),
                        runs_dir=tmp_path)
    seeds = lambda sp: sorted(s.params["seed"] for s in p.by_stage("train") if s.params["sparsity"] == sp)  # noqa: E731
    assert seeds(0.0) == [0, 1]
    assert seeds(0.5) == [1000, 1001]
    assert sorted(s.params["seed"] for s in p.by_stage("quantize")) == [0, 1]
    note = p.notes[0]
    assert "dense 0, 1" in note and "pruned from scratch 1000, 1001" in note and "paired" in note
    explicit = dataclasses.replace(prof, compressed_seeds=(7, 9))
    p2 = plan.build_plan(explicit, plan.Overrides(sparsities=[0.5]), runs_dir=tmp_path)
    assert sorted(s.params["seed"] for s in p2.by_stage("train")) == [7, 9]
    with pytest.raises(config.ConfigError, match=r"disjoint.*shared: \[1\]"):
        plan.build_plan(dataclasses.replace(prof, compressed_seeds=(1, 5)), runs_dir=tmp_path)
    with pytest.raises(config.ConfigError, match=r"--seeds.*shared: \[1000\]"):
        plan.build_plan(prof, plan.Overrides(seeds=[0, 1000]), runs_dir=tmp_path)
