"""The one place that imports TensorFlow.

tensorflow-model-optimization supports only Keras 2 (``tf_keras``), while TensorFlow
2.21 defaults to Keras 3; which one ``tf.keras`` is depends on the environment at the
moment TensorFlow is first imported. This module sets ``TF_USE_LEGACY_KERAS=1`` at
import time (cheaply, without importing TensorFlow) and hands out ``tf``, ``keras``
(that is ``tf_keras``) and ``tfmot`` lazily, so that modules which never train a model
stay fast to import. Never ``import keras`` anywhere: that is always Keras 3.
"""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ["TF_USE_LEGACY_KERAS"] = "1"
#: The one kernel choice of every run: TensorFlow's oneDNN CPU kernels, on. TensorFlow
#: turns them on by default on AVX-512 Intel CPUs and leaves them off on AVX2 AMD ones,
#: so without this the same profile would compute with different kernels (and give
#: different numbers) on the two machine types; with them a frozen base's activations
#: are batch-position-invariant (the feature cache is exact) and training is ~1.5x faster
#: on the AMD machines. Every training and features run records it in its parameters.
ONEDNN = True
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1" if ONEDNN else "0")
# Quieten TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_LAZY = ("tf", "keras", "tfmot")
_cache: dict[str, Any] = {}


class KerasVersionError(RuntimeError):
    """TensorFlow was imported before cielib and bound ``tf.keras`` to Keras 3."""


def _load(name: str) -> Any:
    if name in _cache:
        return _cache[name]
    already = "tensorflow" in sys.modules
    import tensorflow as tf
    import tf_keras

    if tf.keras.Model is not tf_keras.Model:
        hint = (
            " TensorFlow was imported before cielib, so tf.keras is Keras 3."
            if already
            else ""
        )
        raise KerasVersionError(
            "tf.keras must be Keras 2 (tf_keras) for tensorflow-model-optimization."
            + hint
            + " Import cielib (or set TF_USE_LEGACY_KERAS=1) before TensorFlow."
        )
    _cache["tf"] = tf
    _cache["keras"] = tf_keras
    if name == "tfmot":
        with _keras3_refused():
            import tensorflow_model_optimization as tfmot

        _cache["tfmot"] = tfmot
    return _cache[name]


class _Keras3Refused:
    """An import hook that answers ``import keras`` (Keras 3) with ImportError."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname == "keras" or fullname.startswith("keras."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (cielib: Keras 3 not imported)",
                                      name=fullname)
        return None


class _keras3_refused:
    """While tfmot is imported, ``import keras`` fails at once instead of importing Keras 3.

    tfmot's pruning registry tries ``from keras.src.engine import base_layer``, which
    imports all of Keras 3 (a second of start-up in every process that prunes) and then
    fails with ImportError all the same, since Keras 3 has no ``engine``; tfmot falls
    back as it does then. Failing at once gives tfmot exactly that fallback, without
    the second (tests/test_keras_discipline.py checks both). If Keras 3 is already
    imported, nothing changes.
    """

    def __enter__(self) -> None:
        self.hook = None if "keras" in sys.modules else _Keras3Refused()
        if self.hook is not None:
            sys.meta_path.insert(0, self.hook)

    def __exit__(self, *exc: Any) -> None:
        if self.hook is not None:
            sys.meta_path.remove(self.hook)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _load(name)
    raise AttributeError(f"module 'cielib.keras' has no attribute {name!r}")


def use_onednn(enabled: bool = ONEDNN) -> None:
    """Set TensorFlow's oneDNN CPU kernels on or off (call before TensorFlow is imported).

    It changes results: TensorFlow's default convolutions on some CPUs (AVX2 without
    AVX-512, where oneDNN is off by default) round an image's activations differently
    depending on its position in a batch; oneDNN's do not, and the frozen-base feature
    cache is exact only then. Every profile runs with :data:`ONEDNN` (on), recorded as
    a run parameter; ``False`` is for trying TensorFlow's other kernels by hand.

    Raises:
        RuntimeError: TensorFlow is already imported with the other setting.
    """
    want = "1" if enabled else "0"
    if "tensorflow" in sys.modules and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != want:
        raise RuntimeError(f"TensorFlow is already imported without TF_ENABLE_ONEDNN_OPTS={want}, "
                           "which this run needs: restart the kernel")
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = want


def configure_threads(threads: int | None) -> None:
    """Size TensorFlow's thread pools (call before any op runs).

    The profile fixes every run's thread count and it is part of the run's identity:
    on a CPU the number of intra-op threads changes the order of reductions and so the
    results. ``None`` or 0 keeps TensorFlow's default (all cores), for use by hand.

    Raises:
        RuntimeError: TensorFlow already runs with other thread counts, which would
            silently give results that do not belong to the run's id.
    """
    if not threads:
        return
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    tf = _load("tf")
    inter = max(1, min(2, threads))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:
        # Already initialised (e.g. a second call in the same kernel): fine if equal.
        now = (tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads())
        if now != (threads, inter):
            raise RuntimeError(f"TensorFlow already runs with (intra, inter) threads {now}; "
                               f"this run needs {(threads, inter)}: restart the kernel") from None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and switch on deterministic ops.

    With this, the same seed gives bit-identical predictions on the CPU.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    tf = _load("tf")
    keras = _load("keras")
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
