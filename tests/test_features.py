"""The frozen-base feature cache: splitting, assembling, storing, and exact equivalence.

The equivalence tests train a tiny frozen-base model both ways, each training run in
its own fresh interpreter (one TensorFlow thread, op determinism, as a pipeline run
is): the whole model with its frozen base, and the head on features computed once by
another process, then assembled. Histories, weights and test predictions must be
bit-identical (``np.array_equal``), dense and with the head pruned.

The workers run with ``TF_ENABLE_ONEDNN_OPTS=1`` (``ONEDNN=0 pytest ...`` to try
without): with TensorFlow's default convolutions on an AVX2 CPU an image's activations
change in their last bits with its position in a batch, and the two ways then differ
by about 1e-7 (see ``cielib.features``).

The worker's model upsamples its 16x16 input to 24x24 as its first layer (as a paper
model with ``input_size`` does), so the equivalence covers resize -> cache -> head ->
assemble, and the cached run reads its features memory-mapped through
:class:`cielib.rows.Rows`.

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

from cielib import features, models  # noqa: E402
from cielib.rows import Rows  # noqa: E402

SEED = 3
BATCH = 32
EPOCHS = 2
INPUT_SHAPE = (16, 16, 3)
SPARSITY = 0.5
UPSAMPLE = 24  # the worker's model resizes its 16x16 input to this, as its first layer


# ------------------------------------------------------------------ tiny models


def tiny_frozen(*, n_classes: int = 10, dropout: float = 0.25, seed: int = 0,
                upsample: int = 0):
    """Two frozen convs (random init from the global seed, as a weights=None base),
    then Flatten, Dense(24, relu), Dropout, Dense(n_classes, softmax); with
    ``upsample``, a bilinear resize to ``upsample`` x ``upsample`` comes first."""
    from cielib.keras import keras

    inp = keras.Input(INPUT_SHAPE, name="input")
    x = inp
    if upsample:
        x = keras.layers.Resizing(upsample, upsample, name="input_resize")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="block1_conv")(x)
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


# ------------------------------------------------------------ fast, in-process


def _images(n: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *INPUT_SHAPE), dtype=np.float32)


def test_split_gives_a_base_and_a_head_that_compose_to_the_model():
    model = tiny_frozen()
    base, head = models.split_frozen_base(model)
    # The cut is right before the first trainable layer: Flatten belongs to the base.
    assert [layer.name for layer in base.layers][-1] == "head_flatten"
    assert base.output_shape == (None, 5 * 5 * 16)
    assert [layer.name for layer in head.layers][1:] == ["fc1", "fc1_dropout", "predictions"]
    assert not base.trainable_weights and len(head.trainable_weights) == 4
    assert head.layers[1] is model.get_layer("fc1"), "the head trains the model's own layers"
    x = _images()
    f = features.compute_features(base, x, batch_size=8)
    assert f.dtype == np.float32 and f.shape == (len(x), 400)
    np.testing.assert_allclose(head.predict(f, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_assembled_model_is_the_original_layout_and_predicts_the_same():
    model = tiny_frozen()
    base, head = models.split_frozen_base(model)
    whole = models.assemble(base, head)
    assert whole.name == "tiny"
    assert [layer.name for layer in whole.layers] == [layer.name for layer in model.layers]
    assert [w.name for w in whole.weights] == [w.name for w in model.weights]
    x = _images()
    assert np.array_equal(whole.predict(x, batch_size=8, verbose=0),
                          model.predict(x, batch_size=8, verbose=0))


def test_paper_models_split_after_their_pooling(tmp_path):
    for name, flat, flat_224 in (("vgg19", 512, 7 * 7 * 512), ("resnet50", 2048, 2048)):
        model = models.build_model(name, input_shape=None, n_classes=10, seed=0)
        base, head = models.split_frozen_base(model)
        assert base.output_shape == (None, flat)
        assert [layer.name for layer in head.layers][1:] == ["fc1", "fc2", "predictions"]
        assert len(models.assemble(base, head).layers) == len(model.layers)
        # the upsampled reading: the model takes 32x32 images and resizes them itself
        up = models.build_model(name, input_shape=None, n_classes=10, seed=0, input_size=224)
        assert up.input_shape == (None, 32, 32, 3) and up.layers[1].name == models.INPUT_RESIZE
        base, head = models.split_frozen_base(up)
        assert base.output_shape == (None, flat_224) and models.INPUT_RESIZE in [
            layer.name for layer in base.layers]


def test_models_without_a_frozen_base_are_refused():
    from cielib.keras import keras

    with pytest.raises(ValueError, match="no frozen base to cache: no layer with weights "
                                         "precedes the first trainable layer 'block1_conv1'"):
        models.split_frozen_base(models.build_model("vgg_small", input_shape=(8, 8, 1),
                                                      n_classes=3))
    with pytest.raises(ValueError, match=r"no frozen base to cache: the first layer\(s\) "
                                         "stem_conv.* have trainable weights"):
        models.split_frozen_base(models.build_model("resnet_small", input_shape=(8, 8, 1),
                                                      n_classes=3))
    inp = keras.Input((4,))
    flat_only = keras.Model(inp, keras.layers.Dense(2, name="d")(keras.layers.Flatten()(inp)))
    with pytest.raises(ValueError, match="no layer with weights precedes the first trainable layer 'd'"):
        models.split_frozen_base(flat_only)
    frozen = tiny_frozen()
    frozen.trainable = False
    with pytest.raises(ValueError, match="no trainable layer at its end"):
        models.split_frozen_base(frozen)


def test_a_pruned_base_is_refused_and_a_pruned_head_is_not():
    from cielib import prune

    plan = prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=5, epochs=2)
    with pytest.raises(ValueError, match="has a pruned base .*block1_conv.*prune_layers='trainable'"):
        models.split_frozen_base(prune.prune_model(tiny_frozen(), plan, layers="all"))
    base, head = models.split_frozen_base(
        prune.prune_model(tiny_frozen(), plan, layers="trainable"))
    assert not base.trainable_weights


def test_a_random_layer_in_the_base_is_refused():
    from cielib.keras import keras

    inp = keras.Input((6,))
    x = keras.layers.Dense(5, name="frozen", trainable=False)(inp)
    x = keras.layers.GaussianNoise(0.1, name="noise")(x)
    model = keras.Model(inp, keras.layers.Dense(2, name="d")(x))
    with pytest.raises(ValueError, match=r"random layer\(s\) in its frozen base \(noise\)"):
        models.split_frozen_base(model)


def test_assemble_refuses_a_wrapped_or_mismatched_head():
    from cielib import prune

    base, head = models.split_frozen_base(tiny_frozen())
    plan = prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=5, epochs=2)
    with pytest.raises(ValueError, match="still wrapped for pruning.*strip"):
        models.assemble(base, prune.prune_model(head, plan, layers="trainable"))
    other_base, _ = models.split_frozen_base(_other_shape_model())
    with pytest.raises(ValueError, match=r"reads features of shape \(400,\).*outputs \(64,\)"):
        models.assemble(other_base, head)


def _other_shape_model():
    from cielib.keras import keras

    inp = keras.Input((8,))
    x = keras.layers.Dense(64, name="frozen", trainable=False)(inp)
    return keras.Model(inp, keras.layers.Dense(2, name="d")(x))


def test_pruning_the_head_shows_in_the_assembled_models_trainable_layers():
    from cielib import prune, train

    model = tiny_frozen(dropout=0.0)
    base, head = models.split_frozen_base(model)
    f = features.compute_features(base, _images(64), batch_size=16)
    y = np.arange(64) % 10
    plan = prune.plan_schedule(target_sparsity=0.7, steps_per_epoch=4, epochs=3, kind="constant")
    pruned = prune.prune_model(head, plan, layers="trainable")
    train.compile_model(pruned, optimizer="sgd", learning_rate=0.01)
    pruned.fit(f, y, batch_size=16, epochs=3, verbose=0, callbacks=prune.callbacks())
    stripped = prune.strip(pruned)
    whole = models.assemble(base, stripped)
    on_head = prune.measured_sparsity(stripped, layers="trainable")
    assert abs(on_head - 0.7) <= 0.01
    assert prune.measured_sparsity(whole, layers="trainable") == on_head
    # The frozen base kept every weight.
    report = prune.sparsity_report(whole, layers="all")
    frozen = report[report["trainable"].eq(False)]
    assert list(frozen["layer"]) == ["block1_conv", "block2_conv"] and frozen["zeros"].sum() == 0


def test_compute_features_checks_its_input():
    base, _ = models.split_frozen_base(tiny_frozen())
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        features.compute_features(base, _images(), batch_size=0)
    with pytest.raises(ValueError, match=r"images of shape \(3, 8, 8, 3\) do not fit"):
        features.compute_features(base, np.zeros((3, 8, 8, 3), np.float32), batch_size=2)
    with pytest.raises(ValueError, match="preprocessed floats.*uint8"):
        features.compute_features(base, np.zeros((3, *INPUT_SHAPE), np.uint8), batch_size=2)
    assert features.compute_features(base, _images(0), batch_size=2).shape == (0, 400)


def test_batch_invariance_reports_a_comparison():
    base, _ = models.split_frozen_base(tiny_frozen())
    out = features.batch_invariance(base, _images(20), batch_size=8)
    assert set(out) == {"invariant", "max_abs_diff", "n_images"} and out["n_images"] == 20
    assert out["invariant"] == (out["max_abs_diff"] == 0.0)
    with pytest.raises(ValueError, match="at least batch_size \\+ 2 = 10 images, got 9"):
        features.batch_invariance(base, _images(9), batch_size=8)


def _feats(n_train=12, n_test=5, dim=4, meta=None):
    rng = np.random.default_rng(1)
    return features.Features(
        x_train=rng.random((n_train, dim), dtype=np.float32),
        y_train=np.arange(n_train, dtype=np.int64) % 3,
        x_test=rng.random((n_test, dim), dtype=np.float32),
        y_test=np.arange(n_test, dtype=np.int64) % 3,
        meta=meta or {"dataset": "digits", "input_shape": [32, 32, 3], "batch_size": 32},
    )


def test_features_round_trip_memory_mapped(tmp_path):
    feats = _feats()
    run = features.save_features(tmp_path / "run", feats)
    back = features.load_features(run, expect={"dataset": "digits", "input_shape": (32, 32, 3)})
    for name in ("x_train", "y_train", "x_test", "y_test"):
        got, want = getattr(back, name), getattr(feats, name)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert isinstance(back.x_train, np.memmap) and isinstance(back.x_test, np.memmap)
    assert back.meta == feats.meta and back.shape == (4,) and back.nbytes == feats.nbytes
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [*features.FEATURE_FILES.values(), features.FEATURES_META])


def test_features_are_checked_on_load(tmp_path):
    run = features.save_features(tmp_path / "f", _feats())
    with pytest.raises(features.FeaturesMismatchError, match="batch_size: features have 32, expected 64"):
        features.load_features(run, expect={"batch_size": 64})
    base, _ = models.split_frozen_base(tiny_frozen())
    with pytest.raises(features.FeaturesMismatchError,
                       match=r"feature shape \(4,\) != base output \(400,\).*base weights differ"):
        features.load_features(run, base=base)
    with pytest.raises(FileNotFoundError, match="no features run directory"):
        features.load_features(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no features in"):
        features.load_features(tmp_path / "empty")
    (run / features.FEATURE_FILES["x_test"]).unlink()
    with pytest.raises(ValueError, match="not a features run, missing.*x_test.npy"):
        features.load_features(run)


def test_features_refuse_wrong_dtypes_and_shapes(tmp_path):
    f = _feats()
    with pytest.raises(ValueError, match="x_train must be a float32 array.*float64"):
        features.Features(x_train=f.x_train.astype(np.float64), y_train=f.y_train,
                          x_test=f.x_test, y_test=f.y_test)
    with pytest.raises(ValueError, match=r"y_test must be an int64 array of shape \(5,\)"):
        features.Features(x_train=f.x_train, y_train=f.y_train, x_test=f.x_test,
                          y_test=f.y_test[:4])
    with pytest.raises(ValueError, match=r"train features \(4,\) and test features \(3,\)"):
        features.Features(x_train=f.x_train, y_train=f.y_train, x_test=f.x_test[:, :3],
                          y_test=f.y_test)
    with pytest.raises(ValueError, match="run directory, got the file name 'f.npz'"):
        features.save_features(tmp_path / "f.npz", f)


def test_split_features_is_the_training_runs_split_of_the_images():
    from cielib import data

    y = np.repeat(np.arange(4), 10)
    x_img = np.arange(40 * 2 * 2 * 1, dtype=np.uint8).reshape(40, 2, 2, 1)
    feats = np.arange(40, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    for seed in (0, 1):
        i_tr, y_tr, i_val, y_val = data.validation_split(x_img, y, fraction=0.2, seed=seed)
        f_tr, fy_tr, f_val, fy_val = features.split_features(feats, y, fraction=0.2, seed=seed)
        assert isinstance(f_tr, Rows) and f_tr.array is feats, "a view: nothing is copied"
        f_tr, f_val = np.asarray(f_tr), np.asarray(f_val)
        # Row k of the features is image k: the same images land on each side, in order.
        assert np.array_equal(f_tr[:, 0].astype(int), i_tr[:, 0, 0, 0] // 4)
        assert np.array_equal(f_val[:, 0].astype(int), i_val[:, 0, 0, 0] // 4)
        assert np.array_equal(fy_tr, y_tr) and np.array_equal(fy_val, y_val)
    a = np.asarray(features.split_features(feats, y, fraction=0.2, seed=0)[2])
    b = np.asarray(features.split_features(feats, y, fraction=0.2, seed=1)[2])
    assert not np.array_equal(a, b), "the split follows the training run's seed"


def test_predict_test_falls_back_to_the_whole_network_when_the_cache_disagrees():
    """Features that are not the base's (here: shifted by 1e-3) fail the check on the first
    batch, and every test image is then predicted by the whole network."""
    from cielib import train

    model = tiny_frozen()
    base, head = models.split_frozen_base(model)
    net = models.assemble(base, head, name="tiny")
    ds, prep = _digits()
    x_test = prep(ds.x_test)
    cached = features.compute_features(base, x_test, batch_size=BATCH)
    whole = train.predict_proba(net, x_test, batch_size=64)
    probs, info = features.predict_test(net, head, cached + 1e-3, x_test, batch_size=64)
    assert info["predictions_from"] == "whole network" and info["predictions_checked"] == 64
    assert info["predictions_check_max_abs_diff"] > 0
    assert np.array_equal(probs, whole)
    with pytest.raises(ValueError, match="cached_x_test has 3 images but x_test has"):
        features.predict_test(net, head, cached[:3], x_test)


def test_fit_on_memory_mapped_rows_is_fit_on_the_array(tmp_path):
    """The Rows reader keeps tf_keras' own shuffled order: same seed, same weights."""
    from cielib import train
    from cielib.keras import keras, seed_everything

    rng = np.random.default_rng(0)
    x = rng.random((100, 12), dtype=np.float32)
    y = (np.arange(100) % 3).astype(np.int64)
    np.save(tmp_path / "x.npy", x)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    results = []
    for way in ("array", "rows"):
        seed_everything(7)
        inp = keras.Input((12,))
        out = keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8)(inp))
        net = train.compile_model(keras.Model(inp, out), optimizer="sgd", learning_rate=0.1)
        x_tr, y_tr, x_val, y_val = features.split_features(mapped, y, fraction=0.2, seed=1)
        if way == "array":
            x_tr, x_val = np.asarray(x_tr), np.asarray(x_val)
        history = train.fit(net, x_tr, y_tr, x_val=x_val, y_val=y_val, epochs=3, batch_size=16)
        results.append((net.get_weights(), history["val_loss"].to_numpy(),
                         train.predict_proba(net, x_val, batch_size=8)))
    (w_a, h_a, p_a), (w_r, h_r, p_r) = results
    assert all(np.array_equal(a, b) for a, b in zip(w_a, w_r))
    assert np.array_equal(h_a, h_r) and np.array_equal(p_a, p_r)


