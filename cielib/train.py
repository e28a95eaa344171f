"""Training: the optimizers a task may use, what trains on what, compile, fit, predict.

The paper trained VGG-19 with SGD and ResNet-50 with Adam on a cross-entropy loss;
both choices come from the profile. :func:`inputs` decides what a run fits: the whole
network on its preprocessed images, or (with a features run) its head on the frozen
base's cached activations; :class:`Inputs` then gives back the whole network and its
test predictions either way, so the training notebook reads as one recipe. ``fit``
returns the per-epoch history as a DataFrame (train/validation loss and accuracy, wall
seconds), which the training notebook saves and plots.

Importing this module does not import TensorFlow (:mod:`cielib.config` takes
:data:`OPTIMIZERS` from here).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cielib import data, features, models
from cielib.checks import check_choice
from cielib.rows import Rows, use_readers

#: The optimizers a task may train with (the paper: SGD for VGG-19, Adam for ResNet-50).
#: :mod:`cielib.config` checks profiles against this list, as it does against
#: :data:`cielib.models.MODELS` and :data:`cielib.data.DATASETS`.
OPTIMIZERS = ("sgd", "adam")


def make_optimizer(name: str, *, learning_rate: float, momentum: float = 0.0) -> Any:
    """A fresh Keras 2 optimizer (``sgd`` with optional momentum, or ``adam``)."""
    from cielib.keras import keras  # lazy: importing this module stays TensorFlow-free

    check_choice(name, OPTIMIZERS, what="optimizer")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}")
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=momentum)
    if momentum:
        raise ValueError("momentum applies to sgd only; adam has its own moments")
    return keras.optimizers.Adam(learning_rate=learning_rate)


def compile_model(model: Any, *, optimizer: str, learning_rate: float, momentum: float = 0.0) -> Any:
    """Compile with sparse categorical cross-entropy on softmax outputs and accuracy."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate=learning_rate, momentum=momentum),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@functools.cache
def epoch_timer_class() -> type:
    """A Keras callback class that records the wall time of every epoch (fit's own timing
    includes validation); built on first use so that importing this module does not
    import TensorFlow."""
    from cielib.keras import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self.started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self.started)

    return EpochTimer


def fit(
    model: Any,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    x_val: np.ndarray,
    y_val: np.ndarray,
    epochs: int,
    batch_size: int,
    callbacks: Sequence[Any] = (),
    verbose: int = 0,
) -> pd.DataFrame:
    """Train a compiled model; return one row per epoch.

    Columns: ``epoch`` (1-based), ``loss``, ``accuracy``, ``val_loss``,
    ``val_accuracy``, ``seconds`` (wall time of the epoch, validation included).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError("images and labels differ in length")
    if len(x_val) == 0:
        raise ValueError("a validation set is required (validation_fraction > 0)")
    use_readers()  # arrays as tf_keras reads them, without tf.data's autotuning wait; Rows
    timer = epoch_timer_class()()
    hist = model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[timer, *callbacks],
        verbose=verbose,
    )
    df = pd.DataFrame(hist.history)
    df.insert(0, "epoch", np.arange(1, len(df) + 1))
    df["seconds"] = timer.seconds[: len(df)]
    return df


def predict_proba(model: Any, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities for ``x`` (an array or :class:`cielib.rows.Rows`) as float32
    (n_images, n_classes)."""
    use_readers()
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def top1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of exact label matches."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shapes differ: {y_true.shape} vs {y_pred.shape}")
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")


# ------------------------------------------------------------ what a run trains on


@dataclass
class Inputs:
    """What a training run fits, and how to get the whole network back.

    Attributes:
        net: The model ``fit`` trains: the whole network, or its head when the frozen
            base's activations are cached (the head's layers are the network's own).
        x_train, y_train, x_val, y_val: Its training and validation inputs: preprocessed
            images, or :class:`cielib.rows.Rows` of the memory-mapped cache.
        prep: The model's preprocessing of ``uint8`` images.
        base: The frozen base when training on the cache, else ``None``.
        cache: The features run's :class:`cielib.features.Features`, else ``None``.
    """

    net: Any
    x_train: Any
    y_train: np.ndarray
    x_val: Any
    y_val: np.ndarray
    prep: Callable[[np.ndarray], np.ndarray]
    base: Any = None
    cache: features.Features | None = None
    head: Any = None

    @property
    def source(self) -> str:
        """What is trained on, in words."""
        if self.cache is None:
            return "preprocessed images"
        return f"the base's cached activations {self.cache.shape}"

    def whole(self, trained: Any) -> Any:
        """The whole network from the trained (stripped) ``net``: the network itself,
        or the base with the trained head on top (what is saved and quantized)."""
        if self.base is None:
            return trained
        self.head = trained
        return models.assemble(self.base, trained)

    def predict_test(self, net: Any, x_test: np.ndarray, y_test: np.ndarray
                     ) -> tuple[np.ndarray, dict[str, Any]]:
        """Test probabilities of the whole network ``net`` and where they came from.

        With the cache, the trained head predicts the cached test activations and the
        whole network must agree bit for bit on a first batch
        (:func:`cielib.features.predict_test`).
        """
        if self.cache is None:
            return predict_proba(net, self.prep(x_test)), {"predictions_from": "whole network"}
        if self.head is None:
            raise ValueError("call whole(trained head) before predict_test")
        if not np.array_equal(self.cache.y_test, y_test):
            raise ValueError("the features run's test labels differ from the dataset's")
        return features.predict_test(net, self.head, Rows(self.cache.x_test), self.prep(x_test))


def inputs(net: Any, dataset: data.Dataset, prep: Callable[[np.ndarray], np.ndarray], *,
           validation_fraction: float, seed: int, batch_size: int,
           features_dir: str | os.PathLike | None = None) -> Inputs:
    """What a training run fits: the whole ``net`` on images, or its head on the cache.

    The validation split is drawn with the run's seed either way
    (:func:`cielib.data.validation_split`), so both see the same examples in the same
    order. With ``features_dir`` (a features run of the same base: its fingerprint and
    batch size are checked) the network is split into its frozen base and its head,
    and the head trains on the cached activations, read from disk batch by batch.
    """
    if not features_dir:
        x_tr, y_tr, x_val, y_val = data.validation_split(
            dataset.x_train, dataset.y_train, fraction=validation_fraction, seed=seed)
        return Inputs(net, prep(x_tr), y_tr, prep(x_val), y_val, prep)
    base, head = models.split_frozen_base(net)
    cache = features.load_features(features_dir, base=base, expect={"batch_size": batch_size})
    x_tr, y_tr, x_val, y_val = features.split_features(
        cache.x_train, cache.y_train, fraction=validation_fraction, seed=seed)
    return Inputs(head, x_tr, y_tr, x_val, y_val, prep, base=base, cache=cache)
