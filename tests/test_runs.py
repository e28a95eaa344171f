"""Run identity and the store's atomic commit protocol."""

from __future__ import annotations

import numpy as np
import pytest

from cielib import runs, store

P = {"task": "a", "sparsity": 0.5, "seed": 1, "model_options": {"width": 8}}


def test_same_inputs_same_id():
    a = runs.run_id("train", P, upstream=["x", "y"], notebook_hash="h", version="1")
    b = runs.run_id("train", dict(reversed(list(P.items()))), upstream=["y", "x"],
                    notebook_hash="h", version="1")
    assert a == b and len(a) == 12 and int(a, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"stage": "quantize"},
        {"params": {**P, "seed": 2}},
        {"params": {**P, "sparsity": 0.7}},
        {"params": {**P, "model_options": {"width": 16}}},
        {"upstream": ["x"]},
        {"notebook_hash": "h2"},
        {"version": "2"},
    ],
)
def test_any_change_new_id(change):
    kw = {"stage": "train", "params": P, "upstream": ["x", "y"], "notebook_hash": "h", "version": "1"}
    ref = runs.run_id(kw["stage"], kw["params"], upstream=kw["upstream"],
                      notebook_hash=kw["notebook_hash"], version=kw["version"])
    kw.update(change)
    new = runs.run_id(kw["stage"], kw["params"], upstream=kw["upstream"],
                      notebook_hash=kw["notebook_hash"], version=kw["version"])
    assert new != ref


def test_numpy_scalars_hash_like_python_numbers():
    assert runs.canonical_json({"a": np.float32(0.5)}) == runs.canonical_json({"a": 0.5})
    assert runs.canonical_json({"a": np.int64(3)}) == runs.canonical_json({"a": 3})


def test_commit_protocol(tmp_path):
    spec = runs.RunSpec(stage="train", notebook="train.py", params=P)
    rid = spec.run_id
    tmp = store.make_tmp_dir(tmp_path, "train", rid)
    final = runs.run_path(tmp_path, "train", rid)
    (tmp / "metrics.json").write_text('{"top1": 0.5}')
    runs.write_json(tmp / runs.PARAMS, spec.identity())
    assert not store.is_done(final)
    assert runs.done_runs(tmp_path) == []  # a run in progress is invisible
    store.commit(tmp, final)
    assert store.is_done(final) and not tmp.exists()
    assert runs.done_runs(tmp_path) == [final]
    done = runs.read_json(final / runs.DONE)
    assert done["files"]["metrics.json"]["bytes"] == len('{"top1": 0.5}')
    # a second commit replaces the finished run only once the new one is in place
    again = store.make_tmp_dir(tmp_path, "train", rid)
    (again / "metrics.json").write_text('{"top1": 0.75}')
    store.commit(again, final)
    assert runs.read_json(final / "metrics.json") == {"top1": 0.75} and store.is_done(final)
    assert [p.name for p in (tmp_path / "train").iterdir()] == [rid]  # nothing left aside


def test_renamed_but_unmarked_run_is_not_done_and_gets_replaced(tmp_path):
    final = runs.run_path(tmp_path, "train", "abc")
    final.mkdir(parents=True)
    (final / "half-written").write_text("x")
    assert not store.is_done(final)
    tmp = store.make_tmp_dir(tmp_path, "train", "abc")
    (tmp / "ok").write_text("y")
    store.commit(tmp, final)
    assert (final / "ok").exists() and not (final / "half-written").exists()


def test_index_and_predictions(tmp_path):
    for seed, top1 in [(0, 0.8), (1, 0.9)]:
        spec = runs.RunSpec(stage="train", notebook="train.py", params={**P, "seed": seed})
        tmp = store.make_tmp_dir(tmp_path / "runs", "train", spec.run_id)
        runs.write_json(tmp / runs.PARAMS, spec.identity())
        runs.write_json(tmp / runs.METRICS, {"top1": top1, "train_seconds": 1.5, "nested": {"x": 1}})
        runs.save_predictions(tmp / runs.PREDICTIONS, y_true=np.array([0, 1]), y_pred=np.array([0, 0]),
                              probs=np.array([[0.9, 0.1], [0.6, 0.4]]))
        store.commit(tmp, runs.run_path(tmp_path / "runs", "train", spec.run_id))
    df = store.write_index(tmp_path / "runs")
    assert list(df.columns[:10]) == list(runs.INDEX_COLUMNS)
    assert sorted(df["top1"]) == [0.8, 0.9]
    assert "train_seconds" in df.columns and "nested" not in df.columns
    again = runs.load_index(tmp_path / "runs")
    assert len(again) == 2
    pred = runs.load_predictions(tmp_path / df["path"].iloc[0])
    assert pred["y_true"].dtype == np.int64 and pred["probs"].dtype == np.float32