@pytest.mark.slow
def test_streamed_features_keep_memory_bounded_as_images_grow(tmp_path):
    """The features stage on synthetic CIFAR-shaped images upsampled in the model: its
    peak memory (a fresh process's max RSS) barely moves from N to 4N images, while the
    cache it writes (and an in-memory cache would hold) grows by 3N rows."""
    n = 200
    peaks, sizes = {}, {}
    for k in (n, 4 * n):
        out = tmp_path / f"n{k}"
        _run("stream", str(k), str(out))
        peaks[k] = json.loads((out / "peak.json").read_text())["peak_rss_bytes"]
        sizes[k] = (out / features.FEATURE_FILES["x_train"]).stat().st_size
    in_memory_growth = sizes[4 * n] - sizes[n]
    assert in_memory_growth > 150 * 2**20, "the test would prove little"
    assert peaks[4 * n] - peaks[n] < in_memory_growth / 3, (peaks, sizes)


def test_fingerprint_tracks_the_weights():
    a, b = tiny_frozen(), tiny_frozen()
    b.set_weights(a.get_weights())
    assert features.fingerprint(a) == features.fingerprint(b)
    w = b.get_weights()
    w[0] = w[0] + np.float32(1e-3)
    b.set_weights(w)
    assert features.fingerprint(a) != features.fingerprint(b)


