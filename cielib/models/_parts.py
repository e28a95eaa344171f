"""What every architecture shares: :class:`ModelSpec`, seeded initializers, the
checks of the head options, and the dense head ending in ``predictions``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cielib import keras as _lazy  # tf_keras only inside functions: importing stays TF-free
from cielib.checks import is_int, is_real


#: Name of the classifier layer every model ends with.
PREDICTIONS = "predictions"


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


class Seeder:
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


def check_input_shape(spec: ModelSpec, input_shape: Any) -> tuple[int, int, int]:
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


def check_dense_units(value: Any, default: tuple[int, ...]) -> tuple[int, ...]:
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


def check_dropout(value: Any, default: float, dense_units: tuple[int, ...]) -> float:
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


def dense_head(
    x, *, n_classes: int, dense_units: tuple[int, ...], dropout: float, seeder: Seeder
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
