"""Rows of an array read a batch at a time by ``fit`` and ``predict``: large inputs stay on disk.

The feature cache (:mod:`cielib.features`) can be larger than memory (VGG-19's
activations of CIFAR at 224x224 are 6.0 GB); it is memory-mapped, and a training run
selects its rows (its training or validation split) as :class:`Rows`, which
``tf_keras`` reads through a data adapter registered by :func:`use_rows_reader`.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Rows", "use_rows_reader"]


class Rows:
    """Selected rows of an array (often a memory-mapped cache), read only when asked.

    ``fit``, ``evaluate`` and ``predict`` accept a ``Rows`` once :func:`use_rows_reader`
    has run (``cielib.train.fit`` calls it), and gather each batch's rows from it as they
    need them, so a training run never holds the cache in memory. ``np.asarray(rows)``
    copies the selection out, for small arrays and tests.

    Args:
        array: ``(N, ...)`` array, e.g. from :func:`load_features` (``np.memmap``).
        index: Row numbers to select, in order; ``None``: every row.
    """

    def __init__(self, array: np.ndarray, index: np.ndarray | None = None):
        if not isinstance(array, np.ndarray) or array.ndim < 1:
            raise ValueError(f"Rows needs an array (N, ...), got {type(array).__name__}")
        self.array = array
        self.index = (np.arange(len(array), dtype=np.int64) if index is None
                      else np.asarray(index, dtype=np.int64))
        if self.index.ndim != 1 or (len(self.index) and not (
                0 <= self.index.min() and self.index.max() < len(array))):
            raise ValueError(f"Rows: index must be 1-D row numbers below {len(array)}")

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.array.shape[1:])

    def __len__(self) -> int:
        return len(self.index)

    def select(self, index: np.ndarray) -> Rows:
        """The rows ``index`` of this selection (a new ``Rows`` of the same array)."""
        return Rows(self.array, self.index[np.asarray(index, dtype=np.int64)])

    def take(self, index: np.ndarray) -> np.ndarray:
        """Rows ``index`` of the selection, read into a float32 array."""
        return np.ascontiguousarray(self.array[self.index[index]], dtype=np.float32)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.take(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)


_READER: list[Any] = []  # the registered tf_keras data adapter, once per process


def use_rows_reader() -> None:
    """Let ``tf_keras``' ``fit``/``evaluate``/``predict`` read :class:`Rows` (idempotent).

    It registers a data adapter that is ``tf_keras``' own adapter for arrays
    (``TensorLikeDataAdapter``: the same epoch permutation, drawn by the same op, the
    same batches) except that a batch's rows are gathered from the ``Rows`` by a
    ``tf.numpy_function`` instead of from one tensor holding the whole array. So the
    head trains exactly as on an in-memory array, without loading the cache whole.
    """
    if _READER:
        return
    from cielib.keras import tf
    from tf_keras.src.engine import data_adapter

    class RowsAdapter(data_adapter.TensorLikeDataAdapter):
        @staticmethod
        def can_handle(x, y=None):
            return isinstance(x, Rows)

        def slice_inputs(self, indices_dataset, inputs):
            rows, rest = (inputs, ()) if isinstance(inputs, Rows) else (inputs[0], inputs[1:])
            row_shape = tuple(rows.shape[1:])

            def grab_rows(i):
                x = tf.numpy_function(rows.take, [i], tf.float32, stateful=False)
                x.set_shape((None, *row_shape))
                return x

            def grab_batch(i, rest):
                got = tuple(tf.gather(d, i, axis=0) if d is not None else d for d in rest)
                return (grab_rows(i), *got)

            if rest:
                dataset = tf.data.Dataset.zip(
                    (indices_dataset, tf.data.Dataset.from_tensors(tuple(rest)).repeat()))
                dataset = dataset.map(grab_batch, num_parallel_calls=tf.data.AUTOTUNE)
            else:  # predict: images only
                dataset = indices_dataset.map(grab_rows, num_parallel_calls=tf.data.AUTOTUNE)
            options = tf.data.Options()  # as tf_keras' own slice_inputs
            options.experimental_optimization.apply_default_optimizations = False
            if self._shuffle:
                options.experimental_external_state_policy = (
                    tf.data.experimental.ExternalStatePolicy.IGNORE)
            return dataset.with_options(options)

    data_adapter.ALL_ADAPTER_CLS.append(RowsAdapter)
    _READER.append(RowsAdapter)