# ------------------------------------------------------------ scripts/gpu_check


def _has_nvidia_smi() -> bool:
    import shutil

    return shutil.which("nvidia-smi") is not None


@pytest.mark.skipif(_has_nvidia_smi(), reason="this machine may have a GPU")
def test_gpu_check_stops_clearly_without_a_gpu():
    env = {**os.environ, "PYTHON": sys.executable}
    for cmd in (["bash", str(ROOT / "scripts" / "gpu_check.sh")],
                [sys.executable, str(ROOT / "scripts" / "gpu_check.py")]):
        result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 2, (cmd, result.stderr)
        assert "nothing measured" in result.stderr and not result.stdout.strip()
        assert "GPU" in result.stderr or "NVML" in result.stderr


@pytest.mark.slow
def test_gpu_check_run_plumbing_with_a_planted_nvml(monkeypatch):
    """One short run of each kind on the CPU, NVML replaced by test_hardware's fake:
    checks the script's bookkeeping, not any GPU (the numbers are the fake's)."""
    import argparse
    import functools
    import importlib.util

    from tests.test_hardware import FakeNVML

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    monkeypatch.setattr(gpu_check.hardware, "Sampler",
                        functools.partial(gpu_check.hardware.Sampler, nvml=FakeNVML()))
    assert gpu_check.nvml_devices() == [0]
    args = argparse.Namespace(steps=4, warmup=2, batch_size=2, sparsity=0.5, interval=0.05)
    n = (args.warmup + args.steps) * args.batch_size
    x = np.random.default_rng(0).random((n, 32, 32, 3), dtype=np.float32)
    y = np.arange(n) % 10
    for layers in (None, "trainable"):
        out = gpu_check.one_run(x, y, layers=layers, args=args)
        assert out["steps"] == 4 and out["images_per_s"] > 0
        assert out["utilization_mean_pct"] is not None and out["energy_source"] == "counter"
        if layers:
            assert abs(out["measured_sparsity"] - 0.5) <= 0.01


