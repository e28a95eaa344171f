"""Stratified, seeded hold-out splits."""

from __future__ import annotations

import numpy as np


def validation_split(x: np.ndarray, y: np.ndarray, *, fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a stratified, seeded fraction of each class.

    Stratifying keeps every class in the validation set in its original proportion,
    which matters here because the project measures per-class effects. Each class gives
    ``round(fraction * n_c)`` examples (half rounds up), but always keeps at least one
    for training. Both outputs keep the input order, so the split depends only on the
    seed and the labels.

    Args:
        x: Inputs, first axis indexes examples.
        y: 1-D integer labels, same length as ``x``.
        fraction: Share held out, in ``[0, 1)``; ``0.0`` means no validation set and
            returns empty validation arrays with the right dtypes and trailing shapes.
        seed: Seed for ``np.random.default_rng``.

    Returns:
        ``(x_train, y_train, x_val, y_val)``.

    Raises:
        ValueError: ``fraction`` outside ``[0, 1)``, or ``x`` and ``y`` differ in length.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)) \
            or not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"fraction must be a number in [0, 1), got {fraction!r}")
    y = np.asarray(y)
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(
            f"x and y must have the same length and y must be 1-D; got {len(x)} inputs "
            f"and labels of shape {y.shape}"
        )
    rng = np.random.default_rng(seed)
    is_val = np.zeros(len(y), dtype=bool)
    if fraction > 0:
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            k = min(int(np.floor(fraction * len(idx) + 0.5)), len(idx) - 1)
            is_val[rng.permutation(idx)[:k]] = True
    return x[~is_val], y[~is_val], x[is_val], y[is_val]

