"""A registry of the image classifiers the experiments train, prune and quantize.

Two profiles share one interface, :func:`build_model`:

* **Quick profile** (``vgg_small``, ``resnet_small``): small VGG- and ResNet-style
  networks trained from scratch, sized so that about thirty of them train on a 2-core
  CPU in minutes. They keep the trait that matters for the study: the VGG-style net
  has no BatchNorm and most of its weights in dense layers; the ResNet-style net has
  residual blocks with BatchNorm and almost all its weights in convolutions.
* **Paper profile** (``vgg19``, ``resnet50``): the set-up of "Rethinking Compression
  within Deep Neural Networks" (2020). Our reading of it: the author loaded
  ``VGG19``/``ResNet50`` from ``keras.applications`` with ImageNet weights and without
  the ImageNet classifier (``include_top=False``), froze every convolutional
  (feature-extraction) layer, and added new fully connected layers that are the only
  ones trained ("specifically contained within the final 3 fully connected layers").
  So the head is ``Flatten`` (VGG-19; at 32x32 the base ends in 1x1x512) or
  ``GlobalAveragePooling2D`` (ResNet-50; 1x1x2048), then ``Dense(512, relu)``,
  ``Dense(256, relu)``, ``Dense(n_classes, softmax)``: three new dense layers. The
  widths 512/256 are our choice (the paper does not give them); dropout is off by
  default because the paper mentions none.

Every model ends in ``Dense(n_classes, activation="softmax", name="predictions")``:
outputs are probabilities, so train with sparse categorical cross-entropy on
probabilities (``from_logits=False``).

Paper models are built *flat*: the base's layers sit directly in the returned
functional model (no nested sub-model), because tensorflow-model-optimization and
per-layer sparsity reports handle flat models best. :func:`base_model` gives a view of
the frozen base when one is needed (e.g. to save "notop" weights).

Nothing here downloads: ``weights="imagenet"`` reads the Keras cache only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cielib import keras as _lazy  # tf_keras only inside functions: importing stays TF-free
from cielib.checks import check_choice, check_positive_int, is_int, is_real

__all__ = [
    "MODELS",
    "ModelSpec",
    "available_models",
    "base_model",
    "build_model",
    "count_params",
    "get_spec",
    "imagenet_weights_path",
    "keras_cache_dir",
]

#: Name of the classifier layer every model ends with.
PREDICTIONS = "predictions"
#: Name of the first head layer of a paper model (everything before it is the base).
_HEAD_START = ("head_flatten", "head_pool")

_IMAGENET_NOTOP_FILES = {
    "vgg19": "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
_WEIGHT_SUFFIXES = (".h5", ".hdf5")
_APP_NAMES = {"vgg19": "VGG19", "resnet50": "ResNet50"}


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the pipeline needs to know about one architecture.

    Attributes:
        name: Registry key.
        description: One line for tables and reports.
        builder: Callable with the keyword arguments of :func:`build_model` (minus
            ``name``) returning an uncompiled ``keras.Model``.
        preprocessing: ``"unit"`` (pixels / 255) or ``"caffe"`` (ImageNet BGR mean
            subtraction, what the pretrained Keras bases expect). The data module
            applies it; models contain no preprocessing layers.
        default_input_shape: Shape used when ``input_shape=None``; ``None`` means
            "use the dataset's image shape".
        min_input_size: Smallest height = width the architecture accepts.
        supports_imagenet: Whether ``weights="imagenet"`` is allowed.
        frozen_base: Whether the model is a frozen base under trainable dense layers
            (its base's activations can then be cached: :mod:`cielib.features`).
        options: Extra keyword options the builder accepts, with their defaults.
    """

    name: str
    description: str
    builder: Callable[..., Any]
    preprocessing: str
    default_input_shape: tuple[int, int, int] | None
    min_input_size: int
    supports_imagenet: bool
    options: tuple[tuple[str, Any], ...] = ()
    frozen_base: bool = False  # a frozen pretrained base under new dense layers


