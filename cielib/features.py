"""An exact cache of a frozen base's activations, so only the trainable head trains.

The paper froze its pretrained convolutional base ("I will obtain all of the
pre-trained convolutional layers with the parameters fixed (i.e. there will be no
changes to the weights and activation's)", Section IX) and trained three new dense
layers on top. A frozen base maps each image to the same activations at every step
of every epoch of every seed and sparsity, so computing them once and training the
head on them gives the same training at a fraction of the cost. What is
saved, evaluated and quantized afterwards is still the whole network:
:func:`assemble` puts base and trained head back together, layer for layer as the
original model was.

Usage (one process computes features once; every training run of the task reads
them)::

    base, head = split_frozen_base(model)
    feats = compute_features(base, prep(x), batch_size=batch_size)
    ...
    f_tr, y_tr, f_val, y_val = split_features(f, y, fraction=0.1, seed=seed)
    train.compile_model(head, ...); train.fit(head, f_tr, y_tr, x_val=f_val, ...)
    net = assemble(base, prune.strip(head))

Where the cut goes: the base is everything before the first layer (walking back
from the output along a chain of single-input layers) that has trainable weights;
weightless layers such as ``Flatten`` or ``GlobalAveragePooling2D`` right before it
belong to the base, so the cache holds what the first trainable layer reads.

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
machine at hand; the features notebook records its answer.

A base is only cached when caching cannot change the result, so
:func:`split_frozen_base` refuses a model whose base has trainable weights, pruning
wrappers (masks change the weights while training) or random layers (dropout, noise:
they act differently in training and inference).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FEATURES_FILE",
    "Features",
    "FeaturesMismatchError",
    "assemble",
    "batch_invariance",
    "compute_features",
    "fingerprint",
    "load_features",
    "predict_test",
    "save_features",
    "split_features",
    "split_frozen_base",
]

#: File name of the cached features inside a features run directory.
FEATURES_FILE = "features.npz"
_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_META_KEY = "meta_json"


class FeaturesMismatchError(ValueError):
    """Cached features do not belong to the model (or preprocessing) at hand."""


# --------------------------------------------------------------------------- the graph


def _keras():
    from cielib.keras import keras

    return keras


def _is_pruning_wrapper(layer: Any) -> bool:
    # Checked by class name so that tfmot is only imported when it is already in use.
    return type(layer).__name__ == "PruneLowMagnitude"


def _is_random_layer(layer: Any) -> bool:
    """Dropout, noise and random augmentation layers (tf_keras' ``BaseRandomLayer``
    gives each its own ``_random_generator``)."""
    return hasattr(layer, "_random_generator")


def _chain(model: Any, *, stop: Any = None) -> tuple[list[tuple[Any, dict, Any]], Any]:
    """Walk back from the single output along single-input layers.

    Returns ``(steps, start)``: ``steps`` in forward order as ``(layer, call_kwargs,
    input tensor)``, and ``start``, the tensor the first step reads (``stop`` if given
    and reached, else where the chain ends: a model input or a layer with several
    inputs).
    """
    if len(model.outputs) != 1:
        raise ValueError(
            f"model {model.name!r} has {len(model.outputs)} outputs; only single-output "
            "classifiers can be split"
        )
    tensor = model.outputs[0]
    steps: list[tuple[Any, dict, Any]] = []
    while stop is None or tensor is not stop:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ValueError(f"model {model.name!r} is not a functional tf_keras model")
        layer, node_index, _ = history
        node = layer._inbound_nodes[node_index]  # noqa: SLF001 (tf_keras graph API)
        if node.is_input:
            break
        inputs = node.keras_inputs
        if len(inputs) != 1 or len(node.call_args) != 1:
            break
        steps.append((layer, dict(node.call_kwargs), inputs[0]))
        tensor = inputs[0]
    steps.reverse()
    return steps, tensor


def _replay(steps: list[tuple[Any, dict, Any]], x: Any) -> Any:
    for layer, kwargs, _ in steps:
        x = layer(x, **kwargs)
    return x


def split_frozen_base(model: Any) -> tuple[Any, Any]:
    """Split a frozen-base classifier into ``(base, head)`` that share its layers.

    The base maps images to the activations the first trainable layer reads; the head
    maps those activations to the model's output. ``head(base(x))`` is ``model(x)``,
    and training ``head`` trains ``model``'s own layers (they are the same objects).

    Args:
        model: A single-input, single-output functional ``tf_keras`` model whose
            frozen part comes first (e.g. ``cielib.models.build_model("vgg19", ...)``).

    Returns:
        ``(base, head)``: two uncompiled ``keras.Model`` s, named
        ``"<name>_base"`` and ``"<name>_head"``; the head's input is a new
        ``keras.Input`` of the base's output shape.

    Raises:
        ValueError: the model has no frozen base (its first layers train, or nothing
            with weights precedes the first trainable layer), its base is wrapped for
            pruning (``prune_layers="all"``: the base's weights would change), its base
            holds a random layer (dropout/noise: training and inference differ), it has
            no trainable layer, or it is not a single-input, single-output model.
    """
    keras = _keras()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a tf_keras Model, got {type(model)!r}")
    if len(model.inputs) != 1:
        raise ValueError(
            f"model {model.name!r} has {len(model.inputs)} inputs; only single-input "
            "classifiers can be split"
        )
    steps, _ = _chain(model)
    first = next(
        (i for i, (layer, _, _) in enumerate(steps) if layer.trainable_weights), None
    )
    if first is None:
        raise ValueError(
            f"model {model.name!r} has no trainable layer at its end to train on cached "
            "features (is the whole model frozen?)"
        )
    head_steps = steps[first:]
    cut = head_steps[0][2]
    base = keras.Model(model.inputs, cut, name=f"{model.name}_base")
    wrapped = [layer.name for layer in base.layers if _is_pruning_wrapper(layer)]
    if wrapped:
        raise ValueError(
            f"model {model.name!r} has a pruned base ({', '.join(wrapped[:3])}"
            f"{', ...' if len(wrapped) > 3 else ''} wrapped for pruning): its weights change "
            "while it trains, so its activations cannot be cached; prune the head only "
            "(prune_layers='trainable') or train the whole model"
        )
    trainable = [layer.name for layer in base.layers if layer.trainable_weights]
    frozen = [layer for layer in base.layers if layer.weights]
    if trainable or not frozen:
        where = (
            f"the first layer(s) {', '.join(trainable[:3])} have trainable weights"
            if trainable
            else "no layer with weights precedes the first trainable layer "
            f"{head_steps[0][0].name!r}"
        )
        raise ValueError(
            f"model {model.name!r} has no frozen base to cache: {where}; only models whose "
            "first layers are frozen (e.g. vgg19/resnet50) can train on cached features"
        )
    random = [layer.name for layer in base.layers if _is_random_layer(layer)]
    if random:
        raise ValueError(
            f"model {model.name!r} has random layer(s) in its frozen base ({', '.join(random)}): "
            "they act differently while training, so cached activations would differ"
        )
    features = keras.Input(
        shape=tuple(cut.shape[1:]), dtype=cut.dtype, name=f"{model.name}_features"
    )
    head = keras.Model(features, _replay(head_steps, features), name=f"{model.name}_head")
    return base, head


def assemble(base: Any, head: Any, *, name: str | None = None) -> Any:
    """The whole classifier again: ``head``'s layers called on ``base``'s output.

    The result is flat (the base's and the head's layers sit directly in it, named as
    in the original model), so it saves, loads, prunes-reports and quantizes like a
    model built by :func:`cielib.models.build_model`. Weights are shared, not copied.

    Args:
        base: The base from :func:`split_frozen_base`.
        head: The trained head: the one from :func:`split_frozen_base`, or
            ``cielib.prune.strip`` of its pruned version.
        name: Model name; default: the head's name without ``"_head"``.

    Raises:
        ValueError: ``head`` is still wrapped for pruning (strip it first), is not a
            chain of single-input layers from its input, or its input shape is not the
            base's output shape.
    """
    keras = _keras()
    for what, m in (("base", base), ("head", head)):
        if not isinstance(m, keras.Model):
            raise ValueError(f"{what} must be a tf_keras Model, got {type(m)!r}")
    wrapped = [layer.name for layer in head.layers if _is_pruning_wrapper(layer)]
    if wrapped:
        raise ValueError(
            f"head {head.name!r} is still wrapped for pruning ({', '.join(wrapped)}); "
            "assemble cielib.prune.strip(head)"
        )
    if len(base.outputs) != 1 or len(head.inputs) != 1:
        raise ValueError("base must have one output and head one input")
    b_shape = tuple(base.outputs[0].shape[1:])
    h_shape = tuple(head.inputs[0].shape[1:])
    if b_shape != h_shape:
        raise ValueError(
            f"head {head.name!r} reads features of shape {h_shape}, but base "
            f"{base.name!r} outputs {b_shape}"
        )
    steps, start = _chain(head, stop=head.inputs[0])
    if start is not head.inputs[0]:
        raise ValueError(
            f"head {head.name!r} is not a chain of single-input layers from its input"
        )
    if name is None:
        name = head.name[: -len("_head")] if head.name.endswith("_head") else head.name
    return keras.Model(base.inputs, _replay(steps, base.outputs[0]), name=name)


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
        net: The assembled whole network (:func:`assemble` of ``base`` and ``head``).
        head: The trained (stripped) head that ``net`` was assembled from.
        cached_x_test: The features run's ``x_test`` (the base's activations).
        x_test: The same test images, preprocessed for ``net``.
        batch_size: Prediction batch size (as ``cielib.train.predict_proba``'s).

    Returns:
        ``(probs, info)``: float32 ``(N, n_classes)`` probabilities, and
        ``{"predictions_from": "cached features" | "whole network",
        "predictions_checked": images compared, "predictions_check_max_abs_diff": float}``.
    """
    from cielib.train import predict_proba

    if len(cached_x_test) != len(x_test):
        raise ValueError(
            f"cached_x_test has {len(cached_x_test)} images but x_test has {len(x_test)}: "
            "they must be the same test set"
        )
    probs = predict_proba(head, cached_x_test, batch_size=batch_size)
    n = min(len(x_test), int(batch_size))
    check = predict_proba(net, x_test[:n], batch_size=batch_size)
    diff = float(np.max(np.abs(check - probs[:n]))) if n else 0.0
    if np.array_equal(check, probs[:n]):
        return probs, {"predictions_from": "cached features", "predictions_checked": n,
                       "predictions_check_max_abs_diff": diff}
    # the first batch is already the whole network's; the rest batch as one call would
    if n < len(x_test):
        check = np.concatenate([check, predict_proba(net, x_test[n:], batch_size=batch_size)])
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


def split_features(x: np.ndarray, y: np.ndarray, *, fraction: float, seed: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training run's validation split, applied to the cached features.

    Features cover the whole training set, in order; the split is drawn here with the
    training run's own seed by :func:`cielib.data.validation_split`, exactly as the
    uncached path draws it from the images, so both see the same examples in the same
    order.
    """
    from cielib import data

    return data.validation_split(x, y, fraction=fraction, seed=seed)


# --------------------------------------------------------------------------- storing


@dataclass(frozen=True, eq=False)
class Features:
    """Cached activations of one base for a dataset's train and test images.

    Attributes:
        x_train: ``float32`` ``(N_train, *feature shape)``, every training image in the
            dataset's order (the validation split is drawn later, per seed).
        y_train: ``int64`` ``(N_train,)``.
        x_test: ``float32`` ``(N_test, *feature shape)``.
        y_test: ``int64`` ``(N_test,)``.
        meta: JSON-able provenance: what computed them (dataset, model, weights,
            input shape, scaling, batch size, base fingerprint...).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_arrays(self.x_train, self.y_train, self.x_test, self.y_test, where="Features")
        json.dumps(self.meta)  # fails early on what could not be saved

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example's features."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def nbytes(self) -> int:
        """Bytes of the four arrays in memory."""
        return int(sum(getattr(self, n).nbytes for n in _ARRAYS))


def _check_arrays(x_train, y_train, x_test, y_test, *, where: str) -> None:
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


def save_features(path: str | os.PathLike, features: Features) -> Path:
    """Write ``features`` as an uncompressed ``.npz`` (activations barely compress).

    The metadata is stored as a JSON string, so loading needs no pickle.
    """
    if not isinstance(features, Features):
        raise ValueError(f"features must be a Features, got {type(features).__name__}")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"features are saved as .npz, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {n: getattr(features, n) for n in _ARRAYS}
    with open(path, "wb") as f:
        np.savez(f, **arrays, **{_META_KEY: np.array(json.dumps(features.meta, sort_keys=True))})
    return path


def load_features(
    path: str | os.PathLike,
    *,
    base: Any = None,
    expect: dict[str, Any] | None = None,
) -> Features:
    """Read features saved by :func:`save_features`, checking they fit.

    Args:
        path: A ``features.npz``, or a features run directory holding one.
        base: If given, the features' shape must be its output shape and their
            ``meta["base_fingerprint"]`` its :func:`fingerprint` (same weights).
        expect: Metadata entries that must match, e.g. ``{"dataset": "cifar10",
            "scaling": "caffe", "input_shape": [32, 32, 3], "batch_size": 32}``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a missing array, wrong dtype or shape, non-finite values.
        FeaturesMismatchError: they do not belong to ``base`` or to ``expect``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / FEATURES_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no features file at {path}")
    with np.load(path, allow_pickle=False) as z:
        missing = [n for n in (*_ARRAYS, _META_KEY) if n not in z.files]
        if missing:
            raise ValueError(f"{path}: not a features file, missing {missing}; has {z.files}")
        arrays = {n: z[n] for n in _ARRAYS}
        meta = json.loads(str(z[_META_KEY]))
    feats = Features(**arrays, meta=meta)
    for n in ("x_train", "x_test"):
        if not np.isfinite(getattr(feats, n)).all():
            raise ValueError(f"{path}: {n} holds NaN or infinite values")
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
        raise FeaturesMismatchError(f"{path} does not fit: " + "; ".join(problems))
    return feats


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
