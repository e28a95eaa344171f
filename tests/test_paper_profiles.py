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
    # the dense seeds and the independent seeds of the models pruned from scratch
    assert sorted((f.params["task"], f.params["seed"]) for f in feats) == [
        (t, s) for t in sorted(t.name for t in prof.tasks) for s in (0, 1, 1000, 1001)]
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
    assert (train["input_size"] == 40).all()  # the upsampled path, resized in the model
    feats = table[table["stage"] == "features"]
    assert (feats["input_size"] == 40).all() and (feats["peak_rss_bytes"] > 0).all()
    pruned = train[train["sparsity"] == 0.5]
    assert (pruned["measured_sparsity"] - 0.5).abs().max() <= 0.01
    quant = table[table["stage"] == "quantize"]
    assert set(quant["technique"]) == {"float32", "dynamic_int8"} and (quant["peak_rss_bytes"] > 0).all()
    assert (root / "report" / "report.html").is_file()
    pred = runs.load_predictions(root / train["path"].iloc[0])
    assert np.isfinite(pred["probs"]).all()


# ------------------------------------------------------------ the input resolution


def _weights(keras_home):
    from cielib.models.paper import imagenet_weights_path  # noqa: F401 (path layout)

    models_dir = keras_home / "models"
    models_dir.mkdir(parents=True)
    for name in ("vgg19", "resnet50"):  # only their presence is checked when planning
        (models_dir / f"{name}_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"")


def test_paper_reads_224_and_paper_32_reads_the_images_own_size(no_data_check, tmp_path):
    for name, size in (("paper", 224), ("paper-32", 0), ("paper-whole-model", 224)):
        p = plan.build_plan(config.load_profile(name), runs_dir=tmp_path)
        for stage in ("train", "features"):
            assert {s.params["input_size"] for s in p.by_stage(stage)} == {size}, (name, stage)
    ids = {name: {s.run_id for s in plan.build_plan(config.load_profile(name), runs_dir=tmp_path).specs}
           for name in ("paper", "paper-32")}
    assert not ids["paper"] & ids["paper-32"], "the resolution is part of every run id"


def test_input_size_is_refused_for_a_model_without_a_pretrained_base():
    raw = {"profile": {"name": "x", "sparsities": [0.0], "seeds": [0]},
           "tasks": {"t": {"dataset": "digits", "model": "vgg_small", "optimizer": "sgd",
                           "learning_rate": 0.1, "epochs": 1, "batch_size": 8, "input_size": 64}}}
    with pytest.raises(config.ConfigError, match="input_size 64 is not allowed for 'vgg_small'"):
        config.parse_profile(raw)


def test_paper_fidelity_without_data_says_where_cifar_and_the_weights_go(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    import os

    old = dict(os.environ)
    os.environ.update(KERAS_HOME=str(tmp_path / "keras"), HOME=str(tmp_path / "home"))
    os.environ.pop("CIELIB_DATA_DIR", None)
    try:
        res = run_all("--profile", "paper-fidelity", "--dry-run", "--data-dir", str(tmp_path / "none"),
                      root=root, timeout=300)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert res.returncode == 2, res.stdout + res.stderr
    for needle in ("cifar10", "cifar100", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
                   "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "--data-dir"):
        assert needle in res.stderr, needle


def test_paper_fidelity_with_data_plans_four_dense_runs(tmp_path, monkeypatch):
    from test_data import make_cifar

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in ("cifar10", "cifar100"):
        make_cifar(data_dir, name, tar=False)
    _weights(tmp_path / "keras")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    p = plan.build_plan(config.load_profile("paper-fidelity"), plan.Overrides(data_dir=str(data_dir)),
                        runs_dir=tmp_path / "runs")
    trains = p.by_stage("train")
    assert sorted((s.params["model"], s.params["input_size"]) for s in trains) == [
        ("resnet50", 0), ("resnet50", 224), ("vgg19", 0), ("vgg19", 224)]
    assert {(s.params["sparsity"], s.params["seed"]) for s in trains} == {(0.0, 0)}
    assert len(p.by_stage("features")) == 4 and not p.by_stage("quantize")


def test_resolution_check_reads_the_paper_and_the_store():
    import pandas as pd

    from cielib import fidelity, paper_tables

    vgg = float(paper_tables.paper_table(1).loc["dense", "top1"])
    index = pd.DataFrame({
        "stage": ["train"] * 3, "task": ["v224", "v32", "v224"], "sparsity": [0.0, 0.0, 0.5],
        "technique": [None] * 3, "top1": [vgg - 0.01, vgg - 0.2, 0.1], "input_size": [224, 0, 224]})
    tasks = [{"name": "v224", "label": "VGG 224", "paper_task": "vgg19_cifar10", "stand_in_for": ""},
             {"name": "v32", "label": "VGG 32", "paper_task": "vgg19_cifar10", "stand_in_for": ""}]
    check = fidelity.resolution_check(index, tasks)
    assert list(check["within"]) == [True, False]
    assert check["difference (points)"].round(6).tolist() == [-1.0, -20.0]
    assert "224x224 lands within 3 points" in fidelity.resolution_finding(check)
    stand_in = [{**t, "stand_in_for": "VGG-19 on CIFAR-10"} for t in tasks]
    assert fidelity.resolution_check(index, stand_in).empty