# --------------------------------------------------------------------------- helpers


class _Seeder:
    """Hands out initializers with distinct, reproducible seeds.

    Keras reuses the random stream of a seeded initializer instance, so each layer gets
    its own instance; seeds are drawn from one NumPy generator so neighbouring model
    seeds do not share layer seeds. With ``seed=None`` the initializers are unseeded
    and follow the global seed (``cielib.keras.seed_everything``).
    """

    def __init__(self, seed: int | None):
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _next(self) -> int | None:
        return None if self._rng is None else int(self._rng.integers(0, 2**31 - 1))

    def he(self):
        keras = _lazy.keras
        return keras.initializers.HeUniform(seed=self._next())

    def glorot(self):
        keras = _lazy.keras
        return keras.initializers.GlorotUniform(seed=self._next())

    def dropout_seed(self) -> int | None:
        return self._next()


def _check_input_shape(spec: ModelSpec, input_shape: Any) -> tuple[int, int, int]:
    if input_shape is None:
        if spec.default_input_shape is None:
            raise ValueError(
                f"input_shape is required for {spec.name!r} (it takes the dataset's "
                "image shape): give (height, width, channels)"
            )
        return spec.default_input_shape
    if (
        isinstance(input_shape, (str, bytes))
        or not isinstance(input_shape, Sequence)
        or len(input_shape) != 3
        or not all(is_int(v) and v > 0 for v in input_shape)
    ):
        raise ValueError(
            f"input_shape must be 3 positive ints (height, width, channels), "
            f"got {input_shape!r}"
        )
    shape = tuple(int(v) for v in input_shape)
    if min(shape[:2]) < spec.min_input_size:
        raise ValueError(
            f"input_shape {shape!r} is too small for {spec.name!r}: height and width "
            f"must be >= {spec.min_input_size}"
        )
    return shape  # type: ignore[return-value]


