"""An exact cache of a frozen base's activations, streamed to disk, so only the head trains.

The paper froze its pretrained convolutional base ("I will obtain all of the
pre-trained convolutional layers with the parameters fixed (i.e. there will be no
changes to the weights and activation's)", Section IX) and trained three new dense
layers on top. A frozen base maps each image to the same activations at every step
of every epoch of every seed and sparsity, so computing them once and training the
head on them gives the same training at a fraction of the cost. What is saved,
evaluated and quantized afterwards is still the whole network
(:func:`cielib.models.assemble` puts base and trained head back together; the graph
surgery lives beside the models, in :mod:`cielib.models.surgery`).

This module owns the cache: computing it, its format on disk and reading it back.

Format: a features run directory holds one ``.npy`` file per array
(:data:`FEATURE_FILES`: ``x_train``, ``y_train``, ``x_test``, ``y_test``) and the
provenance in ``features.json``. The activations are float32, written chunk by chunk
(:func:`write_features`), so the features stage's memory stays bounded whatever the
number of images: at the paper's upsampled reading (224x224) VGG-19's flattened
7x7x512 activations of CIFAR's 60,000 images are 6.0 GB. They are read back memory-
mapped (:func:`load_features`) and trained on through :class:`cielib.rows.Rows`, a lazy
selection of rows that ``fit`` and ``predict`` read one batch at a time,
so no training run loads the cache whole. float16 would halve the files but round the
activations, and the head would no longer train on what the whole network computes;
the cache stays float32 and exact.

Bit for bit: ``tests/test_features.py`` trains a small frozen-base model both ways
(one thread, op determinism, shuffled ``fit``, fixed seed) and gets identical
histories, weights and predictions, dense and with the head pruned, provided the
base gives an image the same activations wherever it sits in a batch. The whole
model sees each image at a new position of a new shuffled batch every epoch. With
TensorFlow's default CPU convolutions on an AVX2 machine (oneDNN off) that was not
so: activations moved in their last bits with the position (VGG-19 and ResNet-50
bases included), and the two ways then differed by about 1e-7 in the weights. With
oneDNN (``TF_ENABLE_ONEDNN_OPTS=1`` before TensorFlow is imported) they did not move
and the two ways were identical. :func:`batch_invariance` checks a base on the
machine at hand; the features notebook records its answer. Reading through
:class:`cielib.rows.Rows` keeps ``fit``'s own shuffled order (the index permutation is
``tf_keras``' own; only the gathering of a batch's rows is replaced).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cielib.rows import Rows, use_readers

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "FEATURE_FILES",
    "FEATURES_META",
    "Features",
    "FeaturesMismatchError",
    "batch_invariance",
    "compute_features",
    "fingerprint",
    "load_features",
    "predict_test",
    "save_features",
    "split_features",
    "write_features",
]

#: The cache's arrays and their files inside a features run directory.
FEATURE_FILES = {name: f"{name}.npy" for name in ("x_train", "y_train", "x_test", "y_test")}
#: The cache's provenance (dataset, model, weights, input size, base fingerprint...).
FEATURES_META = "features.json"
#: Activations computed and written per chunk by :func:`write_features` (at most).
DEFAULT_CHUNK_BYTES = 256 * 2**20


class FeaturesMismatchError(ValueError):
    """Cached features do not belong to the model (or preprocessing) at hand."""


def _probs(model: Any, x: Any, *, batch_size: int) -> np.ndarray:
    # as cielib.train.predict_proba (which this module must not import: it sits lower)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


# ------------------------------------------------------------------------ computing


def predict_test(net: Any, head: Any, cached_x_test: np.ndarray, x_test: np.ndarray, *,
                 batch_size: int = 256) -> tuple[np.ndarray, dict[str, Any]]:
    """Test-set probabilities from the head on the cached test features, checked against ``net``.

    The features run already holds the base's activations for every test image, so the
    trained head alone gives the test predictions; the whole network's pass over the
    test images is what a cached training run of VGG-19 on a CPU otherwise spends most
    of its time on. The saved predictions must still be the saved model's: the whole
    network ``net`` (base + this head, what is saved and quantized) predicts the first
    ``batch_size`` test images, in the same batch as the head saw them, and must give
    bit-identical probabilities. If it does not (a base whose activations depend on the
    batch, e.g. without oneDNN on some CPUs), ``net`` predicts every test image instead.

    Args:
        net: The assembled whole network (:func:`cielib.models.assemble` of base and head).
        head: The trained (stripped) head that ``net`` was assembled from.
        cached_x_test: The features run's ``x_test`` (the base's activations): an array
            or :class:`Rows`.
        x_test: The same test images, preprocessed for ``net``.
        batch_size: Prediction batch size (as ``cielib.train.predict_proba``'s).

    Returns:
        ``(probs, info)``: float32 ``(N, n_classes)`` probabilities, and
        ``{"predictions_from": "cached features" | "whole network",
        "predictions_checked": images compared, "predictions_check_max_abs_diff": float}``.
    """
    use_readers()
    if len(cached_x_test) != len(x_test):
        raise ValueError(
            f"cached_x_test has {len(cached_x_test)} images but x_test has {len(x_test)}: "
            "they must be the same test set"
        )
    probs = _probs(head, cached_x_test, batch_size=batch_size)
    n = min(len(x_test), int(batch_size))
    check = _probs(net, x_test[:n], batch_size=batch_size)
    diff = float(np.max(np.abs(check - probs[:n]))) if n else 0.0
    if np.array_equal(check, probs[:n]):
        return probs, {"predictions_from": "cached features", "predictions_checked": n,
                       "predictions_check_max_abs_diff": diff}
    # the first batch is already the whole network's; the rest batch as one call would
    if n < len(x_test):
        check = np.concatenate([check, _probs(net, x_test[n:], batch_size=batch_size)])
    return check, {
        "predictions_from": "whole network", "predictions_checked": n,
        "predictions_check_max_abs_diff": diff}


def compute_features(base: Any, x: np.ndarray, *, batch_size: int) -> np.ndarray:
    """The base's activations for preprocessed images ``x``, as float32.

    Computed with ``predict`` (a compiled graph, like ``fit``'s) in batches of
    ``batch_size``: use the training batch size, so that the same kernels run as
    when the whole model trains.

    Args:
        base: From :func:`split_frozen_base`.
        x: Preprocessed images, shape ``(N, *base input shape)``, floating point.
        batch_size: Images per batch, >= 1.

    Returns:
        ``float32`` array ``(N, *base output shape)``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    x = np.asarray(x)
    want = tuple(base.inputs[0].shape[1:])
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise ValueError(
            f"images of shape {x.shape} do not fit base {base.name!r}, which takes "
            f"(N, {', '.join(str(d) for d in want)})"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"images must be preprocessed floats (cielib.data.preprocess), got {x.dtype}"
        )
    out_shape = tuple(base.outputs[0].shape[1:])
    if len(x) == 0:
        return np.zeros((0, *out_shape), dtype=np.float32)
    use_readers()
    out = base.predict(x, batch_size=int(batch_size), verbose=0)
    return np.asarray(out, dtype=np.float32)


def batch_invariance(base: Any, x: np.ndarray, *, batch_size: int, seed: int = 0
                     ) -> dict[str, Any]:
    """Whether the base gives each image the same activations wherever it sits in a batch.

    The cache is bit-exact only if it does: training the whole model feeds each image
    at a new position of a new shuffled batch every epoch. On some CPU kernels
    (TensorFlow's default Eigen convolutions on an AVX2 machine, for one) an image's
    activations change in the last bits with its position; with oneDNN
    (``TF_ENABLE_ONEDNN_OPTS=1``, set before TensorFlow is imported) they did not.
    This computes the features of ``x`` in order and in a seeded shuffled order (and
    in batches one larger, so images shift position) and compares them.

    Args:
        base: From :func:`split_frozen_base`.
        x: A sample of preprocessed images (at least ``batch_size + 2``; a few batches
            is plenty).
        batch_size: The training batch size.
        seed: Seeds the shuffled order.

    Returns:
        ``{"invariant": bool, "max_abs_diff": float, "n_images": int}``.
    """
    x = np.asarray(x)
    if len(x) < batch_size + 2:
        raise ValueError(
            f"batch_invariance needs at least batch_size + 2 = {batch_size + 2} images, "
            f"got {len(x)}"
        )
    ref = compute_features(base, x, batch_size=batch_size)
    perm = np.random.default_rng(seed).permutation(len(x))
    shuffled = compute_features(base, x[perm], batch_size=batch_size)[np.argsort(perm)]
    shifted = compute_features(base, x, batch_size=batch_size + 1)
    diff = max(float(np.max(np.abs(ref - shuffled))), float(np.max(np.abs(ref - shifted))))
    return {
        "invariant": bool(np.array_equal(ref, shuffled) and np.array_equal(ref, shifted)),
        "max_abs_diff": diff,
        "n_images": int(len(x)),
    }


def fingerprint(model: Any) -> str:
    """SHA-256 over a model's weights (names, shapes, dtypes, bytes), in order.

    Two bases with equal fingerprints compute the same features; a training run checks
    that its own base matches the one its features came from (with ``weights="none"``
    a paper model's base is random and follows the seed).
    """
    h = hashlib.sha256()
    for w in model.weights:
        v = np.ascontiguousarray(w.numpy())
        h.update(f"{w.name}|{v.shape}|{v.dtype}\n".encode())
        h.update(v.tobytes())
    return h.hexdigest()


def split_features(x: Any, y: np.ndarray, *, fraction: float, seed: int
                   ) -> tuple[Rows, np.ndarray, Rows, np.ndarray]:
    """The training run's validation split, applied to the cached features.

    Features cover the whole training set, in order; the split is drawn here with the
    training run's own seed by :func:`cielib.data.validation_split` (on the row numbers),
    exactly as the uncached path draws it from the images, so both see the same
    examples in the same order. Nothing is copied: the two sides are :class:`Rows` of
    ``x`` (a memory-mapped cache stays on disk).
    """
    from cielib import data

    rows = x if isinstance(x, Rows) else Rows(x)
    i_tr, y_tr, i_val, y_val = data.validation_split(
        np.arange(len(rows)), np.asarray(y), fraction=fraction, seed=seed)
    return rows.select(i_tr), y_tr, rows.select(i_val), y_val


# --------------------------------------------------------------------------- storing


@dataclass(frozen=True, eq=False)
class Features:
    """Cached activations of one base for a dataset's train and test images.

    Attributes:
        x_train: ``float32`` ``(N_train, *feature shape)``, every training image in the
            dataset's order (the validation split is drawn later, per seed); memory-
            mapped when loaded from a run.
        y_train: ``int64`` ``(N_train,)``.
        x_test: ``float32`` ``(N_test, *feature shape)``.
        y_test: ``int64`` ``(N_test,)``.
        meta: JSON-able provenance: what computed them (dataset, model, weights,
            input shape and size, scaling, batch size, base fingerprint...).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_arrays(self.x_train, self.y_train, self.x_test, self.y_test, where="Features")
        json.dumps(self.meta)  # fails early on what could not be saved

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example's features."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def nbytes(self) -> int:
        """Bytes of the four arrays (on disk when memory-mapped)."""
        return int(sum(getattr(self, n).nbytes for n in FEATURE_FILES))


def check_arrays(x_train: Any, y_train: Any, x_test: Any, y_test: Any, *, where: str) -> None:
    """Refuse arrays that are not a cache: float32 features, int64 labels, one shape."""
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim < 2:
            raise ValueError(
                f"{where}: x_{split} must be a float32 array (N, ...), got "
                f"{getattr(x, 'dtype', type(x))} with shape {getattr(x, 'shape', None)}"
            )
        if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (len(x),):
            raise ValueError(
                f"{where}: y_{split} must be an int64 array of shape ({len(x)},), got "
                f"{getattr(y, 'dtype', type(y))} with shape {getattr(y, 'shape', None)}"
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{where}: train features {x_train.shape[1:]} and test features "
            f"{x_test.shape[1:]} differ in shape"
        )


def _npy_header(f: Any, shape: tuple[int, ...], dtype: Any) -> None:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
              "fortran_order": False, "shape": tuple(int(d) for d in shape)}
    np.lib.format.write_array_header_2_0(f, header)


def _run_dir(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix:
        raise ValueError(f"features are stored in a run directory, got the file name {path.name!r}")
    return path


def write_features(
    run_dir: str | os.PathLike,
    *,
    base: Any,
    prep: Callable[[np.ndarray], np.ndarray],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    batch_size: int,
    meta: dict[str, Any],
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> dict[str, Any]:
    """Compute the base's activations of raw images and stream them into ``run_dir``.

    Images are preprocessed and pushed through the base one chunk at a time (a whole
    number of batches of ``batch_size``, about ``chunk_bytes`` of activations), and
    each chunk is appended to its ``.npy`` file, so memory holds one chunk, never the
    cache: 60,000 CIFAR images at 224x224 give VGG-19 6.0 GB of activations.

    Args:
        run_dir: The features run directory (created).
        base: From :func:`cielib.models.split_frozen_base`.
        prep: ``uint8`` images -> the base's float input (``cielib.models.preprocessor``).
        x_train, y_train, x_test, y_test: Raw ``uint8`` images and ``int64`` labels.
        batch_size: The training batch size (the batches the base computes in).
        meta: Provenance, saved as ``features.json``.
        chunk_bytes: Activations per chunk (at least one batch).

    Returns:
        Per split (``"train"``, ``"test"``): ``{"images", "seconds", "mean", "std",
        "share of zeros"}``, computed on the fly.

    Raises:
        ValueError: bad arguments, or activations that are not finite (nothing is kept).
    """
    import time

    run_dir = _run_dir(run_dir)
    json.dumps(meta)
    if not isinstance(chunk_bytes, (int, np.integer)) or chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be a positive int, got {chunk_bytes!r}")
    out_shape = tuple(int(d) for d in base.outputs[0].shape[1:])
    row_bytes = 4 * int(np.prod(out_shape))
    chunk = max(1, chunk_bytes // (row_bytes * batch_size)) * batch_size
    run_dir.mkdir(parents=True, exist_ok=True)
    stats = {}
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x_{split} has {len(x)} images but y_{split} {len(y)} labels")
        np.save(run_dir / FEATURE_FILES[f"y_{split}"], y.astype(np.int64))
        t0, total, total_sq, zeros = time.perf_counter(), 0.0, 0.0, 0
        with open(run_dir / FEATURE_FILES[f"x_{split}"], "wb") as f:
            _npy_header(f, (len(x), *out_shape), np.float32)
            for start in range(0, len(x), chunk):
                feats = compute_features(base, prep(x[start:start + chunk]), batch_size=batch_size)
                if not np.isfinite(feats).all():
                    raise ValueError(f"x_{split}: the base gave NaN or infinite activations "
                                     f"for images {start}..{start + len(feats) - 1}")
                total += float(feats.sum(dtype=np.float64))
                total_sq += float(np.square(feats, dtype=np.float64).sum())
                zeros += int(np.count_nonzero(feats == 0))
                f.write(feats.tobytes())
        n = max(1, len(x) * int(np.prod(out_shape)))
        mean = total / n
        stats[split] = {"images": int(len(x)), "seconds": time.perf_counter() - t0,
                        "mean": mean, "std": float(np.sqrt(max(0.0, total_sq / n - mean**2))),
                        "share of zeros": zeros / n}
    (run_dir / FEATURES_META).write_text(json.dumps(meta, sort_keys=True, indent=1))
    return stats


def save_features(run_dir: str | os.PathLike, features: Features) -> Path:
    """Write in-memory ``features`` in the cache's format (as :func:`write_features` does)."""
    if not isinstance(features, Features):
        raise ValueError(f"features must be a Features, got {type(features).__name__}")
    run_dir = _run_dir(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, file in FEATURE_FILES.items():
        np.save(run_dir / file, getattr(features, name))
    (run_dir / FEATURES_META).write_text(json.dumps(features.meta, sort_keys=True, indent=1))
    return run_dir


def load_features(
    run_dir: str | os.PathLike,
    *,
    base: Any = None,
    expect: dict[str, Any] | None = None,
) -> Features:
    """Open the features of a run directory, memory-mapped, checking they fit.

    Args:
        run_dir: A features run directory (or one written by :func:`save_features`).
        base: If given, the features' shape must be its output shape and their
            ``meta["base_fingerprint"]`` its :func:`fingerprint` (same weights).
        expect: Metadata entries that must match, e.g. ``{"dataset": "cifar10",
            "scaling": "caffe", "input_shape": [32, 32, 3], "batch_size": 32}``.

    Raises:
        FileNotFoundError: no such directory, or no features in it.
        ValueError: a missing array, wrong dtype or shape.
        FeaturesMismatchError: they do not belong to ``base`` or to ``expect``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no features run directory at {run_dir}")
    missing = [f for f in (*FEATURE_FILES.values(), FEATURES_META) if not (run_dir / f).is_file()]
    if len(missing) == len(FEATURE_FILES) + 1:
        raise FileNotFoundError(f"no features in {run_dir}")
    if missing:
        raise ValueError(f"{run_dir}: not a features run, missing {missing}")
    arrays = {name: np.load(run_dir / file, mmap_mode="r" if name.startswith("x_") else None,
                            allow_pickle=False)
              for name, file in FEATURE_FILES.items()}
    meta = json.loads((run_dir / FEATURES_META).read_text())
    feats = Features(**arrays, meta=meta)
    problems = []
    if base is not None:
        want = tuple(int(d) for d in base.outputs[0].shape[1:])
        if feats.shape != want:
            problems.append(f"feature shape {feats.shape} != base output {want}")
        got = meta.get("base_fingerprint")
        if got != fingerprint(base):
            problems.append(
                "base weights differ from those that computed the features "
                f"(fingerprint {str(got)[:12]}... vs {fingerprint(base)[:12]}...; with "
                "weights='none' the base is random and follows the seed)"
            )
    for key, value in (expect or {}).items():
        if _jsonable(meta.get(key)) != _jsonable(value):
            problems.append(f"{key}: features have {meta.get(key)!r}, expected {value!r}")
    if problems:
        raise FeaturesMismatchError(f"{run_dir} does not fit: " + "; ".join(problems))
    return feats


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
