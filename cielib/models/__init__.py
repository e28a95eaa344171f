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

Layout: ``_parts`` (:class:`ModelSpec`, seeded initializers, the dense head),
``small`` (the quick profile), ``paper`` (the paper profile and its weights); the
registry and :func:`build_model` live here. Import from ``cielib.models``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from cielib.checks import check_choice, is_int
from cielib.models._parts import PREDICTIONS, ModelSpec, check_input_shape
from cielib.models.paper import (
    INPUT_RESIZE,
    build_resnet50,
    build_vgg19,
    base_model,
    imagenet_weights_path,
    keras_cache_dir,
)
from cielib.models.small import build_resnet_small, build_vgg_small
from cielib.models.surgery import assemble, split_frozen_base

__all__ = [
    "INPUT_RESIZE",
    "MODELS",
    "ModelSpec",
    "assemble",
    "available_models",
    "base_model",
    "build_for",
    "build_model",
    "count_params",
    "get_spec",
    "imagenet_weights_path",
    "input_shape_for",
    "keras_cache_dir",
    "preprocessor",
    "split_frozen_base",
]


# ------------------------------------------------------------------ the registry

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="vgg_small",
            description="VGG-style CNN (2 blocks of 2 conv, no BatchNorm), from scratch",
            builder=build_vgg_small,
            preprocessing="unit",
            default_input_shape=None,
            min_input_size=8,
            supports_imagenet=False,
            options=(("width", 16), ("blocks", 2)),
        ),
        ModelSpec(
            name="resnet_small",
            description="ResNet-style CNN (3 stages of basic blocks, BatchNorm), from scratch",
            builder=build_resnet_small,
            preprocessing="unit",
            default_input_shape=None,
            min_input_size=8,
            supports_imagenet=False,
            options=(("width", 16), ("blocks_per_stage", 1), ("stem_stride", 1)),
        ),
        ModelSpec(
            name="vgg19",
            description="Keras VGG-19 base (frozen) + 3 new dense layers, as in the paper",
            builder=build_vgg19,
            preprocessing="caffe",
            default_input_shape=(32, 32, 3),
            min_input_size=32,
            supports_imagenet=True,
            frozen_base=True,
        ),
        ModelSpec(
            name="resnet50",
            description="Keras ResNet-50 base (frozen) + 3 new dense layers, as in the paper",
            builder=build_resnet50,
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
    input_size: int = 0,
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
        input_size: Paper models only: the resolution the pretrained base sees. ``0``
            (default) feeds the images at ``input_shape``; ``224`` upsamples them
            (bilinear, the model's first layer ``input_resize``) to 224x224, the
            resolution the ImageNet bases were trained at. The model still takes
            ``input_shape`` images, so data, quantization and analyses are unchanged.
        **options: Architecture options of quick models (``ModelSpec.options``):
            vgg_small ``width`` (16), ``blocks`` (2); resnet_small ``width`` (16),
            ``blocks_per_stage`` (1).

    Returns:
        A ``keras.Model`` (``tf_keras``) whose last layer is ``predictions``.

    Raises:
        ValueError: a bad argument. FileNotFoundError: weights file missing.
    """
    spec = get_spec(name)
    shape = check_input_shape(spec, input_shape)
    if not is_int(n_classes) or n_classes < 2:
        raise ValueError(f"n_classes must be an int >= 2, got {n_classes!r}")
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")
    if not is_int(input_size) or input_size < 0 or (input_size and input_size < spec.min_input_size):
        raise ValueError(f"input_size must be 0 (the input as it is) or an int >= "
                         f"{spec.min_input_size} for {name!r}, got {input_size!r}")
    if input_size and not spec.supports_imagenet:
        raise ValueError(f"input_size={input_size!r} upsamples the input of a pretrained base; "
                         f"{name!r} has none (allowed for: "
                         f"{', '.join(n for n, s in MODELS.items() if s.supports_imagenet)})")
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
        **({"input_size": int(input_size)} if input_size else {}),
        **options,
    )


def input_shape_for(name: str, image_shape: Sequence[int]) -> tuple[int, int, int]:
    """The input shape ``name`` takes for images of ``image_shape``: the model's own
    default (the paper models': 32x32x3), else the images' shape."""
    return tuple(get_spec(name).default_input_shape or image_shape)  # type: ignore[return-value]


def preprocessor(name: str, input_shape: Sequence[int]) -> Callable[[np.ndarray], np.ndarray]:
    """The one preprocessing of ``name``'s input: ``uint8`` images to ``float32``
    ``input_shape`` arrays with the model's scaling (:func:`cielib.data.preprocess`)."""
    from cielib import data

    return partial(data.preprocess, input_shape=tuple(input_shape),
                   scaling=get_spec(name).preprocessing)


def build_for(name: str, dataset: Any, *, weights: str = "none", input_size: int = 0,
              model_options: dict[str, Any] | None = None
              ) -> tuple[Any, Callable[[np.ndarray], np.ndarray]]:
    """A task's model for ``dataset`` and the preprocessing of its images.

    What the training and features runs both do, so that they build the very same
    model (same call, same order of random draws after the run's seed).

    Args:
        name: One of :func:`available_models`.
        dataset: A :class:`cielib.data.Dataset` (its image shape and class count).
        weights: As the profiles write it: ``"none"``, ``"imagenet"`` or a path.
        input_size: See :func:`build_model`.
        model_options: Further keyword arguments of :func:`build_model`.

    Returns:
        ``(model, prep)``: the uncompiled model, and ``prep(uint8 images)`` giving its input.
    """
    input_shape = input_shape_for(name, dataset.image_shape)
    net = build_model(name, input_shape=input_shape, n_classes=dataset.n_classes,
                      weights=None if weights == "none" else weights, input_size=input_size,
                      **(model_options or {}))
    return net, preprocessor(name, input_shape)


def count_params(model) -> dict[str, int]:
    """Trainable, non-trainable and total parameter counts of ``model``."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return {
        "trainable": trainable,
        "non_trainable": non_trainable,
        "total": trainable + non_trainable,
    }