def test_prediction_schema_is_checked(tmp_path):
    with pytest.raises(ValueError, match="equal 1-D"):
        runs.save_predictions(tmp_path / "p.npz", y_true=np.zeros(3), y_pred=np.zeros(2), probs=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_images, n_classes"):
        runs.save_predictions(tmp_path / "p.npz", y_true=np.zeros(3), y_pred=np.zeros(3), probs=np.zeros(3))


def test_setting_names_and_order():
    from cielib import runsets

    assert runsets.setting_name({"sparsity": 0.0}) == "dense"
    assert runsets.setting_name({"sparsity": 0.5, "technique": float("nan")}) == "sparsity 0.5"
    assert runsets.setting_name({"sparsity": 0.0, "technique": "float16"}) == "float16"
    assert runsets.setting_name({"sparsity": 0.9, "technique": "full_int8"}) == "sparsity 0.9 + full_int8"
    params = [{"technique": "full_int8", "sparsity": 0.0}, {"sparsity": 0.9}, {"sparsity": 0.0},
              {"technique": "float32", "sparsity": 0.0}, {"sparsity": 0.3},
              {"technique": "full_int8", "sparsity": 0.9}]
    names = [runsets.setting_name(p) for p in params]
    assert sorted(names, key=runsets.setting_order) == [
        "dense", "sparsity 0.3", "sparsity 0.9", "float32", "full_int8", "sparsity 0.9 + full_int8"]
    # names are never parsed back: a plain string (a setting a user named, or a name read
    # from a CSV file) sorts after every known setting, by name, even one that reads
    # like a known setting
    assert sorted(["int8", "pruned", *names[:2]], key=runsets.setting_order) == [
        "sparsity 0.9", "full_int8", "int8", "pruned"]
    assert sorted([names[1], "sparsity 0.1"], key=runsets.setting_order) == ["sparsity 0.9", "sparsity 0.1"]
    with pytest.raises(TypeError, match="setting_order needs a Setting"):
        runsets.setting_order(0.9)


def test_stand_in_note():
    from cielib import runsets

    assert runsets.stand_in_note("") == ""
    assert "**stand-in** for the paper's *VGG-19 on CIFAR-10*" in runsets.stand_in_note("VGG-19 on CIFAR-10")


def test_pairing_follows_the_design():
    """Quantized and fine-tuned models pair with the dense model they derive from (same
    seed); models pruned from scratch with the dense model of the same rank (their own,
    disjoint seeds)."""
    import numpy as np
    import pandas as pd

    from cielib import runsets

    rows = pd.DataFrame([
        {"stage": "train", "sparsity": 0.0, "technique": None, "seed": 0},
        {"stage": "train", "sparsity": 0.5, "technique": None, "seed": 1000, "prune_from": "scratch"},
        {"stage": "train", "sparsity": 0.5, "technique": None, "seed": 0, "prune_from": "baseline"},
        {"stage": "quantize", "sparsity": 0.0, "technique": "float16", "seed": 0},
    ])
    assert list(runsets.with_settings(rows)["design"]) == ["dense", "independent", "paired", "paired"]
    base = {0: np.array([0]), 1: np.array([1]), 2: np.array([2])}
    settings = {"sparsity 0.5": {1001: np.array([11]), 1000: np.array([10])},
                "float16": {2: np.array([22]), 0: np.array([20])}}
    keyed, pairs = runsets.pair_with_dense(base, settings, {"sparsity 0.5": "independent",
                                                            "float16": "paired"})
    assert {d: int(v[0]) for d, v in keyed["sparsity 0.5"].items()} == {0: 10, 1: 11}
    assert {d: int(v[0]) for d, v in keyed["float16"].items()} == {0: 20, 2: 22}
    assert pairs.query("setting == 'sparsity 0.5'")[["dense_seed", "compressed_seed"]].values.tolist() == [[0, 1000], [1, 1001]]
    with pytest.raises(ValueError, match="design 'dense'"):
        runsets.pair_with_dense(base, settings, {"sparsity 0.5": "dense", "float16": "paired"})
