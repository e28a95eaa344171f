"""Post-training quantization to TensorFlow Lite, and evaluation with LiteRT.

The paper (its Section on quantization and Table 5) converted a trained VGG-19 to
float16 and to dynamic-range int8 and gave up on full-integer int8 for lack of a
working recipe. This module converts with all three, plus the unquantized ``float32``
reference every ratio is taken against; what each technique is (converter settings,
what its flatbuffer must hold, TensorFlow's documented benefits) is an entry of the
registry in :mod:`cielib.compression`. A ``full_int8`` model takes and gives int8, so
callers quantize inputs with its own scale and zero point (:class:`TFLiteClassifier`
does this).

Converter route: ``tf.lite.TFLiteConverter.from_keras_model`` works directly on the
``tf_keras`` (Keras 2) models :func:`cielib.models.build_model` returns, with
TensorFlow 2.21 and ``TF_USE_LEGACY_KERAS=1`` (the tests convert one), so no
SavedModel or concrete-function detour is needed.

Evaluation uses ``ai_edge_litert.interpreter.Interpreter`` only (``tf.lite.Interpreter``
is deprecated). LiteRT applies its default XNNPACK delegate on the CPU; ``num_threads``
is always passed explicitly (``None`` means 1, which is what ai-edge-litert 2.3.0
passes when it is not given) and recorded on the classifier; ``xnnpack=False`` turns
the delegate off to compare with LiteRT's builtin kernels.

Only conversion (:mod:`cielib.tflite_convert`, whose :func:`convert`, :func:`convert_all`
and :func:`one_saved_model` this module re-exports) imports TensorFlow (lazily, through
:mod:`cielib.keras`):
inspecting, verifying and running a ``.tflite`` file needs only LiteRT, so analysis
code that reads quantized models from the run store stays light. Reading the
flatbuffer itself (:func:`inspect`) lives in :mod:`cielib.tflite_file`.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from cielib import compression, tflite_file
from cielib.checks import check_int, check_positive_int
from cielib.compression import DOCUMENTED_SOURCE, DYNAMIC_MIN_ELEMENTS
from cielib.tflite_convert import check_images, convert, convert_all, one_saved_model
from cielib.tflite_file import inspect

__all__ = [
    "DOCUMENTED",
    "DOCUMENTED_SOURCE",
    "DYNAMIC_MIN_ELEMENTS",
    "REFERENCE_TECHNIQUE",
    "TECHNIQUES",
    "QuantizationError",
    "TFLiteClassifier",
    "convert",
    "convert_all",
    "inspect",
    "latency",
    "one_saved_model",
    "verify",
]

def __getattr__(name: str) -> Any:
    """``TECHNIQUES``, ``REFERENCE_TECHNIQUE`` and ``DOCUMENTED``, read from the technique
    registry (:mod:`cielib.compression`) when asked, so that they include techniques
    registered after this module was imported."""
    if name == "TECHNIQUES":
        return compression.names()
    if name == "REFERENCE_TECHNIQUE":
        return compression.reference().name
    if name == "DOCUMENTED":
        return {t.name: dict(t.documented) for t in compression.techniques() if t.documented}
    raise AttributeError(f"module 'cielib.quantize' has no attribute {name!r}")


class QuantizationError(RuntimeError):
    """The converted flatbuffer is not quantized the way the technique asks."""


def verify(tflite_bytes: bytes, technique: str) -> dict[str, Any]:
    """Check that a flatbuffer is quantized the way ``technique`` asks.

    A converter setting that silently does nothing would otherwise pass for a
    quantized model and its accuracy would be the float model's. The rules are the
    technique's registry entry (``weights``, ``min_elements``, ``biases``, ``io``), on
    the conv/dense weight tensors found by :func:`inspect`; for the built-in ones:

    * ``float32``: every weight float32; input and output float32.
    * ``float16``: every weight float16; input and output float32.
    * ``dynamic_int8``: every weight with at least :data:`DYNAMIC_MIN_ELEMENTS`
      elements int8 (smaller ones may stay float32, as the converter leaves them),
      at least one int8 weight, no float16; input and output float32.
    * ``full_int8``: every weight int8, every bias int32; input and output int8.

    Args:
        tflite_bytes: A ``.tflite`` flatbuffer.
        technique: A registered technique (:func:`cielib.compression.names`).

    Returns:
        ``{"technique", "weight_dtypes": {dtype: count}, "bias_dtypes": {...},
        "n_weight_tensors", "weight_bytes", "input_dtype", "output_dtype"}``.

    Raises:
        ValueError: unknown technique; TypeError/ValueError: not a flatbuffer.
        QuantizationError: the model does not match the technique (the message says
            which tensors are wrong and what was expected).
    """
    tech = compression.get(technique)
    data = tflite_file.check_bytes(tflite_bytes)
    parsed = tflite_file.read_model(data)
    table = tflite_file.inspect(data)
    weights = table[table["role"] == "weights"]
    biases = table[table["role"] == "bias"]
    input_dtype, output_dtype = tflite_file.io_dtypes(parsed)
    summary = {
        "technique": technique,
        "weight_dtypes": dict(sorted(Counter(weights["dtype"]).items())),
        "bias_dtypes": dict(sorted(Counter(biases["dtype"]).items())),
        "n_weight_tensors": int(len(weights)),
        "weight_bytes": int(weights["nbytes"].sum()),
        "input_dtype": input_dtype,
        "output_dtype": output_dtype,
    }
    problems: list[str] = []

    def bad(frame: pd.DataFrame, expected: str, what: str = "weight") -> None:
        wrong = frame[frame["dtype"] != expected]
        if len(wrong):
            shown = ", ".join(f"{n!r} ({d})" for n, d in zip(wrong["name"][:5], wrong["dtype"][:5]))
            more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
            problems.append(f"{len(wrong)} {what} tensor(s) are not {expected}: {shown}{more}")

    io_expected = tech.io
    if len(weights) == 0:
        problems.append("no conv/dense weight tensors found")
    if tech.min_elements:
        bad(weights[weights["size"] >= tech.min_elements], tech.weights)
        others = weights[~weights["dtype"].isin([tech.weights, "float32"])]
        if len(others):
            problems.append(
                f"{len(others)} weight tensor(s) are neither {tech.weights} nor float32: "
                f"{sorted(set(others['dtype']))}"
            )
        if len(weights) and not (weights["dtype"] == tech.weights).any():
            problems.append(
                f"no weight tensor is {tech.weights} (the converter skips tensors with fewer "
                f"than {tech.min_elements} elements; is every layer that small?)"
            )
    else:
        bad(weights, tech.weights)
    if tech.biases:
        bad(biases, tech.biases, what="bias")
    if input_dtype != io_expected:
        problems.append(f"input is {input_dtype}, expected {io_expected}")
    if output_dtype != io_expected:
        problems.append(f"output is {output_dtype}, expected {io_expected}")
    if problems:
        raise QuantizationError(
            f"model is not quantized as {technique!r} asks (weights: "
            f"{summary['weight_dtypes']}): " + "; ".join(problems)
        )
    return summary


# ------------------------------------------------------------------ inference


def _quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Float -> integer as TFLite's QUANTIZE op does: round half away from zero, clip."""
    info = np.iinfo(dtype)
    v = x / np.float32(scale) + np.float32(zero_point)
    v = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(v, info.min, info.max).astype(dtype)


