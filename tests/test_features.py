"""The frozen-base feature cache: splitting, assembling, storing, and exact equivalence.

The equivalence tests train a tiny frozen-base model both ways, each training run in
its own fresh interpreter (one TensorFlow thread, op determinism, as a pipeline run
is): the whole model with its frozen base, and the head on features computed once by
another process, then assembled. Histories, weights and test predictions must be
bit-identical (``np.array_equal``), dense and with the head pruned.

Run by hand: ``python tests/test_features.py features|train ...`` is the worker the
tests start (see ``_worker``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # when run as a script (the worker)
    sys.path.insert(0, str(ROOT))

from cielib import features  # noqa: E402

SEED = 3
BATCH = 32
EPOCHS = 2
INPUT_SHAPE = (16, 16, 3)
SPARSITY = 0.5


# ------------------------------------------------------------------ tiny models


def tiny_frozen(*, n_classes: int = 10, dropout: float = 0.25, seed: int = 0):
    """Two frozen convs (random init from the global seed, as a weights=None base),
    then Flatten, Dense(24, relu), Dropout, Dense(n_classes, softmax)."""
    from cielib.keras import keras

    inp = keras.Input(INPUT_SHAPE, name="input")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="block1_conv")(inp)
    x = keras.layers.MaxPooling2D(2, name="block1_pool")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="block2_conv")(x)
    base = keras.Model(inp, x)
    for layer in base.layers:
        layer.trainable = False
    x = keras.layers.Flatten(name="head_flatten")(x)
    x = keras.layers.Dense(24, activation="relu", name="fc1",
                           kernel_initializer=keras.initializers.HeUniform(seed=seed))(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed + 1, name="fc1_dropout")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="predictions",
                             kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 2))(x)
    return keras.Model(inp, out, name="tiny")


def _digits():
    from cielib import data

    ds = data.load_dataset("digits")
    def prep(x):
        return data.preprocess(x, input_shape=INPUT_SHAPE, scaling="unit")
    return ds, prep


# ------------------------------------------------------------------ the worker


def _worker(argv: list[str]) -> None:
    """``features OUT.npz`` or ``train WAY SPARSITY FEATURES.npz OUT.npz``.

    Mirrors the notebooks: threads and seed first, then build, then train.
    """
    from cielib import prune, train
    from cielib.keras import configure_threads, seed_everything

    configure_threads(1)
    seed_everything(SEED)
    ds, prep = _digits()
    model = tiny_frozen()
    mode = argv[0]
    if mode == "features":
        base, _ = features.split_frozen_base(model)
        feats = features.Features(
            x_train=features.compute_features(base, prep(ds.x_train), batch_size=BATCH),
            y_train=ds.y_train,
            x_test=features.compute_features(base, prep(ds.x_test), batch_size=BATCH),
            y_test=ds.y_test,
            meta={"base_fingerprint": features.fingerprint(base), "batch_size": BATCH},
        )
        features.save_features(argv[1], feats)
        return
    way, sparsity, feats_path, out = argv[1], float(argv[2]), argv[3], argv[4]
    if way == "whole":
        net = model
        x_tr, y_tr, x_val, y_val = features.split_features(
            prep(ds.x_train), ds.y_train, fraction=0.1, seed=SEED)
    else:
        base, net = features.split_frozen_base(model)
        feats = features.load_features(feats_path, base=base, expect={"batch_size": BATCH})
        x_tr, y_tr, x_val, y_val = features.split_features(
            feats.x_train, feats.y_train, fraction=0.1, seed=SEED)
    callbacks = []
    if sparsity:
        plan = prune.plan_schedule(target_sparsity=sparsity,
                                   steps_per_epoch=-(-len(x_tr) // BATCH), epochs=EPOCHS)
        net = prune.prune_model(net, plan, layers="trainable")
        callbacks = prune.callbacks()
    train.compile_model(net, optimizer="sgd", learning_rate=0.05, momentum=0.9)
    history = train.fit(net, x_tr, y_tr, x_val=x_val, y_val=y_val, epochs=EPOCHS,
                        batch_size=BATCH, callbacks=callbacks)
    net = prune.strip(net)
    head_sparsity = prune.measured_sparsity(net, layers="trainable") if sparsity else 0.0
    if way == "cached":
        net = features.assemble(base, net, name="tiny")
    probs = train.predict_proba(net, prep(ds.x_test))
    np.savez(
        out,
        probs=probs,
        n_layers=len(net.layers),
        names=np.array([w.name for w in net.weights]),
        **{f"w{i}": w for i, w in enumerate(net.get_weights())},
        **{f"h_{c}": history[c].to_numpy() for c in ("loss", "accuracy", "val_loss", "val_accuracy")},
        sparsity=prune.measured_sparsity(net, layers="trainable"),
        head_sparsity=head_sparsity,
    )


def _run(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "TF_ENABLE_ONEDNN_OPTS": os.environ.get("ONEDNN", "1")}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("features") / "features.npz"
    _run("features", str(path))
    return path


def _train_both(feature_file: Path, sparsity: float) -> tuple[dict, dict]:
    out = {}
    for way in ("whole", "cached"):
        path = feature_file.parent / f"{way}-{sparsity}.npz"
        _run("train", way, str(sparsity), str(feature_file), str(path))
        with np.load(path) as z:
            out[way] = {k: z[k] for k in z.files}
    return out["whole"], out["cached"]


def _assert_identical(whole: dict, cached: dict) -> None:
    assert set(whole) == set(cached)
    assert whole["n_layers"] == cached["n_layers"]
    assert list(whole["names"]) == list(cached["names"]), "assembled model differs in layout"
    diffs = {k: float(np.max(np.abs(whole[k].astype(float) - cached[k].astype(float))))
             for k in whole if k not in ("names",) and not np.array_equal(whole[k], cached[k])}
    assert not diffs, f"not bit-identical (max abs difference per array): {diffs}"


@pytest.mark.slow
def test_dense_head_on_cached_features_is_bit_identical(feature_file):
    whole, cached = _train_both(feature_file, 0.0)
    _assert_identical(whole, cached)
    assert whole["h_loss"][-1] < whole["h_loss"][0], "did not train: the test would prove little"


@pytest.mark.slow
def test_pruned_head_on_cached_features_is_bit_identical(feature_file):
    whole, cached = _train_both(feature_file, SPARSITY)
    _assert_identical(whole, cached)
    # The assembled model's trainable (head) layers carry the head's sparsity.
    assert cached["sparsity"] == cached["head_sparsity"]
    assert abs(float(cached["sparsity"]) - SPARSITY) <= 0.01


if __name__ == "__main__":
    _worker(sys.argv[1:])