def _check_dense_units(value: Any, default: tuple[int, ...]) -> tuple[int, ...]:
    if value is None:
        return default
    if is_int(value):
        value = (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(
            f"dense_units must be a positive int or a sequence of positive ints, "
            f"got {value!r}"
        )
    if not all(is_int(v) and v > 0 for v in value):
        raise ValueError(f"dense_units must all be positive ints, got {value!r}")
    return tuple(int(v) for v in value)


def _check_dropout(value: Any, default: float, dense_units: tuple[int, ...]) -> float:
    if value is None:
        value = default
    if not is_real(value) or not 0 <= value < 1:
        raise ValueError(f"dropout must be a float in [0, 1), got {value!r}")
    if value > 0 and not dense_units:
        raise ValueError(
            f"dropout={value!r} needs hidden dense layers to follow (dropout is applied "
            "after each one), but dense_units is empty"
        )
    return float(value)


def _dense_head(
    x, *, n_classes: int, dense_units: tuple[int, ...], dropout: float, seeder: _Seeder
):
    """Hidden ReLU dense layers (``fc1``, ``fc2``, ...), then the softmax classifier."""
    keras = _lazy.keras
    for i, units in enumerate(dense_units, start=1):
        x = keras.layers.Dense(
            units, activation="relu", kernel_initializer=seeder.he(), name=f"fc{i}"
        )(x)
        if dropout > 0:
            x = keras.layers.Dropout(
                dropout, seed=seeder.dropout_seed(), name=f"fc{i}_dropout"
            )(x)
    return keras.layers.Dense(
        n_classes,
        activation="softmax",
        kernel_initializer=seeder.glorot(),
        name=PREDICTIONS,
    )(x)


# ------------------------------------------------------------------ quick profile

# Every builder takes the keyword arguments of build_model (the ModelSpec.builder
# interface), so their signatures repeat on purpose. build_model has checked the shared
# ones (name, n_classes, seed, and weights: None for models trained from scratch).


def _build_vgg_small(
    *,
    input_shape: tuple[int, int, int],
    n_classes: int,
    weights: Any = None,
    dense_units: Any = None,
    dropout: Any = None,
    seed: int | None = None,
    width: int = 16,
    blocks: int = 2,
):
    """VGG-style: ``blocks`` x (2 conv 3x3 + ReLU, max-pool 2), no BatchNorm.

    Block ``i`` has ``width * 2**i`` filters (16, 32 by default). Flatten (as VGG)
    keeps most weights in the dense layers, which is what makes VGG prune well.
    """
    width = check_positive_int("width", width)
    blocks = check_positive_int("blocks", blocks)
    if min(input_shape[:2]) < 2**blocks:
        raise ValueError(
            f"input_shape {input_shape!r} is too small for vgg_small with "
            f"blocks={blocks}: height and width must be >= {2**blocks}"
        )
    dense_units = _check_dense_units(dense_units, (64,))
    dropout = _check_dropout(dropout, 0.25, dense_units)
    seeder = _Seeder(seed)
    keras = _lazy.keras

    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for b in range(1, blocks + 1):
        filters = width * 2 ** (b - 1)
        for c in (1, 2):
            x = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                activation="relu",
                kernel_initializer=seeder.he(),
                name=f"block{b}_conv{c}",
            )(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = _dense_head(
        x, n_classes=n_classes, dense_units=dense_units, dropout=dropout, seeder=seeder
    )
    return keras.Model(inputs, outputs, name="vgg_small")


def _build_resnet_small(
    *,
    input_shape: tuple[int, int, int],
    n_classes: int,
    weights: Any = None,
    dense_units: Any = None,
    dropout: Any = None,
    seed: int | None = None,
    width: int = 16,
    blocks_per_stage: int = 1,
    stem_stride: int = 1,
):
    """ResNet-style: stem conv + BN + ReLU, 3 stages of basic blocks, GAP, softmax.

    Stage widths are ``width * (1, 2, 4)`` (16/32/64 by default); stages 2 and 3 start
    with stride 2 and a 1x1 projection shortcut (with BN), as in ResNet. BatchNorm uses
    momentum 0.9 so its moving statistics settle within a few short epochs. ``stem_stride=2``
    halves the resolution in the stem (as ResNet's strided stem does), for about a
    quarter of the compute.
    """
    width = check_positive_int("width", width)
    blocks_per_stage = check_positive_int("blocks_per_stage", blocks_per_stage)
    stem_stride = check_positive_int("stem_stride", stem_stride)
    if stem_stride > 2:
        raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
    dense_units = _check_dense_units(dense_units, ())
    dropout = _check_dropout(dropout, 0.0, dense_units)
    seeder = _Seeder(seed)
    keras = _lazy.keras
    layers = keras.layers

    def conv(filters, kernel, stride, name):
        return layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="same",
            use_bias=False,
            kernel_initializer=seeder.he(),
            name=name,
        )

    def bn(name):
        return layers.BatchNormalization(momentum=0.9, name=name)

    inputs = keras.Input(shape=input_shape, name="input")
    x = conv(width, 3, stem_stride, "stem_conv")(inputs)
    x = bn("stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    in_filters = width
    for s, mult in enumerate((1, 2, 4), start=1):
        filters = width * mult
        for b in range(1, blocks_per_stage + 1):
            p = f"stage{s}_block{b}"
            stride = 2 if (s > 1 and b == 1) else 1
            shortcut = x
            if stride != 1 or in_filters != filters:
                shortcut = conv(filters, 1, stride, f"{p}_proj_conv")(x)
                shortcut = bn(f"{p}_proj_bn")(shortcut)
            y = conv(filters, 3, stride, f"{p}_conv1")(x)
            y = bn(f"{p}_bn1")(y)
            y = layers.Activation("relu", name=f"{p}_relu1")(y)
            y = conv(filters, 3, 1, f"{p}_conv2")(y)
            y = bn(f"{p}_bn2")(y)
            x = layers.Add(name=f"{p}_add")([shortcut, y])
            x = layers.Activation("relu", name=f"{p}_out")(x)
            in_filters = filters
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = _dense_head(
        x, n_classes=n_classes, dense_units=dense_units, dropout=dropout, seeder=seeder
    )
    return keras.Model(inputs, outputs, name="resnet_small")


# ------------------------------------------------------------------ paper profile


def keras_cache_dir() -> Path:
    """Where Keras caches downloads: ``$KERAS_HOME`` if set, else ``~/.keras``."""
    home = os.environ.get("KERAS_HOME")
    return Path(home).expanduser() if home else Path.home() / ".keras"


def imagenet_weights_path(name: str) -> Path:
    """The cached ImageNet "notop" weights file for ``name``; never downloads.

    Raises:
        ValueError: ``name`` has no ImageNet weights.
        FileNotFoundError: the file is not in the Keras cache; the message says where
            it was looked for and how to provide it.
    """
    spec = get_spec(name)
    if not spec.supports_imagenet:
        raise ValueError(
            f"{name!r} has no ImageNet weights; models with them: "
            f"{sorted(_IMAGENET_NOTOP_FILES)}"
        )
    path = keras_cache_dir() / "models" / _IMAGENET_NOTOP_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {name!r} not found at {path} (searched the Keras "
            "cache: $KERAS_HOME/models, or ~/.keras/models when KERAS_HOME is unset). "
            "Nothing is downloaded at run time. Either copy the file there (on a "
            f"machine with internet, `keras.applications.{_APP_NAMES[name]}"
            "(include_top=False, weights='imagenet')` downloads it once into "
            "~/.keras/models), or pass weights='/path/to/"
            f"{_IMAGENET_NOTOP_FILES[name]}'."
        )
    return path



def _resolve_weights(name: str, weights: Any) -> tuple[str, Path | None]:
    """Classify ``weights`` as ``("none"|"imagenet"|"file", path)``."""
    if weights is None:
        return "none", None
    if isinstance(weights, str) and weights == "imagenet":
        return "imagenet", imagenet_weights_path(name)
    allowed = "None, 'imagenet' or a path to a .h5 weights file"
    if not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights must be {allowed}; got {weights!r}")
    path = Path(weights).expanduser()
    if path.suffix.lower() not in _WEIGHT_SUFFIXES:
        raise ValueError(
            f"weights must be {allowed}; got {weights!r} (not 'imagenet', and not a "
            f"file ending in {' or '.join(_WEIGHT_SUFFIXES)})"
        )
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    return "file", path


def _h5_layers_with_weights(path: Path) -> list[str]:
    """Names of the layers that hold weights in a Keras 2 HDF5 weights file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f
            if "layer_names" not in group.attrs and "model_weights" in group:
                group = group["model_weights"]  # a whole model saved with model.save()
            if "layer_names" not in group.attrs:
                raise ValueError("it has no 'layer_names' attribute")
            names = []
            for raw in group.attrs["layer_names"]:
                layer = raw.decode("utf8") if isinstance(raw, bytes) else str(raw)
                if len(group[layer].attrs.get("weight_names", [])):
                    names.append(layer)
            return names
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(
            f"weights file {str(path)!r} is not a Keras HDF5 weights file: {exc}"
        ) from exc


def _load_weights_file(model, base, name: str, path: Path) -> None:
    """Load a notop base file into ``base`` or a full-model file into ``model``.

    Rule: a file that has weights for a layer named ``predictions`` is a full-model
    file (saved from a model built here: ``model.save_weights('x.h5')``) and is loaded
    into the whole model; any other file is a notop base file (the Keras
    ``*_notop.h5`` layout, or ``base_model(m).save_weights('x.h5')``) and is loaded
    into the base only, leaving the new dense layers freshly initialised. Loading is
    by layer order (topological), as Keras does for the applications' own files.
    """
    kind = "full-model" if PREDICTIONS in _h5_layers_with_weights(path) else "notop base"
    target = model if kind == "full-model" else base
    try:
        target.load_weights(str(path))
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"weights file {str(path)!r} looks like a {kind} weights file (it "
            f"{'has' if kind == 'full-model' else 'has no'} a {PREDICTIONS!r} layer) "
            f"but does not fit this {name!r} model (input_shape "
            f"{tuple(model.input_shape[1:])}, {model.output_shape[-1]} classes, and "
            f"the dense_units it was built with): {exc}"
        ) from exc


def _build_paper_model(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    n_classes: int,
    weights: Any = None,
    dense_units: Any = None,
    dropout: Any = None,
    seed: int | None = None,
):
    dense_units = _check_dense_units(dense_units, (512, 256))
    dropout = _check_dropout(dropout, 0.0, dense_units)
    if isinstance(weights, str) and weights == "imagenet" and input_shape[2] != 3:
        raise ValueError(
            f"weights='imagenet' needs 3 input channels, got input_shape {input_shape!r}"
        )
    kind, path = _resolve_weights(name, weights)
    seeder = _Seeder(seed)
    keras = _lazy.keras
    app = getattr(keras.applications, _APP_NAMES[name])
    # The local file goes straight to the constructor, so Keras never downloads.
    base = app(
        include_top=False,
        weights=str(path) if kind == "imagenet" else None,
        input_shape=input_shape,
    )
    for layer in base.layers:
        layer.trainable = False
    base.trainable = False
    x = base.output
    if name == "vgg19":
        x = keras.layers.Flatten(name="head_flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = _dense_head(
        x, n_classes=n_classes, dense_units=dense_units, dropout=dropout, seeder=seeder
    )
    model = keras.Model(base.input, outputs, name=name)
    if kind == "file":
        _load_weights_file(model, base, name, path)
    return model


def _build_vgg19(**kwargs):
    """VGG-19 base (frozen) + Flatten + new dense head; see the module docstring."""
    return _build_paper_model("vgg19", **kwargs)


def _build_resnet50(**kwargs):
    """ResNet-50 base (frozen) + GlobalAveragePooling + new dense head."""
    return _build_paper_model("resnet50", **kwargs)


def base_model(model):
    """A view of a paper model's frozen base, sharing its layers (and weights).

    Useful to save "notop" weights (``base_model(m).save_weights('base.h5')``) that
    ``build_model(..., weights='base.h5')`` loads back.

    Raises:
        ValueError: ``model`` is not a paper model built by :func:`build_model`.
    """
    keras = _lazy.keras
    names = {layer.name for layer in model.layers}
    start = next((n for n in _HEAD_START if n in names), None)
    if start is None:
        raise ValueError(
            f"model {model.name!r} has no pretrained base (no layer named "
            f"{' or '.join(_HEAD_START)}); only vgg19/resnet50 models have one"
        )
    return keras.Model(model.inputs, model.get_layer(start).input, name=f"{model.name}_base")


# ------------------------------------------------------------------ the registry

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="vgg_small",
            description="VGG-style CNN (2 blocks of 2 conv, no BatchNorm), from scratch",
            builder=_build_vgg_small,
            preprocessing="unit",
            default_input_shape=None,
            min_input_size=8,
            supports_imagenet=False,
            options=(("width", 16), ("blocks", 2)),
        ),
        ModelSpec(
            name="resnet_small",
            description="ResNet-style CNN (3 stages of basic blocks, BatchNorm), from scratch",
            builder=_build_resnet_small,
            preprocessing="unit",
            default_input_shape=None,
            min_input_size=8,
            supports_imagenet=False,
            options=(("width", 16), ("blocks_per_stage", 1), ("stem_stride", 1)),
        ),
        ModelSpec(
            name="vgg19",
            description="Keras VGG-19 base (frozen) + 3 new dense layers, as in the paper",
            builder=_build_vgg19,
            preprocessing="caffe",
            default_input_shape=(32, 32, 3),
            min_input_size=32,
            supports_imagenet=True,
            frozen_base=True,
        ),
        ModelSpec(
            name="resnet50",
            description="Keras ResNet-50 base (frozen) + 3 new dense layers, as in the paper",
            builder=_build_resnet50,
            preprocessing="caffe",
            default_input_shape=(32, 32, 3),
            min_input_size=32,
            supports_imagenet=True,
            frozen_base=True,
        ),
    )
}


def available_models() -> list[str]:
    """Registered model names, sorted."""
    return sorted(MODELS)


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` for ``name``.

    Raises:
        ValueError: unknown name (the message lists the allowed ones).
    """
    return MODELS[check_choice(name, available_models(), what="model")]


def build_model(
    name: str,
    *,
    input_shape: Sequence[int] | None,
    n_classes: int,
    weights: str | os.PathLike | None = None,
    dense_units: int | Sequence[int] | None = None,
    dropout: float | None = None,
    seed: int | None = None,
    **options: Any,
):
    """Build an uncompiled classifier that outputs softmax probabilities.

    All arguments are checked before anything is built, so a bad config fails fast
    with a message naming the bad value.

    Args:
        name: One of :func:`available_models`.
        input_shape: ``(height, width, channels)``; ``None`` takes the model's
            ``default_input_shape`` (paper models: ``(32, 32, 3)``).
        n_classes: Number of classes, >= 2.
        weights: ``None`` (random init; the only choice for quick models),
            ``"imagenet"`` (paper models; read from the Keras cache, never
            downloaded), or a path to a ``.h5`` file (paper models). A file with
            weights for a ``predictions`` layer is a full-model file (saved with
            ``model.save_weights``) and fills the whole model; any other file is a
            notop base file (Keras ``*_notop.h5`` layout, or
            ``base_model(m).save_weights``) and fills the base only.
        dense_units: Widths of the hidden dense layers before the classifier (an int
            means one layer). ``None`` takes the model's default: ``(64,)`` for
            vgg_small, ``()`` for resnet_small, ``(512, 256)`` for vgg19/resnet50.
        dropout: Dropout rate after each hidden dense layer; ``None`` takes the
            model's default (0.25 for vgg_small, else 0).
        seed: Seeds this model's own initializers (and dropout) so the same seed
            builds the same model whatever the global state. The random init of a
            paper model's base (``weights=None``) follows the global seed instead:
            call ``cielib.keras.seed_everything`` first, as the training code does.
        **options: Architecture options of quick models (``ModelSpec.options``):
            vgg_small ``width`` (16), ``blocks`` (2); resnet_small ``width`` (16),
            ``blocks_per_stage`` (1).

    Returns:
        A ``keras.Model`` (``tf_keras``) whose last layer is ``predictions``.

    Raises:
        ValueError: a bad argument. FileNotFoundError: weights file missing.
    """
    spec = get_spec(name)
    shape = _check_input_shape(spec, input_shape)
    if not is_int(n_classes) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
    allowed = dict(spec.options)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for {name!r}; allowed: {sorted(allowed) or 'none'}"
        )
    if not spec.supports_imagenet and weights is not None:
        raise ValueError(
            f"{name!r} is trained from scratch: weights must be None, got {weights!r}"
        )
    return spec.builder(
        input_shape=shape,
        n_classes=int(n_classes),
        weights=weights,
        dense_units=dense_units,
        dropout=dropout,
        seed=seed,
        **options,
    )


def count_params(model) -> dict[str, int]:
    """Trainable, non-trainable and total parameter counts of ``model``."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return {
        "trainable": trainable,
        "non_trainable": non_trainable,
        "total": trainable + non_trainable,
    }
