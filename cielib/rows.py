"""Rows of an array read a batch at a time by ``fit`` and ``predict``: large inputs stay on disk.

The feature cache (:mod:`cielib.features`) can be larger than memory (VGG-19's
activations of CIFAR at 224x224 are 6.0 GB); it is memory-mapped, and a training run
selects its rows (its training or validation split) as :class:`Rows`, which
``tf_keras`` reads through a data adapter registered by :func:`use_readers` (which also
reads plain arrays, as ``tf_keras`` does, without tf.data's autotuning wait).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Rows", "use_readers"]


class Rows:
    """Selected rows of an array (often a memory-mapped cache), read only when asked.

    ``fit``, ``evaluate`` and ``predict`` accept a ``Rows`` once :func:`use_readers`
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


_READERS: list[Any] = []  # the registered tf_keras data adapters, once per process


def use_readers() -> None:
    """Let ``tf_keras``' ``fit``/``evaluate``/``predict`` read arrays without a wait, and
    :class:`Rows` (idempotent; ``cielib.train`` calls it before every ``fit`` and ``predict``).

    It registers two data adapters in place of ``tf_keras``' adapter for arrays
    (``TensorLikeDataAdapter``):

    * ``ArrayAdapter``: that adapter exactly (the same epoch permutation, drawn by the
      same op, the same batches, in the same order) with tf.data's autotuning off. The
      autotuner runs a background thread per iterator, and destroying the iterator
      (when ``fit`` returns) waits for that thread's current sleep to end: measured in
      the quick profile's warm kernels, ``fit`` then returned up to 5 s after its last
      epoch, idle, in about one training run in seven. Autotuning only sizes buffers
      and thread counts of this in-memory pipeline; element order is deterministic
      either way, so results do not change (the quick profile's predictions are
      bit-identical with and without it).
    * ``RowsAdapter``: the same, except that a batch's rows are gathered from the
      ``Rows`` by a ``tf.numpy_function`` instead of from one tensor holding the whole
      array. So the head trains exactly as on an in-memory array, without loading the
      cache whole.
    """
    if _READERS:
        return
    from cielib.keras import tf
    from tf_keras.src.engine import data_adapter

    builtin = data_adapter.TensorLikeDataAdapter

    class ArrayAdapter(builtin):
        def get_dataset(self):
            options = tf.data.Options()
            options.autotune.enabled = False
            return super().get_dataset().with_options(options)

    class RowsAdapter(ArrayAdapter):
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

    adapters = data_adapter.ALL_ADAPTER_CLS
    adapters[adapters.index(builtin)] = ArrayAdapter  # in its place: adapters must not overlap
    adapters.append(RowsAdapter)
    _READERS.extend([ArrayAdapter, RowsAdapter])
