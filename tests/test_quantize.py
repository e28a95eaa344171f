"""Quantization: every technique converts, is what it claims, and keeps accuracy.

One tiny VGG-style model is trained once on scikit-learn digits (module fixture) and
converted to every technique. Accuracy tolerances (absolute top-1 on the digits test
set, 360 images, so one image is 0.0028):

* float32 TFLite vs Keras: <= 0.003 (the same float math, only op order differs);
* float16 and dynamic int8 vs float32 TFLite and vs Keras: <= 0.02;
* full int8 vs float32 TFLite and vs Keras: <= 0.05 (activations are int8 too).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from cielib import data, models, quantize, train
from cielib.keras import seed_everything
from cielib.sizes import compression_ratio

TOLERANCE = {"float32": 0.003, "float16": 0.02, "dynamic_int8": 0.02, "full_int8": 0.05}
INPUT_SHAPE = (8, 8, 1)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained():
    ds = data.load_dataset("digits")
    x_tr = data.preprocess(ds.x_train, input_shape=INPUT_SHAPE)
    x_te = data.preprocess(ds.x_test, input_shape=INPUT_SHAPE)
    seed_everything(0)
    net = models.build_model("vgg_small", input_shape=INPUT_SHAPE, n_classes=10, width=4)
    train.compile_model(net, optimizer="sgd", learning_rate=0.05, momentum=0.9)
    net.fit(x_tr, ds.y_train, epochs=3, batch_size=32, verbose=0)
    keras_probs = train.predict_proba(net, x_te)
    blobs = quantize.convert_all(net, quantize.TECHNIQUES, representative_images=x_tr,
                                 num_calibration=200)
    return {"net": net, "x_train": x_tr, "x_test": x_te, "y_test": ds.y_test,
            "keras_probs": keras_probs, "blobs": blobs}


def _top1(probs, y):
    return float(np.mean(probs.argmax(axis=1) == y))


# ------------------------------------------------------------------ conversion


@pytest.mark.parametrize("technique", quantize.TECHNIQUES)
def test_every_technique_converts_and_verifies(trained, technique):
    blob = trained["blobs"][technique]
    summary = quantize.verify(blob, technique)
    table = quantize.inspect(blob)
    weights = table[table["role"] == "weights"]
    biases = table[table["role"] == "bias"]
    # vgg_small: 4 convs + fc1 + predictions.
    assert len(weights) == 6 and set(weights["op"]) == {"CONV_2D", "FULLY_CONNECTED"}
    assert summary["n_weight_tensors"] == 6
    by_name = dict(zip(weights["name"], weights["dtype"]))
    if technique == "float32":
        assert set(table["dtype"]) <= {"float32", "int32"}
        assert set(weights["dtype"]) == {"float32"} and set(biases["dtype"]) == {"float32"}
        assert (summary["input_dtype"], summary["output_dtype"]) == ("float32", "float32")
    elif technique == "float16":
        assert set(weights["dtype"]) == {"float16"} and set(biases["dtype"]) == {"float16"}
        assert (summary["input_dtype"], summary["output_dtype"]) == ("float32", "float32")
    elif technique == "dynamic_int8":
        # Only tensors with >= 1024 elements are quantized: fc1 (32x64) here.
        big = weights["size"] >= quantize.DYNAMIC_MIN_ELEMENTS
        assert set(weights[big]["dtype"]) == {"int8"}
        assert set(weights[~big]["dtype"]) == {"float32"}
        assert [n for n, d in by_name.items() if d == "int8"] == ["vgg_small/fc1/MatMul"]
        assert (weights[big]["n_scales"] == weights[big]["shape"].map(lambda s: s[0])).all()
        assert (summary["input_dtype"], summary["output_dtype"]) == ("float32", "float32")
    else:
        assert set(weights["dtype"]) == {"int8"} and set(biases["dtype"]) == {"int32"}
        # Per-channel scales: one per output channel (first dimension in TFLite).
        assert (weights["n_scales"] == weights["shape"].map(lambda s: s[0])).all()
        assert (summary["input_dtype"], summary["output_dtype"]) == ("int8", "int8")
    assert sum(summary["weight_dtypes"].values()) == 6


def test_inspect_columns_and_sizes(trained):
    table = quantize.inspect(trained["blobs"]["float32"])
    assert list(table.columns) == ["subgraph", "index", "name", "role", "op", "dtype",
                                   "shape", "size", "nbytes", "n_scales"]
    fc1 = table[table["name"] == "vgg_small/fc1/MatMul"].iloc[0]
    assert fc1["shape"] == (64, 32) and fc1["size"] == 2048 and fc1["nbytes"] == 2048 * 4
    # Every trainable parameter of the Keras model is a constant of the flatbuffer.
    n_params = models.count_params(trained["net"])["total"]
    assert table[table["role"] != "other"]["size"].sum() == n_params


# ------------------------------------------------------------------ accuracy


def test_accuracy_within_tolerance(trained):
    y = trained["y_test"]
    keras_acc = _top1(trained["keras_probs"], y)
    # 3 epochs of a 4k-parameter net reach about 0.73 (chance is 0.1).
    assert keras_acc > 0.6, f"the fixture model should be trained, got {keras_acc}"
    probs = {t: quantize.TFLiteClassifier(b).predict_proba(trained["x_test"])
             for t, b in trained["blobs"].items()}
    acc = {t: _top1(p, y) for t, p in probs.items()}
    np.testing.assert_allclose(probs["float32"], trained["keras_probs"], atol=1e-4)
    for technique, a in acc.items():
        print(f"{technique}: top-1 {a:.4f} (Keras {keras_acc:.4f})")
        assert abs(a - acc["float32"]) <= TOLERANCE[technique], (technique, acc, keras_acc)
        assert abs(a - keras_acc) <= TOLERANCE[technique], (technique, acc, keras_acc)
    for p in probs.values():
        assert p.dtype == np.float32 and p.shape == (len(y), 10)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)


# ------------------------------------------------------------------ int8 I/O


def test_int8_input_output_by_hand(trained):
    from ai_edge_litert.interpreter import Interpreter

    blob = trained["blobs"]["full_int8"]
    x = trained["x_test"][:50]
    clf = quantize.TFLiteClassifier(blob)
    assert clf.input_dtype == np.int8 and clf.output_dtype == np.int8
    in_scale, in_zp = clf.input_scale_zero_point
    out_scale, out_zp = clf.output_scale_zero_point
    assert in_scale > 0 and -128 <= in_zp <= 127
    # An int8 softmax output: 1/256 steps from -128, so 0..255/256.
    assert out_scale == pytest.approx(1 / 256) and out_zp == -128

    interp = Interpreter(model_content=blob)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert inp["quantization"] == (in_scale, in_zp)
    interp.resize_tensor_input(inp["index"], [len(x), *INPUT_SHAPE])
    interp.allocate_tensors()
    q = np.clip(np.round(x / in_scale + in_zp), -128, 127).astype(np.int8)
    interp.set_tensor(inp["index"], q)
    interp.invoke()
    raw = (interp.get_tensor(out["index"]).astype(np.float32) - out_zp) * out_scale

    np.testing.assert_array_equal(clf.predict_proba(x, renormalize=False), raw)
    # Dequantized rows miss 1 by at most n_classes half-steps: 10 / 512.
    assert np.abs(raw.sum(axis=1) - 1).max() <= 10 / 512
    probs = clf.predict_proba(x)
    np.testing.assert_allclose(probs, raw / raw.sum(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(probs.argmax(axis=1), raw.argmax(axis=1))


def test_int8_input_is_clipped():
    x = np.array([-1.0, 0.0, 128 / 255, 2.0], dtype=np.float32)
    q = quantize._quantize(x, 1 / 255, -128, np.dtype(np.int8))
    assert q.dtype == np.int8 and q.tolist() == [-128, -128, 0, 127]
    # Round half away from zero, as TFLite's QUANTIZE op does.
    assert quantize._quantize(np.array([0.5, -0.5, 1.5], np.float32), 1.0, 0,
                              np.dtype(np.int8)).tolist() == [1, -1, 2]


# ------------------------------------------------------------------ batching


@pytest.mark.parametrize("technique", quantize.TECHNIQUES)
def test_batched_equals_single(trained, technique):
    clf = quantize.TFLiteClassifier(trained["blobs"][technique])
    x = trained["x_test"][:150]  # 2 x 64 + a partial batch of 22
    one = clf.predict_proba(x, batch_size=1)
    batched = clf.predict_proba(x, batch_size=64)
    assert batched.shape == one.shape == (150, 10)
    np.testing.assert_allclose(batched, one, atol=1e-6)


def test_builtin_kernels_agree_with_xnnpack(trained):
    x = trained["x_test"][:100]
    pair = {}
    for technique in ("float32", "full_int8"):
        blob = trained["blobs"][technique]
        builtin = quantize.TFLiteClassifier(blob, xnnpack=False)
        assert builtin.xnnpack is False and quantize.TFLiteClassifier(blob).xnnpack is True
        pair[technique] = (builtin.predict_proba(x), quantize.TFLiteClassifier(blob).predict_proba(x))
    np.testing.assert_allclose(*pair["float32"], atol=1e-5)
    # Integer kernels requantize differently layer by layer; differences of a few
    # output steps (1/256) add up to ~0.04 on some images (measured), rarely more.
    a, b = pair["full_int8"]
    assert np.abs(a - b).max() <= 0.1
    assert np.mean(a.argmax(1) == b.argmax(1)) >= 0.95


def test_allocates_only_when_batch_size_changes(trained):
    clf = quantize.TFLiteClassifier(trained["blobs"]["float32"], num_threads=2)
    assert clf.num_threads == 2
    calls = []
    original = clf.interpreter.allocate_tensors
    clf.interpreter.allocate_tensors = lambda: (calls.append(1), original())[1]
    clf.predict_proba(trained["x_test"][:128], batch_size=32)
    assert len(calls) == 1
    clf.predict_proba(trained["x_test"][:128], batch_size=32)
    assert len(calls) == 1
    clf.predict_proba(trained["x_test"][:40], batch_size=32)  # 32 (kept), then 8
    assert len(calls) == 2
    clf.predict_proba(trained["x_test"][:40], batch_size=32)  # 32 again, then 8
    assert len(calls) == 4
    assert clf.predict_proba(trained["x_test"][:0]).shape == (0, 10)


def test_latency(trained):
    clf = quantize.TFLiteClassifier(trained["blobs"]["dynamic_int8"])
    assert clf.num_threads == 1  # None means LiteRT's default of 1, recorded
    res = quantize.latency(clf, trained["x_test"], batch_size=8, warmup=1, repeats=5)
    assert set(res) == {"batch_size", "num_threads", "warmup", "repeats", "median_s",
                        "min_s", "max_s", "images_per_s", "cpu_median_s"}
    assert res["batch_size"] == 8 and res["num_threads"] == 1 and res["repeats"] == 5
    assert 0 < res["min_s"] <= res["median_s"] <= res["max_s"]
    assert res["images_per_s"] == pytest.approx(8 / res["median_s"])
    with pytest.raises(ValueError, match="fewer than batch_size=500"):
        quantize.latency(clf, trained["x_test"], batch_size=500)
    with pytest.raises(ValueError, match="repeats must be a positive int, got 0"):
        quantize.latency(clf, trained["x_test"], repeats=0)


# ------------------------------------------------------------------ sizes


def _size_ratios(blobs):
    ref = len(blobs["float32"])
    return {t: compression_ratio(ref, len(b)) for t, b in blobs.items()}


def test_weight_bytes_shrink_by_the_documented_factor(trained):
    """The weights themselves shrink exactly 2x / 4x; the file less (fixed overhead)."""
    blobs = trained["blobs"]
    wb = {t: quantize.verify(b, t)["weight_bytes"] for t, b in blobs.items()}
    assert wb["float32"] / wb["float16"] == pytest.approx(2.0)
    assert wb["float32"] / wb["full_int8"] == pytest.approx(4.0)
    # Tiny model (3.8k params: 15 KB of weights in a 20 KB file), so the fixed
    # overhead shows: measured file ratios 1.39 (float16), 1.36 (dynamic: only fc1
    # is big enough to be quantized), 1.69 (full int8).
    ratios = _size_ratios(blobs)
    assert 1.2 <= ratios["float16"] <= 2.0
    assert 1.1 <= ratios["dynamic_int8"] <= 2.0
    assert 1.4 <= ratios["full_int8"] <= 4.0


def test_file_ratios_on_a_realistic_size_model():
    """vgg_small on 28x28 (~220k params): files ~2x / ~4x smaller, as documented."""
    net = models.build_model("vgg_small", input_shape=(28, 28, 1), n_classes=10,
                             dense_units=[128], seed=0)
    calib = np.random.default_rng(0).random((20, 28, 28, 1), dtype=np.float32)
    blobs = {t: quantize.convert(net, t, representative_images=calib) for t in quantize.TECHNIQUES}
    for t, b in blobs.items():
        quantize.verify(b, t)
    ratios = _size_ratios(blobs)
    # Measured: float16 1.99, dynamic int8 3.89, full int8 3.87.
    assert 1.6 <= ratios["float16"] <= 2.2
    assert 2.5 <= ratios["dynamic_int8"] <= 4.5
    assert 2.5 <= ratios["full_int8"] <= 4.5
    assert quantize.DOCUMENTED["float16"]["size_factor"] == 2.0


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("actual", "claimed", "message"),
    [
        ("float32", "dynamic_int8", "no weight tensor is int8"),
        ("float32", "full_int8", "input is float32, expected int8"),
        ("float32", "float16", "are not float16"),
        ("dynamic_int8", "float32", "1 weight tensor\\(s\\) are not float32: 'vgg_small/fc1/MatMul' \\(int8\\)"),
        ("float16", "dynamic_int8", "neither int8 nor float32"),
        ("full_int8", "dynamic_int8", "input is int8, expected float32"),
        ("dynamic_int8", "full_int8", "are not int8"),
    ],
)
def test_verify_rejects_mismatched_technique(trained, actual, claimed, message):
    with pytest.raises(quantize.QuantizationError, match=message) as err:
        quantize.verify(trained["blobs"][actual], claimed)
    assert f"not quantized as {claimed!r} asks" in str(err.value)


@pytest.fixture
def saves(monkeypatch):
    """Counts SavedModels written (the converter's save, and the one convert_all shares)."""
    from tensorflow.python.saved_model import save as save_module

    written = []
    real = save_module.save

    def counting(obj, export_dir, *args, **kwargs):
        written.append(export_dir)
        return real(obj, export_dir, *args, **kwargs)

    monkeypatch.setattr(save_module, "save", counting)
    return written


@pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")
def test_convert_all_is_tensorflows_converter_per_technique_saving_once(trained, saves):
    """Byte for byte what TensorFlow's Keras converter gives, one technique at a time
    (its own route, untouched), with the model saved once instead of once per technique."""
    from cielib import compression
    from cielib.keras import tf
    from tensorflow.lite.python import lite

    net, x = trained["net"], trained["x_train"]
    plain = {}
    for t in quantize.TECHNIQUES:
        converter = tf.lite.TFLiteConverter.from_keras_model(net)
        compression.get(t).configure(converter, tf, x[:200] if compression.get(t).calibrates else None)
        plain[t] = bytes(converter.convert())
    assert len(saves) == len(quantize.TECHNIQUES), "the converter saves on every convert()"
    shared = trained["blobs"]  # convert_all(net, every technique)
    assert list(shared) == list(quantize.TECHNIQUES)
    assert all(shared[t] == plain[t] for t in plain)
    saves.clear()
    real_save = lite._save
    two = quantize.convert_all(net, ["dynamic_int8", "float16"])
    assert len(saves) == 1 and two == {"dynamic_int8": plain["dynamic_int8"], "float16": plain["float16"]}
    assert lite._save is real_save, "the converter's own save is back"
    saves.clear()
    assert quantize.convert(net, "float32") == plain["float32"] and len(saves) == 1


def test_one_saved_model_leaves_other_models_and_errors_alone(trained, saves):
    from cielib.keras import keras
    from tensorflow.lite.python import lite

    net = trained["net"]
    other = keras.models.clone_model(net)
    real_save = lite._save
    with pytest.raises(RuntimeError, match="stop"):
        with quantize.one_saved_model(net) as counts:
            assert lite._save is not real_save
            quantize.convert(other, "float32")
            quantize.convert(other, "float16")
            assert len(saves) == 2 and counts == {"saved": 0, "copied": 0}, "another model: saved each time"
            raise RuntimeError("stop")
    assert lite._save is real_save


def test_bad_arguments(trained, saves):
    net, x = trained["net"], trained["x_train"]
    with pytest.raises(ValueError, match="'full_int8' needs representative_images"):
        quantize.convert(net, "full_int8")
    with pytest.raises(ValueError, match="unknown technique 'int4'; allowed: float32, float16, "
                                         "dynamic_int8, full_int8"):
        quantize.convert(net, "int4")
    with pytest.raises(ValueError, match="unknown technique"):
        quantize.verify(trained["blobs"]["float32"], "int4")
    with pytest.raises(ValueError, match=r"must have shape \(n, 8, 8, 1\).*got \(10, 8, 8\)"):
        quantize.convert(net, "full_int8", representative_images=x[:10, :, :, 0])
    with pytest.raises(ValueError, match="floating-point images.*uint8"):
        quantize.convert(net, "full_int8", representative_images=(x * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="num_calibration must be a positive int, got 0"):
        quantize.convert(net, "full_int8", representative_images=x, num_calibration=0)
    with pytest.raises(ValueError, match=r"techniques named more than once: \['float16'\]"):
        quantize.convert_all(net, ["float16", "float32", "float16"])
    with pytest.raises(ValueError, match="'full_int8' needs representative_images"):
        quantize.convert_all(net, ["float32", "full_int8"])
    assert saves == [], "bad input is refused before any conversion"
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        quantize.inspect(b"not a model at all")
    with pytest.raises(TypeError, match="must be bytes"):
        quantize.TFLiteClassifier("model.tflite")
    with pytest.raises(ValueError, match="num_threads must be a positive int, got 0"):
        quantize.TFLiteClassifier(trained["blobs"]["float32"], num_threads=0)
    clf = quantize.TFLiteClassifier(trained["blobs"]["float32"])
    with pytest.raises(ValueError, match=r"x must have shape \(n, 8, 8, 1\)"):
        clf.predict_proba(np.zeros((2, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        clf.predict_proba(x[:2], batch_size=0)


def test_documented_benefits_are_data():
    assert set(quantize.DOCUMENTED) == set(quantize.TECHNIQUES) - {"float32"}
    factors = {t: d["size_factor"] for t, d in quantize.DOCUMENTED.items()}
    assert factors == {"float16": 2.0, "dynamic_int8": 4.0, "full_int8": 4.0}
    assert quantize.DOCUMENTED["dynamic_int8"]["benefits"] == "4x smaller, 2x-3x speedup"
    assert (quantize.DOCUMENTED["dynamic_int8"]["speedup_low"],
            quantize.DOCUMENTED["dynamic_int8"]["speedup_high"]) == (2.0, 3.0)
    assert quantize.DOCUMENTED["full_int8"]["speedup_low"] == 3.0
    assert all(d["source"] == quantize.DOCUMENTED_SOURCE for d in quantize.DOCUMENTED.values())
    assert quantize.DOCUMENTED_SOURCE.startswith("https://www.tensorflow.org/lite/")


def test_evaluating_needs_no_tensorflow(trained, tmp_path):
    """Reading and running .tflite files imports LiteRT only, never TensorFlow."""
    path = tmp_path / "m.tflite"
    path.write_bytes(trained["blobs"]["full_int8"])
    np.save(tmp_path / "x.npy", trained["x_test"][:5])
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from cielib import quantize
        blob = open({str(path)!r}, "rb").read()
        quantize.verify(blob, "full_int8")
        p = quantize.TFLiteClassifier(blob).predict_proba(np.load({str(tmp_path / 'x.npy')!r}))
        assert p.shape == (5, 10), p.shape
        assert "tensorflow" not in sys.modules, "TensorFlow was imported"
        print("ok")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


@pytest.mark.parametrize("b1_s, repeats, warmup", [(1e-4, 10, 2), (0.004, 9, 1), (0.02, 3, 1)])
def test_speed_times_fewer_large_batches_for_a_slow_model(monkeypatch, b1_s, repeats, warmup):
    """A batch of 256 that takes seconds (VGG-19 on one thread) is timed 3 times, not 10;
    a small model's timing is unchanged (10 after 2 warm-ups)."""
    calls = []

    def fake_latency(classifier, x, *, batch_size, warmup, repeats):
        calls.append((batch_size, warmup, repeats))
        median = b1_s if batch_size == 1 else b1_s * batch_size * 0.7
        return {"median_s": median, "images_per_s": batch_size / median, "num_threads": 1}

    monkeypatch.setattr(quantize, "latency", fake_latency)
    out = quantize.speed(object(), np.zeros((256, 4, 4, 1), np.float32))
    assert calls == [(1, 5, 50), (256, warmup, repeats)]
    assert out["speed_repeats"] == repeats
    assert out["latency_b1_ms"] == pytest.approx(b1_s * 1e3)