# ------------------------------------------------------------------ the worker


def _worker(argv: list[str]) -> None:
    """``features RUN_DIR`` or ``train WAY SPARSITY FEATURES_RUN_DIR OUT.npz``.

    Mirrors the notebooks: threads and seed first, then build, then train.
    """
    from cielib import prune, train
    from cielib.keras import configure_threads, seed_everything

    configure_threads(1)
    seed_everything(SEED)
    from cielib import data

    mode = argv[0]
    if mode == "stream":
        return _stream(int(argv[1]), Path(argv[2]))
    ds, prep = _digits()
    model = tiny_frozen(upsample=UPSAMPLE)
    if mode == "features":  # streamed in chunks of 2 batches, as the features notebook
        base, _ = models.split_frozen_base(model)
        features.write_features(
            argv[1], base=base, prep=prep, x_train=ds.x_train, y_train=ds.y_train,
            x_test=ds.x_test, y_test=ds.y_test, batch_size=BATCH,
            meta={"base_fingerprint": features.fingerprint(base), "batch_size": BATCH},
            chunk_bytes=2 * BATCH * 4 * int(np.prod(base.output_shape[1:])))
        return
    way, sparsity, feats_path, out = argv[1], float(argv[2]), argv[3], argv[4]
    if way == "whole":  # in-memory images, tf_keras' own array reading
        net = model
        x_tr, y_tr, x_val, y_val = data.validation_split(
            prep(ds.x_train), ds.y_train, fraction=0.1, seed=SEED)
    else:  # memory-mapped features, read as Rows
        base, net = models.split_frozen_base(model)
        feats = features.load_features(feats_path, base=base, expect={"batch_size": BATCH})
        x_tr, y_tr, x_val, y_val = features.split_features(
            feats.x_train, feats.y_train, fraction=0.1, seed=SEED)
        assert isinstance(x_tr, Rows) and isinstance(feats.x_train, np.memmap)
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
    if way == "cached":  # as the train notebook: the head on the cached test features, checked
        head = net
        net = models.assemble(base, head, name="tiny")
        probs, predicted = features.predict_test(net, head, Rows(feats.x_test), prep(ds.x_test))
    else:
        probs, predicted = train.predict_proba(net, prep(ds.x_test)), {}
    np.savez(
        out,
        probs=probs,
        n_layers=len(net.layers),
        names=np.array([w.name for w in net.weights]),
        **{f"w{i}": w for i, w in enumerate(net.get_weights())},
        **{f"h_{c}": history[c].to_numpy() for c in ("loss", "accuracy", "val_loss", "val_accuracy")},
        sparsity=prune.measured_sparsity(net, layers="trainable"),
        head_sparsity=head_sparsity,
        predictions_from=predicted.get("predictions_from", "whole network"),
    )


