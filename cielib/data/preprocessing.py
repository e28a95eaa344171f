"""The one place where ``uint8`` images become a model's ``float32`` input."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cielib.checks import check_choice

#: Allowed values of ``preprocess(scaling=...)``.
SCALINGS = ("unit", "caffe")
#: BGR channel means that ``keras.applications`` subtract in 'caffe' mode.
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
#: ITU-R BT.601 luma weights for RGB -> grayscale.
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)
#: Largest zero border (per side, in pixels) that :func:`preprocess` adds instead of resizing.
MAX_PAD = 8


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights for bilinear resampling with half-pixel centres."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def _resize_bilinear(x: np.ndarray, h: int, w: int) -> np.ndarray:
    i0, i1, wy = _bilinear_taps(x.shape[1], h)
    wy = wy[None, :, None, None]
    x = x[:, i0] * (1.0 - wy) + x[:, i1] * wy
    j0, j1, wx = _bilinear_taps(x.shape[2], w)
    wx = wx[None, None, :, None]
    return x[:, :, j0] * (1.0 - wx) + x[:, :, j1] * wx


def _pad_margins(src: tuple[int, int], dst: tuple[int, int]) -> tuple[int, int] | None:
    """Per-side (top, left) zero borders if padding applies, else None."""
    dh, dw = dst[0] - src[0], dst[1] - src[1]
    if dh < 0 or dw < 0 or dh % 2 or dw % 2 or dh // 2 > MAX_PAD or dw // 2 > MAX_PAD:
        return None
    return dh // 2, dw // 2


def preprocess(x: np.ndarray, *, input_shape: Sequence[int], scaling: str = "unit",
               chunk_size: int = 2048) -> np.ndarray:
    """Turn ``uint8`` NHWC images into a model's ``float32`` input; the one place this happens.

    Keeping every conversion here means a dataset and a model never disagree silently
    about size, channels or scale. Steps, in order:

    1. Channels: 3 -> 1 by luminance (0.299 R + 0.587 G + 0.114 B); 1 -> 3 by repeating.
    2. Size: if the target is larger by an even margin of at most :data:`MAX_PAD` (8)
       pixels per side in both dimensions, the image is centred on a black (zero)
       border, so nothing is interpolated (28x28 -> 32x32). Otherwise it is resized
       with bilinear interpolation (half-pixel centres, no antialiasing, as
       ``tf.image.resize`` does by default), e.g. 8x8 -> 32x32 or 32x32 -> 224x224.
       The border is added before scaling, so it is black in every scaling mode.
    3. Scaling: ``"unit"`` divides by 255; ``"caffe"`` reproduces
       ``keras.applications.vgg19/resnet50.preprocess_input``: RGB -> BGR, then
       subtract the ImageNet means (103.939, 116.779, 123.68) from the 0..255 values.

    Images are processed in chunks, so only the output is allocated in full.

    Args:
        x: ``uint8`` images ``(N, H, W, C)`` with C of 1 or 3.
        input_shape: Target ``(H, W, C)``, C of 1 or 3 (3 for ``"caffe"``).
        scaling: One of :data:`SCALINGS`.
        chunk_size: Images processed at once.

    Returns:
        ``float32`` array of shape ``(N, *input_shape)``.

    Raises:
        ValueError: Unknown ``scaling``, bad shapes, non-``uint8`` input, or a channel
            conversion that is not 1 <-> 3.
    """
    check_choice(scaling, SCALINGS, what="scaling")
    target = tuple(int(v) for v in input_shape)
    if len(target) != 3 or min(target) < 1:
        raise ValueError(f"input_shape must be (H, W, C), got {tuple(input_shape)!r}")
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {x.shape}")
    if x.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 0..255 (got {x.dtype}); preprocess raw images only once"
        )
    h, w, c = target
    c_in = x.shape[3]
    if c_in not in (1, 3) or c not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {c_in} -> {c}")
    if scaling == "caffe" and c != 3:
        raise ValueError(f"scaling 'caffe' needs 3 channels, input_shape has {c}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")

    same_size = x.shape[1:3] == (h, w)
    margins = None if same_size else _pad_margins(x.shape[1:3], (h, w))
    luminance = np.asarray(LUMINANCE_WEIGHTS, dtype=np.float32)
    means = np.asarray(CAFFE_BGR_MEANS, dtype=np.float32)

    out = np.empty((len(x), h, w, c), dtype=np.float32)
    for start in range(0, len(x), chunk_size):
        f = x[start:start + chunk_size].astype(np.float32)
        if c_in == 3 and c == 1:
            f = (f @ luminance)[..., None]
        if same_size:
            pass
        elif margins is not None:
            top, left = margins
            padded = np.zeros((len(f), h, w, f.shape[3]), dtype=np.float32)
            padded[:, top:top + f.shape[1], left:left + f.shape[2]] = f
            f = padded
        else:
            f = _resize_bilinear(f, h, w)
        if f.shape[3] == 1 and c == 3:
            f = np.broadcast_to(f, (*f.shape[:3], 3))  # repeated lazily, written once below
        dest = out[start:start + len(f)]
        if scaling == "unit":
            np.divide(f, np.float32(255.0), out=dest)
        else:
            np.subtract(f[..., ::-1], means, out=dest)
    return out
