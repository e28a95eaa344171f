"""The paper profile's models: a frozen Keras VGG-19 / ResNet-50 base with a new dense head.

Also where their weights come from: the Keras cache (``weights="imagenet"``, never
downloaded) or a local ``.h5`` file, and :func:`base_model`, a view of the frozen base.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cielib import keras as _lazy  # tf_keras only inside functions: importing stays TF-free
from cielib.models._parts import PREDICTIONS, check_dense_units, check_dropout, dense_head, Seeder


#: Name of the layer that upsamples the images to the model's ``input_size``.
INPUT_RESIZE = "input_resize"
#: Name of the first head layer of a paper model (everything before it is the base).
_HEAD_START = ("head_flatten", "head_pool")

_IMAGENET_NOTOP_FILES = {
    "vgg19": "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
_WEIGHT_SUFFIXES = (".h5", ".hdf5")
_APP_NAMES = {"vgg19": "VGG19", "resnet50": "ResNet50"}


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
    from cielib.models import get_spec  # the registry imports this module; ask it at call time

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
    input_size: int = 0,
):
    dense_units = check_dense_units(dense_units, (512, 256))
    dropout = check_dropout(dropout, 0.0, dense_units)
    if isinstance(weights, str) and weights == "imagenet" and input_shape[2] != 3:
        raise ValueError(
            f"weights='imagenet' needs 3 input channels, got input_shape {input_shape!r}"
        )
    kind, path = _resolve_weights(name, weights)
    seeder = Seeder(seed)
    keras = _lazy.keras
    app = getattr(keras.applications, _APP_NAMES[name])
    # The local file goes straight to the constructor, so Keras never downloads.
    inputs = None
    size = (input_size, input_size) if input_size else tuple(input_shape[:2])
    if size != tuple(input_shape[:2]):
        # The stated input resolution (README, "input resolution"): the images are
        # upsampled inside the model, as its first layer, so the data stay at their own
        # size everywhere else (the features stage, quantization, the CIE gallery).
        inputs = keras.Input(input_shape, name="input_image")
        resized = keras.layers.Resizing(*size, interpolation="bilinear", name=INPUT_RESIZE)(inputs)
    base = app(
        include_top=False,
        weights=str(path) if kind == "imagenet" else None,
        input_shape=(*size, input_shape[2]),
        input_tensor=None if inputs is None else resized,
    )
    for layer in base.layers:
        layer.trainable = False
    base.trainable = False
    x = base.output
    if name == "vgg19":
        x = keras.layers.Flatten(name="head_flatten")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = dense_head(
        x, n_classes=n_classes, dense_units=dense_units, dropout=dropout, seeder=seeder
    )
    model = keras.Model(base.input, outputs, name=name)
    if kind == "file":
        _load_weights_file(model, base, name, path)
    return model


def build_vgg19(**kwargs):
    """VGG-19 base (frozen) + Flatten + new dense head; see the module docstring."""
    return _build_paper_model("vgg19", **kwargs)


def build_resnet50(**kwargs):
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
