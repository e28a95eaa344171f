"""Training: the optimizers a task may use, compile, fit with per-epoch timing, predict.

The paper trained VGG-19 with SGD and ResNet-50 with Adam on a cross-entropy loss;
both choices come from the profile. ``fit`` returns the per-epoch history as a
DataFrame (train/validation loss and accuracy, wall seconds), which the training
notebook saves and plots.

Importing this module does not import TensorFlow (:mod:`cielib.config` takes
:data:`OPTIMIZERS` from here).
"""

from __future__ import annotations

import functools
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cielib.checks import check_choice

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
def _epoch_timer_class() -> type:
    """A Keras callback class that records the wall time of every epoch (fit's own timing
    includes validation); built on first use so that importing this module does not
    import TensorFlow."""
    from cielib.keras import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

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
    timer = _epoch_timer_class()()
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
    """Class probabilities for ``x`` as float32 (n_images, n_classes)."""
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


def top1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of exact label matches."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shapes differ: {y_true.shape} vs {y_pred.shape}")
    return float(np.mean(y_true == y_pred)) if y_true.size else float("nan")