def _stream(n: int, out: Path) -> None:
    """Stream the features of ``n`` synthetic 32x32x3 images, upsampled to 96x96 in the
    model (a 96x96x8 map per image, 288 KiB), in 8 MiB chunks; write the peak RSS."""
    import resource

    from cielib import data
    from cielib.keras import keras

    inp = keras.Input((32, 32, 3))
    x = keras.layers.Resizing(96, 96, name="input_resize")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv", trainable=False)(x)
    x = keras.layers.Flatten()(x)
    net = keras.Model(inp, keras.layers.Dense(10, activation="softmax", name="predictions")(x))
    base, _ = models.split_frozen_base(net)
    images = np.random.default_rng(0).integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % 10
    features.write_features(
        out, base=base, prep=lambda x: data.preprocess(x, input_shape=(32, 32, 3)),
        x_train=images, y_train=labels, x_test=images[:16], y_test=labels[:16],
        batch_size=BATCH, meta={}, chunk_bytes=8 * 2**20)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    (out / "peak.json").write_text(json.dumps({"peak_rss_bytes": peak}))


def _run(*args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "TF_ENABLE_ONEDNN_OPTS": os.environ.get("ONEDNN", "1")}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("features") / "run"
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
             for k in whole if k not in ("names", "predictions_from")
             and not np.array_equal(whole[k], cached[k])}
    assert not diffs, f"not bit-identical (max abs difference per array): {diffs}"
    # the cached run's test predictions came from the head on the cached test features
    # (checked against its whole network), and equal the whole-model run's bit for bit
    assert str(cached["predictions_from"]) == "cached features"


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
