"""Training: same seed -> identical predictions on CPU; history has what the plots need."""

from __future__ import annotations

import numpy as np
import pytest

from cielib import data, models, train
from cielib.keras import seed_everything


def _train_digits(seed: int, epochs: int = 2):
    ds = data.load_dataset("digits")
    x_tr, y_tr, x_val, y_val = data.validation_split(ds.x_train, ds.y_train, fraction=0.1, seed=seed)
    spec = models.get_spec("vgg_small")
    prep = lambda x: data.preprocess(x, input_shape=ds.image_shape, scaling=spec.preprocessing)  # noqa: E731
    seed_everything(seed)
    net = models.build_model("vgg_small", input_shape=ds.image_shape, n_classes=ds.n_classes)
    train.compile_model(net, optimizer="sgd", learning_rate=0.05, momentum=0.9)
    hist = train.fit(net, prep(x_tr), y_tr, x_val=prep(x_val), y_val=y_val, epochs=epochs, batch_size=64)
    return hist, train.predict_proba(net, prep(ds.x_test)), ds


def test_same_seed_identical_predictions_different_seed_differs():
    h0, p0, ds = _train_digits(0)
    _, p0b, _ = _train_digits(0)
    _, p1, _ = _train_digits(1)
    assert np.array_equal(p0, p0b), "same seed must give bit-identical predictions"
    assert not np.array_equal(p0, p1)
    assert list(h0.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    assert list(h0["epoch"]) == [1, 2] and (h0["seconds"] > 0).all()
    assert train.top1(ds.y_test, p0.argmax(1)) > 0.5  # digits is easy: far above chance


def test_optimizers():
    assert type(train.make_optimizer("sgd", learning_rate=0.1, momentum=0.9)).__name__ == "SGD"
    assert type(train.make_optimizer("adam", learning_rate=0.001)).__name__ == "Adam"
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'.*sgd, adam"):
        train.make_optimizer("rmsprop", learning_rate=0.1)
    with pytest.raises(ValueError, match="learning_rate must be > 0, got 0"):
        train.make_optimizer("sgd", learning_rate=0)
    with pytest.raises(ValueError, match="momentum applies to sgd only"):
        train.make_optimizer("adam", learning_rate=0.1, momentum=0.9)


def test_fit_rejects_bad_input():
    net = models.build_model("vgg_small", input_shape=(8, 8, 1), n_classes=3)
    train.compile_model(net, optimizer="sgd", learning_rate=0.1)
    x = np.zeros((4, 8, 8, 1), np.float32)
    y = np.zeros(4, np.int64)
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        train.fit(net, x, y, x_val=x, y_val=y, epochs=0, batch_size=2)
    with pytest.raises(ValueError, match="validation set is required"):
        train.fit(net, x, y, x_val=x[:0], y_val=y[:0], epochs=1, batch_size=2)
    with pytest.raises(ValueError, match="differ in length"):
        train.fit(net, x, y[:3], x_val=x, y_val=y, epochs=1, batch_size=2)


def test_top1():
    assert train.top1(np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])) == 0.75
    with pytest.raises(ValueError, match="shapes differ"):
        train.top1(np.array([0, 1]), np.array([0]))
