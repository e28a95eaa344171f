"""The Keras callback that runs a :class:`Sampler` during ``fit`` and times epochs and steps.

The callback class subclasses Keras, so it is built on first use: importing
:mod:`cielib.hardware` must not import TensorFlow.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from cielib.hardware.sampler import Sampler


log = logging.getLogger(__package__)  # one logger, ``cielib.hardware``, for the whole package

_CALLBACK_CLASS: type | None = None


def _callback_class() -> type:
    """Build the callback class on first use: subclassing Keras needs TensorFlow."""
    global _CALLBACK_CLASS
    if _CALLBACK_CLASS is not None:
        return _CALLBACK_CLASS
    from cielib.keras import keras

    class ProfileCallback(keras.callbacks.Callback):
        """Starts/stops a :class:`Sampler` around ``fit`` and times epochs and steps.

        Epoch seconds include validation (as ``train.fit``'s ``seconds`` do);
        ``train_seconds`` span the first training step's start to the last one's end.
        ``images_per_s = batch_size * steps / seconds``; the last batch of an epoch
        may be partial, so this over-counts by less than one batch per epoch.
        """

        def __init__(self, sampler: Sampler | None, batch_size: int | None) -> None:
            super().__init__()
            # The step hooks read no metric values; saying so spares Keras from
            # converting (and so synchronising) the batch logs to NumPy every step.
            self._supports_tf_logs = True
            self.sampler = sampler
            self.batch_size = batch_size
            self._started_sampler = False
            self._rows: list[dict[str, Any]] = []
            self._steps: list[float] = []
            self._epoch_steps: list[float] = []
            self._epoch = 0
            self._t_epoch = self._t_step = 0.0
            self._t_first = self._t_last = None

        @property
        def step_times(self) -> np.ndarray:
            """Every training step's duration in seconds, in order, over all epochs."""
            return np.asarray(self._steps, dtype=float)

        def epoch_table(self) -> pd.DataFrame:
            """One row per finished epoch: ``epoch`` (1-based), ``seconds``,
            ``steps``, ``median_step_s``, ``images_per_s``, ``train_seconds``."""
            cols = ["epoch", "seconds", "steps", "median_step_s", "images_per_s", "train_seconds"]
            return pd.DataFrame(self._rows, columns=cols)

        def on_train_begin(self, logs: dict | None = None) -> None:
            self._rows, self._steps = [], []
            if self.batch_size is None:
                bs = (self.params or {}).get("batch_size")
                self.batch_size = int(bs) if bs else None
            if self.sampler is not None and not self.sampler.running:
                self.sampler.start()  # raises before training if already used
                self._started_sampler = True

        def on_train_end(self, logs: dict | None = None) -> None:
            if self._started_sampler:
                self.sampler.stop()
                self._started_sampler = False

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._epoch = epoch + 1
            self._epoch_steps = []
            self._t_first = self._t_last = None
            self._t_epoch = time.perf_counter()

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            self._t_step = time.perf_counter()
            if self._t_first is None:
                self._t_first = self._t_step

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self._t_last = time.perf_counter()
            self._epoch_steps.append(self._t_last - self._t_step)
            if self.batch_size is None and logs and logs.get("size"):
                self.batch_size = int(logs["size"])  # older Keras reports it per batch

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            seconds = time.perf_counter() - self._t_epoch
            steps = len(self._epoch_steps)
            self._steps.extend(self._epoch_steps)
            if self.batch_size is None and steps:
                log.warning("hardware callback: batch size unknown; pass keras_callback(batch_size=...)")
            images = self.batch_size * steps if self.batch_size else float("nan")
            self._rows.append({
                "epoch": self._epoch,
                "seconds": seconds,
                "steps": steps,
                "median_step_s": float(np.median(self._epoch_steps)) if steps else float("nan"),
                "images_per_s": images / seconds if seconds > 0 else float("nan"),
                "train_seconds": (self._t_last - self._t_first) if steps else float("nan"),
            })

    _CALLBACK_CLASS = ProfileCallback
    return ProfileCallback


def keras_callback(sampler: Sampler | None = None, *, batch_size: int | None = None) -> Any:
    """A Keras callback that samples during ``fit`` and times epochs and steps.

    The sampler (if given and not already running) starts at ``on_train_begin`` and
    stops at ``on_train_end``. Keras skips ``on_train_end`` when ``fit`` raises; to be
    sure the sampler stops then, wrap ``fit`` in ``with sampler:`` (the callback
    leaves a running sampler alone). Afterwards ``callback.epoch_table()`` gives per-epoch
    seconds, steps, median step time and images/s, and ``callback.step_times`` every
    step's duration (the first step of the first epoch includes graph tracing; on a
    GPU, step times are what the host sees: dispatch plus any wait for the device).

    Args:
        sampler: What to run during ``fit``; ``None`` only times.
        batch_size: Images per step, for images/s. Keras 2.x does not pass it to
            callbacks, so give it unless the logs or params carry it.
    """
    if sampler is not None and not isinstance(sampler, Sampler):
        raise TypeError(f"sampler must be a cielib.hardware.Sampler or None, got {type(sampler).__name__}")
    bad_batch = isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
    if batch_size is not None and bad_batch:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return _callback_class()(sampler, batch_size)
