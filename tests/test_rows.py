"""How tf_keras reads training data once cielib.rows.use_readers has run.

Arrays: tf_keras' own adapter with tf.data's autotuning off (its background thread made
``fit`` return seconds late); the same batches in the same order, so the same training.
Rows of a memory-mapped cache: tests/test_features.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from cielib import train
from cielib.keras import keras, seed_everything
from cielib.rows import Rows, use_readers

data_adapter = pytest.importorskip("tf_keras.src.engine.data_adapter")


def _batches(adapter_cls, x, y, *, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    seed_everything(seed)
    adapter = adapter_cls(x, y, batch_size=16, epochs=2, shuffle=True)
    take = 2 * adapter.get_size()  # two epochs of an endless dataset
    return [(a.numpy(), b.numpy()) for a, b in adapter.get_dataset().take(take)]


def test_use_readers_replaces_the_array_adapter_once():
    use_readers()
    use_readers()
    adapters = data_adapter.ALL_ADAPTER_CLS
    x, y = np.zeros((10, 3), np.float32), np.zeros(10, np.int64)
    array_adapter = data_adapter.select_data_adapter(x, y)
    assert array_adapter is not data_adapter.TensorLikeDataAdapter
    assert issubclass(array_adapter, data_adapter.TensorLikeDataAdapter)
    assert data_adapter.TensorLikeDataAdapter not in adapters
    assert [a.__name__ for a in adapters if a.__module__ == "cielib.rows"] == [
        "ArrayAdapter", "RowsAdapter"], "registered once, the array adapter in tf_keras' place"
    assert data_adapter.select_data_adapter(Rows(x), y) is not array_adapter


def test_arrays_read_in_tf_keras_order_without_autotuning():
    use_readers()
    rng = np.random.default_rng(0)
    x = rng.random((70, 5), dtype=np.float32)  # 70 = 4 full batches of 16 and a partial one
    y = np.arange(70, dtype=np.int64)
    ours = data_adapter.select_data_adapter(x, y)
    builtin = data_adapter.TensorLikeDataAdapter
    got, want = _batches(ours, x, y, seed=3), _batches(builtin, x, y, seed=3)
    assert len(got) == len(want) == 10
    for (gx, gy), (wx, wy) in zip(got, want):
        assert np.array_equal(gx, wx) and np.array_equal(gy, wy)
    epoch1 = np.concatenate([b for _, b in got[:5]])
    assert sorted(epoch1) == list(range(70)) and list(epoch1) != list(range(70)), "a shuffled epoch"
    assert ours(x, y, batch_size=16).get_dataset().options().autotune.enabled is False
    assert builtin(x, y, batch_size=16).get_dataset().options().autotune.enabled is not False


def test_fit_with_the_readers_is_fit_with_tf_keras_adapter(monkeypatch):
    """Same seed, same weights, history and predictions, whichever adapter reads the arrays."""
    use_readers()
    rng = np.random.default_rng(1)
    x = rng.random((90, 6), dtype=np.float32)
    y = (np.arange(90) % 3).astype(np.int64)
    array_adapter = data_adapter.select_data_adapter(x, y)
    ours = list(data_adapter.ALL_ADAPTER_CLS)
    theirs = [data_adapter.TensorLikeDataAdapter if a is array_adapter else a for a in ours]
    results = []
    for adapters, reads in ((theirs, data_adapter.TensorLikeDataAdapter), (ours, array_adapter)):
        monkeypatch.setattr(data_adapter, "ALL_ADAPTER_CLS", adapters)
        assert data_adapter.select_data_adapter(x, y) is reads
        seed_everything(5)
        inp = keras.Input((6,))
        net = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8)(inp)))
        train.compile_model(net, optimizer="sgd", learning_rate=0.1, momentum=0.9)
        hist = train.fit(net, x[:72], y[:72], x_val=x[72:], y_val=y[72:], epochs=3, batch_size=16)
        results.append((net.get_weights(), hist["val_loss"].to_numpy(), train.predict_proba(net, x)))
    (w_a, h_a, p_a), (w_b, h_b, p_b) = results
    assert all(np.array_equal(a, b) for a, b in zip(w_a, w_b))
    assert np.array_equal(h_a, h_b) and np.array_equal(p_a, p_b)