class TFLiteClassifier:
    """A LiteRT interpreter around a one-input, one-output TFLite classifier.

    It hides the two things that make TFLite models awkward to evaluate: the batch
    size is fixed until the input is resized (done here, re-allocating only when the
    batch size changes), and full-integer models take and give int8 (quantized and
    dequantized here with the model's own scale and zero point).

    Args:
        tflite_bytes: A ``.tflite`` flatbuffer with one image input and one output.
        num_threads: CPU threads for the interpreter. ``None`` means 1, what
            ai-edge-litert 2.3.0 uses when it is not given; passed explicitly so the
            recorded number is the one used.
        xnnpack: ``True`` (LiteRT's default) lets the default XNNPACK delegate run
            the ops it supports; ``False`` runs LiteRT's builtin kernels only
            (``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``), to see how much
            of a speed difference comes from the delegate.

    Attributes:
        num_threads: CPU threads given to the interpreter (``None`` became 1).
        xnnpack: Whether the default XNNPACK delegate was allowed.
        input_dtype, output_dtype: NumPy dtypes of the model's input and output.
        input_scale_zero_point, output_scale_zero_point: ``(scale, zero_point)`` of an
            integer input/output, else ``None``.
        input_shape: Shape of one image, ``(H, W, C)``.
        n_classes: Length of the output rows.
    """

    def __init__(
        self, tflite_bytes: bytes, *, num_threads: int | None = None, xnnpack: bool = True
    ):
        data = tflite_file.check_bytes(tflite_bytes)
        if num_threads is None:
            num_threads = 1
        num_threads = check_positive_int("num_threads", num_threads)
        if not isinstance(xnnpack, bool):
            raise ValueError(f"xnnpack must be True or False, got {xnnpack!r}")
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.num_threads = num_threads
        self.xnnpack = xnnpack
        resolver = (
            OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        self._interpreter = Interpreter(
            model_content=data, num_threads=num_threads, experimental_op_resolver_type=resolver
        )
        ins = self._interpreter.get_input_details()
        outs = self._interpreter.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise ValueError(
                f"TFLiteClassifier needs one input and one output, model has "
                f"{len(ins)} and {len(outs)}"
            )
        self._in, self._out = ins[0], outs[0]
        self.input_dtype = np.dtype(self._in["dtype"])
        self.output_dtype = np.dtype(self._out["dtype"])
        self.input_shape = tuple(int(d) for d in self._in["shape"][1:])
        self.n_classes = int(self._out["shape"][-1])
        self.input_scale_zero_point = self._scale_zero_point(self._in)
        self.output_scale_zero_point = self._scale_zero_point(self._out)
        self._batch: int | None = None

    @staticmethod
    def _scale_zero_point(details: dict[str, Any]) -> tuple[float, int] | None:
        if not np.issubdtype(np.dtype(details["dtype"]), np.integer):
            return None
        scale, zero_point = details["quantization"]
        if not scale:
            raise ValueError(f"integer tensor {details['name']!r} has no quantization scale")
        return float(scale), int(zero_point)

    @property
    def interpreter(self):
        """The underlying ``ai_edge_litert`` interpreter (for low-level checks)."""
        return self._interpreter

    @property
    def input_index(self) -> int:
        return int(self._in["index"])

    @property
    def output_index(self) -> int:
        return int(self._out["index"])

    def prepare(self, x: np.ndarray) -> None:
        """Set one batch as the model input (resizing and quantizing as needed).

        Resizing re-allocates every tensor (and re-plans the XNNPACK delegate), so it
        happens only when the batch size differs from the previous call.
        """
        x = check_images(x, self.input_shape, "x")
        n = len(x)
        if n == 0:
            raise ValueError("cannot run an empty batch")
        if n != self._batch:
            self._interpreter.resize_tensor_input(self.input_index, [n, *self.input_shape])
            self._interpreter.allocate_tensors()
            self._batch = n
        if self.input_scale_zero_point is not None:
            scale, zero_point = self.input_scale_zero_point
            x = _quantize(x, scale, zero_point, self.input_dtype)
        self._interpreter.set_tensor(self.input_index, np.ascontiguousarray(x))

    def invoke(self) -> None:
        """Run the model on the batch set by :meth:`prepare`."""
        self._interpreter.invoke()

    def output(self, *, renormalize: bool = True) -> np.ndarray:
        """The last invocation's output as float32 probabilities (see predict_proba)."""
        out = self._interpreter.get_tensor(self.output_index)
        if self.output_scale_zero_point is None:
            return out.astype(np.float32, copy=False)
        scale, zero_point = self.output_scale_zero_point
        probs = (out.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
        if renormalize:
            sums = probs.sum(axis=1, keepdims=True)
            probs = np.divide(probs, sums, out=np.full_like(probs, 1.0 / probs.shape[1]),
                              where=sums > 0)
        return probs

    def predict_proba(
        self, x: np.ndarray, *, batch_size: int = 256, renormalize: bool = True
    ) -> np.ndarray:
        """Class probabilities for preprocessed float images, ``(n, n_classes)`` float32.

        Args:
            x: Images preprocessed like the Keras model's inputs (float,
                ``(n, *input_shape)``); int8 models get them quantized with their own
                input scale and zero point (rounding half away from zero and clipping,
                as TFLite's QUANTIZE op does).
            batch_size: Images per invocation; the last batch may be smaller.
            renormalize: For an integer output only: divide each dequantized row by
                its sum. An int8 softmax has steps of 1/256, so its rows can miss 1 by
                up to about ``n_classes / 512`` (0.02 for 10 classes), more than the
                1e-2 :func:`cielib.evaluate.summary_metrics` accepts. Dividing by a
                positive row sum keeps every ranking, so top-1 and top-5 do not
                change (an all-zero row, impossible for a softmax, would become
                uniform). Float outputs are returned as they are.

        Returns:
            float32 array whose rows are probabilities.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        x = check_images(x, self.input_shape, "x")
        chunks = []
        for start in range(0, len(x), batch_size):
            self.prepare(x[start:start + batch_size])
            self.invoke()
            chunks.append(self.output(renormalize=renormalize).copy())
        if not chunks:
            return np.empty((0, self.n_classes), dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)


def latency(
    classifier: TFLiteClassifier,
    x: np.ndarray,
    *,
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 20,
) -> dict[str, Any]:
    """Time ``invoke()`` alone on one batch of ``batch_size`` images.

    The input is set (and quantized) once beforehand, so only the model runs inside
    the timer; warm-up invocations are discarded (the first ones pay for memory
    planning and delegate set-up).

    Args:
        classifier: The model to time.
        x: At least ``batch_size`` preprocessed images; the first ``batch_size`` are used.
        batch_size: Images per invocation (1 = latency, large = throughput).
        warmup: Untimed invocations first (>= 0).
        repeats: Timed invocations (>= 1).

    Returns:
        ``{"batch_size", "num_threads", "warmup", "repeats", "median_s", "min_s",
        "max_s", "images_per_s", "cpu_median_s"}``: wall seconds per invocation
        (``time.perf_counter``), ``images_per_s = batch_size / median_s``, and the
        median process CPU seconds per invocation (read just outside the wall-clock
        window so it does not inflate it). With one thread, wall time well above CPU
        time means other work on the machine disturbed the timing. With more threads
        Linux may not yet have counted the worker threads' time in such short
        windows, so there it is only a lower bound.
    """
    if not isinstance(classifier, TFLiteClassifier):
        raise TypeError(f"classifier must be a TFLiteClassifier, got {type(classifier).__name__}")
    batch_size = check_positive_int("batch_size", batch_size)
    repeats = check_positive_int("repeats", repeats)
    warmup = check_int("warmup", warmup, minimum=0)
    x = check_images(x, classifier.input_shape, "x")
    if len(x) < batch_size:
        raise ValueError(f"x has {len(x)} images, fewer than batch_size={batch_size}")
    classifier.prepare(x[:batch_size])
    for _ in range(warmup):
        classifier.invoke()
    times, cpu = [], []
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        classifier.invoke()
        t1 = time.perf_counter()
        cpu.append(time.process_time() - c0)
        times.append(t1 - t0)
    median = statistics.median(times)
    return {
        "batch_size": batch_size,
        "num_threads": classifier.num_threads,
        "warmup": int(warmup),
        "repeats": repeats,
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "images_per_s": batch_size / median if median > 0 else float("inf"),
        "cpu_median_s": statistics.median(cpu),
    }


def speed(classifier: TFLiteClassifier, x: np.ndarray, *, batch_size: int = 256,
          budget_s: float = 10.0) -> dict[str, Any]:
    """Latency (batch of 1) and throughput (a batch of ``batch_size``), as runs record them.

    The throughput batches are timed 10 times after 2 warm-ups, or fewer (never under 3
    after 1 warm-up) when the batch-1 latency says that would take more than
    ``budget_s``: a VGG-19 batch of 256 takes seconds on one CPU thread, and twelve of
    them per technique made up half of a paper-smoke quantize run. Small models are
    timed exactly as before.

    Returns:
        ``{"latency_b1_ms", "throughput_ips", "speed_threads", "speed_repeats"}``:
        median milliseconds of one batch-1 ``invoke()``, images per second at the large
        batch, the threads, and how many large batches were timed.
    """
    b1 = latency(classifier, x, batch_size=1, warmup=5, repeats=50)
    batch_s = b1["median_s"] * batch_size  # a pessimistic guess: batching only helps
    repeats = int(min(10, max(3, budget_s // max(batch_s, 1e-9))))
    warmup = 2 if repeats == 10 else 1
    bn = latency(classifier, x, batch_size=batch_size, warmup=warmup, repeats=repeats)
    return {"latency_b1_ms": b1["median_s"] * 1e3, "throughput_ips": bn["images_per_s"],
            "speed_threads": b1["num_threads"], "speed_repeats": repeats}
