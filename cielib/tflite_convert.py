"""Converting a Keras 2 classifier to TensorFlow Lite: the part of quantization that needs
TensorFlow (imported lazily, through :mod:`cielib.keras`).

:mod:`cielib.quantize` re-exports :func:`convert`, :func:`convert_all` and
:func:`one_saved_model`; the technique settings are the registry's
(:mod:`cielib.compression`). Converter route: ``tf.lite.TFLiteConverter.from_keras_model``
works directly on the ``tf_keras`` models :func:`cielib.models.build_model` returns, with
TensorFlow 2.21 and ``TF_USE_LEGACY_KERAS=1``.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from cielib import compression
from cielib.checks import check_positive_int

__all__ = ["check_images", "convert", "convert_all", "one_saved_model"]


def check_images(images: Any, input_shape: tuple[int, ...], what: str) -> np.ndarray:
    """``images`` as float32 if they are preprocessed images of ``input_shape``; else ValueError."""
    x = np.asarray(images)
    if x.ndim != 1 + len(input_shape) or tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"{what} must have shape (n, {', '.join(map(str, input_shape))}) to match "
            f"the model input, got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"{what} must be preprocessed floating-point images (cielib.data.preprocess),"
            f" got dtype {x.dtype}"
        )
    return x.astype(np.float32, copy=False)


# ------------------------------------------------------------------ convert


def convert(
    model: Any,
    technique: str,
    *,
    representative_images: np.ndarray | None = None,
    num_calibration: int = 200,
) -> bytes:
    """Convert a Keras 2 (``tf_keras``) classifier to a TFLite flatbuffer.

    The converter is set up by the technique's registry entry
    (:class:`cielib.compression.Technique`); the built-in ones follow TensorFlow's
    post-training quantization guide (:data:`DOCUMENTED_SOURCE`):

    * ``float32``: no optimization (the reference).
    * ``float16``: ``optimizations=[DEFAULT]``, ``supported_types=[tf.float16]``.
    * ``dynamic_int8``: ``optimizations=[DEFAULT]`` and nothing else.
    * ``full_int8``: ``optimizations=[DEFAULT]``, a representative dataset (the first
      ``num_calibration`` images, one at a time, as the guide does),
      ``supported_ops=[TFLITE_BUILTINS_INT8]`` so conversion fails rather than
      silently keeping float ops, and int8 input and output.

    Several techniques of one model: :func:`convert_all` (the same bytes, faster).

    Args:
        model: A built ``tf_keras`` model (e.g. from :func:`cielib.models.build_model`)
            with one image input.
        technique: A registered technique (:func:`cielib.compression.names`).
        representative_images: Calibration images for a calibrating technique
            (``full_int8``), already
            preprocessed exactly like the model's inputs (float32, ``(n, H, W, C)``).
            Training images, never test images. Ignored by other techniques.
        num_calibration: How many of them to calibrate on (all of them if fewer).

    Returns:
        The ``.tflite`` flatbuffer.

    Raises:
        ValueError: unknown technique, ``full_int8`` without representative images,
            or images that do not match the model input. All checked before
            converting.
    """
    return convert_all(model, [technique], representative_images=representative_images,
                       num_calibration=num_calibration)[technique]


def convert_all(
    model: Any,
    techniques: Sequence[str],
    *,
    representative_images: np.ndarray | None = None,
    num_calibration: int = 200,
) -> dict[str, bytes]:
    """Convert one model with several techniques: ``{technique: flatbuffer}``, in order.

    Each flatbuffer is byte for byte what :func:`convert` gives (a test checks it), but
    the model is written as a SavedModel once, not once per technique. TensorFlow's
    Keras converter saves the model to a temporary SavedModel and converts that; the
    saving (tracing every layer's call) is most of a conversion's time, 70-90% for the
    quick profile's models, and gives the same SavedModel for the same model each time.
    So while these conversions run, the converter's save is replaced by a copy of the
    first one (:func:`one_saved_model`); everything else is the converter's own route.

    Args:
        model: As for :func:`convert`.
        techniques: Registered techniques, each at most once.
        representative_images: As for :func:`convert`; needed if any technique
            calibrates.
        num_calibration: As for :func:`convert`.

    Raises:
        ValueError: as :func:`convert`, or a technique named twice; all checked before
            any conversion.
    """
    techs = [compression.get(t) for t in techniques]
    repeated = sorted(t for t, n in Counter(techniques).items() if n > 1)
    if repeated:
        raise ValueError(f"techniques named more than once: {repeated}")
    num_calibration = check_positive_int("num_calibration", num_calibration)
    calibration = None
    calibrating = [t.name for t in techs if t.calibrates]
    if calibrating:
        if representative_images is None:
            raise ValueError(
                f"technique {calibrating[0]!r} needs representative_images (preprocessed "
                "float32 training images) to calibrate activation ranges"
            )
        input_shape = tuple(int(d) for d in model.input_shape[1:])
        calibration = check_images(representative_images, input_shape, "representative_images")
        if len(calibration) == 0:
            raise ValueError(f"representative_images is empty; {calibrating[0]} needs at least 1")
        if not np.isfinite(calibration[:num_calibration]).all():
            raise ValueError("representative_images contains NaN or infinite values")
        calibration = calibration[:num_calibration]

    from cielib.keras import tf  # lazy: only conversion needs TensorFlow

    out: dict[str, bytes] = {}
    with one_saved_model(model) if len(techs) > 1 else contextlib.nullcontext():
        for tech in techs:
            converter = tf.lite.TFLiteConverter.from_keras_model(model)
            tech.configure(converter, tf, calibration if tech.calibrates else None)
            with warnings.catch_warnings():
                # Harmless: the converter expects input statistics for int8 inputs but
                # takes them from calibration instead.
                warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
                out[tech.name] = bytes(converter.convert())
    return out


@contextlib.contextmanager
def one_saved_model(model: Any) -> Iterator[dict[str, int]]:
    """While active, the TFLite Keras converter saves ``model`` once and copies it after.

    TensorFlow's ``TFLiteKerasModelConverterV2`` writes the model into a fresh temporary
    directory with ``tensorflow.python.saved_model.save.save`` (as the module attribute
    ``_save`` of ``tensorflow.lite.python.lite``) on every ``convert()``. This replaces
    that attribute with a stand-in that saves ``model`` (with the converter's options)
    into a directory of its own the first time and copies that directory into the
    converter's each time; any other object is saved as before. Where TensorFlow no
    longer has the attribute, nothing is replaced and conversions save as usual.

    Yields:
        ``{"saved": n, "copied": m}``, updated as conversions run (for tests and
        benchmarks).
    """
    import shutil
    import tempfile

    from cielib.keras import tf

    counts = {"saved": 0, "copied": 0}
    # the module that defines TensorFlow's converter (tensorflow.lite.python.lite)
    lite = importlib.import_module(tf.lite.TFLiteConverter.__module__)
    real = getattr(lite, "_save", None)
    if real is None or not callable(getattr(real, "save", None)):
        yield counts
        return
    first = tempfile.mkdtemp(prefix="cielib-savedmodel-")
    done: list[Any] = []  # the options the first save used

    class _SaveOnce:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def save(self, obj: Any, export_dir: str, signatures: Any = None, options: Any = None) -> Any:
            if obj is not model or signatures is not None:
                return real.save(obj, export_dir, signatures=signatures, options=options)
            if not done:
                real.save(obj, first, options=options)
                counts["saved"] += 1
                done.append(options)
            elif _options_key(options) != _options_key(done[0]):
                return real.save(obj, export_dir, options=options)
            shutil.copytree(first, export_dir, dirs_exist_ok=True)
            counts["copied"] += 1
            return None

    lite._save = _SaveOnce()
    try:
        yield counts
    finally:
        lite._save = real
        shutil.rmtree(first, ignore_errors=True)


def _options_key(options: Any) -> Any:
    """What a ``SaveOptions`` asks for, comparable (it has ``__slots__``, no ``__eq__``)."""
    if options is None:
        return None
    names = getattr(type(options), "__slots__", None) or sorted(vars(options))
    return tuple((name, repr(getattr(options, name, None))) for name in names)
