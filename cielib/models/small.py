"""The quick profile's models, trained from scratch: ``vgg_small`` and ``resnet_small``."""

from __future__ import annotations

from typing import Any

from cielib import keras as _lazy  # tf_keras only inside functions: importing stays TF-free
from cielib.checks import check_positive_int
from cielib.models._parts import _check_dense_units, _check_dropout, _dense_head, _Seeder


# ------------------------------------------------------------------ quick profile

# Every builder takes the keyword arguments of build_model (the ModelSpec.builder
# interface), so their signatures repeat on purpose. build_model has checked the shared
# ones (name, n_classes, seed, and weights: None for models trained from scratch).


def build_vgg_small(
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


def build_resnet_small(
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
