"""Tests for cielib.models: shapes, frozen bases, weight loading, argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from cielib import models
from cielib.keras import keras

QUICK = ["vgg_small", "resnet_small"]
PAPER = ["vgg19", "resnet50"]
# Width of the base's output feature vector at 32x32x3 (VGG-19: 1x1x512 flattened;
# ResNet-50: 2048 channels after global average pooling).
BASE_FEATURES = {"vgg19": 512, "resnet50": 2048}


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    yield
    keras.backend.clear_session()


def _dense_params(n_in: int, units: list[int]) -> int:
    total = 0
    for n_out in units:
        total += n_in * n_out + n_out
        n_in = n_out
    return total


def _assert_softmax(model, input_shape, n_classes):
    x = np.random.default_rng(0).random((4, *input_shape), dtype=np.float32)
    p = model.predict(x, verbose=0)
    assert p.shape == (4, n_classes)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert model.layers[-1].name == "predictions"


# ----------------------------------------------------------------- registry


def test_registry_lists_all_models_with_consistent_specs():
    assert models.available_models() == sorted(QUICK + PAPER)
    for name in QUICK:
        spec = models.get_spec(name)
        assert spec.preprocessing == "unit"
        assert spec.default_input_shape is None
        assert not spec.supports_imagenet
    for name in PAPER:
        spec = models.get_spec(name)
        assert spec.preprocessing == "caffe"
        assert spec.default_input_shape == (32, 32, 3)
        assert spec.min_input_size == 32
        assert spec.supports_imagenet


def test_unknown_name_is_rejected_with_the_allowed_names():
    with pytest.raises(ValueError, match=r"'alexnet'.*vgg_small"):
        models.get_spec("alexnet")
    with pytest.raises(ValueError, match="'alexnet'"):
        models.build_model("alexnet", input_shape=(28, 28, 1), n_classes=10)


# ----------------------------------------------------------------- quick models


@pytest.mark.parametrize("name", QUICK)
@pytest.mark.parametrize("input_shape", [(28, 28, 1), (8, 8, 1), (32, 32, 3)])
def test_quick_models_output_probabilities(name, input_shape):
    model = models.build_model(name, input_shape=input_shape, n_classes=7, seed=0)
    _assert_softmax(model, input_shape, 7)
    assert models.count_params(model)["trainable"] > 0


@pytest.mark.parametrize("name", QUICK)
def test_seed_makes_quick_models_reproducible(name):
    def weights(seed):
        m = models.build_model(name, input_shape=(8, 8, 1), n_classes=3, seed=seed)
        return m.get_weights()

    a, b, c = weights(1), weights(1), weights(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_quick_model_options_change_the_architecture():
    narrow = models.build_model("vgg_small", input_shape=(28, 28, 1), n_classes=10, width=8)
    wide = models.build_model("vgg_small", input_shape=(28, 28, 1), n_classes=10)
    assert models.count_params(narrow)["total"] < models.count_params(wide)["total"]
    deep = models.build_model(
        "resnet_small", input_shape=(8, 8, 1), n_classes=10, blocks_per_stage=2
    )
    assert sum("_block2_conv1" in layer.name for layer in deep.layers) == 3
    three = models.build_model(
        "vgg_small", input_shape=(8, 8, 1), n_classes=10, blocks=3, dense_units=(32, 16)
    )
    assert [layer.name for layer in three.layers if layer.name.startswith("fc")] == [
        "fc1",
        "fc1_dropout",
        "fc2",
        "fc2_dropout",
    ]


def test_vgg_small_has_no_batchnorm_and_resnet_small_does():
    vgg = models.build_model("vgg_small", input_shape=(28, 28, 1), n_classes=10)
    res = models.build_model("resnet_small", input_shape=(28, 28, 1), n_classes=10)
    bn = keras.layers.BatchNormalization
    assert not any(isinstance(layer, bn) for layer in vgg.layers)
    assert any(isinstance(layer, bn) for layer in res.layers)


def test_count_params_matches_keras():
    model = models.build_model("vgg_small", input_shape=(8, 8, 1), n_classes=10)
    counts = models.count_params(model)
    assert counts == {
        "trainable": model.count_params(),
        "non_trainable": 0,
        "total": model.count_params(),
    }
    res = models.build_model("resnet_small", input_shape=(8, 8, 1), n_classes=10)
    counts = models.count_params(res)
    assert counts["non_trainable"] > 0  # BatchNorm moving statistics
    assert counts["total"] == res.count_params()


# ----------------------------------------------------------------- paper models


@pytest.mark.parametrize("name", PAPER)
def test_paper_models_have_frozen_base_and_three_new_dense_layers(name):
    model = models.build_model(name, input_shape=(32, 32, 3), n_classes=10)
    _assert_softmax(model, (32, 32, 3), 10)
    base = models.base_model(model)
    base_names = {layer.name for layer in base.layers}
    assert len(base_names) > 20
    assert all(not model.get_layer(n).trainable for n in base_names)
    head = [layer for layer in model.layers if layer.name not in base_names]
    assert [layer.name for layer in head if layer.trainable_weights] == [
        "fc1",
        "fc2",
        "predictions",
    ]
    expected = _dense_params(BASE_FEATURES[name], [512, 256, 10])
    counts = models.count_params(model)
    assert counts["trainable"] == expected
    assert counts["non_trainable"] == models.count_params(base)["total"]


def test_paper_model_defaults_and_head_options():
    model = models.build_model(
        "vgg19", input_shape=None, n_classes=100, dense_units=(64, 32), dropout=0.5
    )
    assert model.input_shape == (None, 32, 32, 3)
    assert models.count_params(model)["trainable"] == _dense_params(512, [64, 32, 100])
    assert sum(isinstance(x, keras.layers.Dropout) for x in model.layers) == 2


def _weights_equal(a, b) -> bool:
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


def _check_weight_files_round_trip(name, tmp_path):
    original = models.build_model(name, input_shape=(32, 32, 3), n_classes=10, seed=1)
    base_file = tmp_path / f"{name}_base.h5"
    full_file = tmp_path / f"{name}_full.h5"
    models.base_model(original).save_weights(str(base_file))
    original.save_weights(str(full_file))

    from_base = models.build_model(
        name, input_shape=(32, 32, 3), n_classes=10, seed=2, weights=base_file
    )
    assert _weights_equal(models.base_model(from_base), models.base_model(original))
    # Only the base came from the file: the new head is freshly initialised.
    assert not np.array_equal(
        from_base.get_layer("fc1").get_weights()[0],
        original.get_layer("fc1").get_weights()[0],
    )

    from_full = models.build_model(
        name, input_shape=(32, 32, 3), n_classes=10, seed=2, weights=str(full_file)
    )
    assert _weights_equal(from_full, original)

    # A full-model file for another head shape fits neither way: clear error.
    with pytest.raises(ValueError, match=r"full-model.*does not fit"):
        models.build_model(name, input_shape=(32, 32, 3), n_classes=5, weights=full_file)


def test_vgg19_weights_from_files(tmp_path):
    _check_weight_files_round_trip("vgg19", tmp_path)


@pytest.mark.slow
def test_resnet50_weights_from_files(tmp_path):
    _check_weight_files_round_trip("resnet50", tmp_path)


def test_imagenet_weights_missing_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    expected = tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    with pytest.raises(FileNotFoundError) as info:
        models.build_model("vgg19", input_shape=(32, 32, 3), n_classes=10, weights="imagenet")
    assert str(expected) in str(info.value)
    assert "weights=" in str(info.value)  # says how to provide it
    with pytest.raises(FileNotFoundError, match="resnet50_weights_tf_dim_ordering"):
        models.build_model("resnet50", input_shape=None, n_classes=10, weights="imagenet")


def test_imagenet_weights_are_read_from_the_cache(tmp_path, monkeypatch):
    # A stand-in "ImageNet" file in the exact cache location and notop layout.
    donor = models.build_model("vgg19", input_shape=(32, 32, 3), n_classes=10)
    cache = tmp_path / "models"
    cache.mkdir()
    models.base_model(donor).save_weights(
        str(cache / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    )
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    model = models.build_model("vgg19", input_shape=(32, 32, 3), n_classes=10, weights="imagenet")
    assert _weights_equal(models.base_model(model), models.base_model(donor))
    assert models.count_params(model)["trainable"] == _dense_params(512, [512, 256, 10])


# ----------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("name", "kwargs", "pattern"),
    [
        ("vgg_small", {"input_shape": (28, 28, 1), "n_classes": 1}, r"n_classes.*1"),
        ("vgg_small", {"input_shape": (28, 28, 1), "n_classes": 2.5}, r"n_classes.*2\.5"),
        ("vgg_small", {"input_shape": (28, 28), "n_classes": 10}, r"\(28, 28\)"),
        ("vgg_small", {"input_shape": (28, 0, 1), "n_classes": 10}, r"\(28, 0, 1\)"),
        ("vgg_small", {"input_shape": None, "n_classes": 10}, "input_shape is required"),
        ("resnet_small", {"input_shape": (4, 4, 1), "n_classes": 10}, r"\(4, 4, 1\).*>= 8"),
        ("vgg19", {"input_shape": (16, 16, 3), "n_classes": 10}, r"\(16, 16, 3\).*>= 32"),
        ("vgg_small", {"input_shape": (28, 28, 1), "n_classes": 10, "weights": "imagenet"},
         r"'imagenet'"),
        ("resnet_small", {"input_shape": (28, 28, 1), "n_classes": 10, "weights": "x.h5"},
         r"'x\.h5'"),
        ("vgg19", {"input_shape": None, "n_classes": 10, "weights": 3}, r"got 3"),
        ("vgg19", {"input_shape": None, "n_classes": 10, "weights": "imagenet21k"},
         r"'imagenet21k'"),
        ("vgg19", {"input_shape": (32, 32, 1), "n_classes": 10, "weights": "imagenet"},
         r"3 input channels.*\(32, 32, 1\)"),
        ("vgg_small", {"input_shape": (28, 28, 1), "n_classes": 10, "dropout": 1.5},
         r"dropout.*1\.5"),
        ("vgg_small", {"input_shape": (28, 28, 1), "n_classes": 10, "dense_units": -4},
         r"dense_units.*-4"),
        ("resnet_small", {"input_shape": (28, 28, 1), "n_classes": 10, "dropout": 0.5},
         r"dropout=0\.5"),
        ("vgg_small", {"input_shape": (28, 28, 1), "n_classes": 10, "depth": 3},
         r"'depth'.*allowed.*width"),
        ("vgg_small", {"input_shape": (8, 8, 1), "n_classes": 10, "blocks": 4},
         r"blocks=4"),
        ("vgg_small", {"input_shape": (8, 8, 1), "n_classes": 10, "width": 0}, r"width.*0"),
        ("vgg_small", {"input_shape": (8, 8, 1), "n_classes": 10, "seed": -1}, r"seed.*-1"),
    ],
)
def test_bad_arguments_are_named(name, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        models.build_model(name, **kwargs)


def test_bad_weight_files(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        models.build_model("vgg19", input_shape=None, n_classes=10, weights=missing)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a Keras HDF5 weights file"):
        models.build_model("vgg19", input_shape=None, n_classes=10, weights=garbage)
    # A notop-looking file (no 'predictions' layer) that is not a VGG-19 base.
    small = models.build_model("resnet_small", input_shape=(32, 32, 3), n_classes=10)
    other = tmp_path / "other.h5"
    keras.Model(small.inputs, small.get_layer("avg_pool").output).save_weights(str(other))
    with pytest.raises(ValueError, match=r"notop base.*does not fit this 'vgg19'"):
        models.build_model("vgg19", input_shape=None, n_classes=10, weights=other)


def test_base_model_needs_a_paper_model():
    model = models.build_model("vgg_small", input_shape=(8, 8, 1), n_classes=10)
    with pytest.raises(ValueError, match="no pretrained base"):
        models.base_model(model)


def test_input_size_upsamples_inside_the_model_and_only_for_pretrained_bases():
    from cielib import data

    net = models.build_model("resnet50", input_shape=None, n_classes=3, seed=0, input_size=64)
    assert net.input_shape == (None, 32, 32, 3)  # the data stay 32x32
    assert net.get_layer(models.INPUT_RESIZE).output_shape == (None, 64, 64, 3)
    assert net.get_layer("conv5_block3_out").output_shape == (None, 2, 2, 2048)  # 64 / 32
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    probs = net.predict(data.preprocess(x, input_shape=(32, 32, 3), scaling="caffe"), verbose=0)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    same = models.build_model("resnet50", input_shape=None, n_classes=3, seed=0, input_size=32)
    assert models.INPUT_RESIZE not in [layer.name for layer in same.layers]  # nothing to resize
    with pytest.raises(ValueError, match="input_size=64 upsamples the input of a pretrained base"):
        models.build_model("vgg_small", input_shape=(8, 8, 1), n_classes=3, input_size=64)
    with pytest.raises(ValueError, match="input_size must be 0 .* or an int >= 32"):
        models.build_model("vgg19", input_shape=None, n_classes=3, input_size=16)


def test_build_for_gives_the_model_and_its_preprocessing():
    from cielib import data

    ds = data.load_dataset("digits")
    net, prep = models.build_for("vgg_small", ds)
    x = prep(ds.x_test[:4])
    assert x.shape == (4, *ds.image_shape) and x.dtype == np.float32
    assert net.input_shape[1:] == ds.image_shape and net.output_shape == (None, ds.n_classes)
    assert np.array_equal(x, data.preprocess(ds.x_test[:4], input_shape=ds.image_shape,
                                             scaling="unit"))
