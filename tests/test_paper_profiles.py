"""The paper's profiles: the features stage is planned before the training runs that read
it, the paper's pruning reading, and the paper-smoke profile end to end (reduced)."""

from __future__ import annotations

import numpy as np
import pytest

from cielib import config, plan, runs

from conftest import run_all


@pytest.fixture
def no_data_check(monkeypatch):
    monkeypatch.setattr(plan, "check_data", lambda *a, **k: None)  # CIFAR is not here


def test_paper_dry_run_plans_features_before_the_training_runs(no_data_check, tmp_path):
    p = plan.build_plan(config.load_profile("paper"), runs_dir=tmp_path)
    order = [s.stage for s in p.specs]
    feats = p.by_stage("features")
    # ImageNet weights: one features run per task, whatever the seed and sparsity
    assert [f.params["task"] for f in feats] == ["vgg19_cifar10", "resnet50_cifar100"]
    assert all("seed" not in f.params for f in feats)
    by_task = {f.params["task"]: f for f in feats}
    for s in p.by_stage("train"):
        f = by_task[s.params["task"]]
        assert f.run_id in s.upstream and s.runtime["features_dir"].endswith(f.run_id)
        assert order.index("features") < p.specs.index(s)
        assert s.params["sparsity"] == 0 or s.params["prune_layers"] == "trainable"


def test_whole_model_pruning_reads_features_only_for_dense_runs(no_data_check, tmp_path):
    p = plan.build_plan(config.load_profile("paper-whole-model"), runs_dir=tmp_path)
    for s in p.by_stage("train"):
        assert ("features_dir" in s.runtime) == (s.params["sparsity"] == 0)


def test_an_untrained_base_caches_features_per_seed(tmp_path):
    prof = config.load_profile("paper-smoke")
    p = plan.build_plan(prof, plan.Overrides(seeds=[0, 1]), runs_dir=tmp_path)
    feats = p.by_stage("features")
    assert sorted((f.params["task"], f.params["seed"]) for f in feats) == [
        (t, s) for t in sorted(t.name for t in prof.tasks) for s in (0, 1)]
    for s in p.by_stage("train"):
        (f,) = [f for f in feats if f.run_id in s.upstream]
        assert f.params["seed"] == s.params["seed"] and f.params["task"] == s.params["task"]


@pytest.mark.slow
def test_paper_smoke_reduced_end_to_end(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    res = run_all("--profile", "paper-smoke", "--tasks", "resnet50_fmnist", "--sparsities", "0", "0.5",
                  "--techniques", "dynamic_int8", "--epochs", "1", root=root, timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    table = runs.table(root / "runs")
    assert sorted(table["stage"].unique()) == ["cie", "discussion", "features", "profiling", "quantization",
                                              "quantize", "results", "train"]
    train = table[table["stage"] == "train"]
    assert (train["params_total"] > 20_000_000).all()  # the whole ResNet-50 was saved, not the head
    pruned = train[train["sparsity"] == 0.5]
    assert (pruned["measured_sparsity"] - 0.5).abs().max() <= 0.01
    quant = table[table["stage"] == "quantize"]
    assert set(quant["technique"]) == {"float32", "dynamic_int8"} and (quant["peak_rss_bytes"] > 0).all()
    assert (root / "report" / "report.html").is_file()
    pred = runs.load_predictions(root / train["path"].iloc[0])
    assert np.isfinite(pred["probs"]).all()
