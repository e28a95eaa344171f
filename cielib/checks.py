"""Argument checks that several modules need, written once.

Every check raises ``ValueError`` naming the argument, the bad value and what is
allowed, and returns the value in the form the caller works with (``int``, an
``int64`` array, ...), so a caller checks at the boundary and then trusts its input.
This module imports only NumPy.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "as_labels",
    "check_choice",
    "check_int",
    "check_n_classes",
    "check_positive_int",
    "is_int",
    "is_real",
    "resolve_n_classes",
]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), booleans excluded."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """Whether ``value`` is a real number (ints included), booleans excluded."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` if it is an integer >= 1.

    Raises:
        ValueError: "``name`` must be a positive int, got ``value``".
    """
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_int(name: str, value: Any, *, minimum: int) -> int:
    """``value`` as an ``int`` if it is an integer >= ``minimum``.

    Raises:
        ValueError: "``name`` must be an int >= ``minimum``, got ``value``".
    """
    if not is_int(value) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _same_choice(value: Any, choice: Any) -> bool:
    # True == 1 and np.str_("a") == "a" in Python; only the second is the same choice.
    if isinstance(value, bool) != isinstance(choice, bool):
        return False
    if isinstance(value, str) != isinstance(choice, str):
        return False
    try:
        return bool(value == choice)
    except (TypeError, ValueError):  # arrays and other values that compare oddly
        return False


def check_choice(value: Any, allowed: Iterable[Any], *, what: str) -> Any:
    """``value`` if it is one of ``allowed``.

    A string never matches a non-string choice and a bool never matches a number, so
    ``True`` is not taken for ``1``.

    Args:
        value: The value given.
        allowed: The allowed values, in the order the message lists them.
        what: What the value names, e.g. ``"technique"``.

    Raises:
        ValueError: "unknown ``what`` ``value``; allowed: a, b, c".
    """
    allowed = tuple(allowed)
    if not any(_same_choice(value, choice) for choice in allowed):
        raise ValueError(
            f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}"
        )
    return value


# --------------------------------------------------------------------------- class labels


def as_labels(values: Any, name: str, *, ndim: int = 1) -> np.ndarray:
    """``values`` as an ``int64`` array of non-negative class ids of rank ``ndim``.

    Booleans and floats are refused rather than cast: a float array usually means
    probabilities, logits or one-hot rows were passed where argmax labels belong, and
    truncating them would give plausible-looking nonsense. An empty list (which NumPy
    makes float) is accepted as empty labels, so the caller can say it is empty.

    Args:
        values: Class ids, any integer dtype.
        name: The argument's name, for messages.
        ndim: 1 for one label per image, 2 for ``(n_models, n_images)`` (one row of
            predictions per model).

    Raises:
        ValueError: bool or non-integer dtype, wrong rank, or a negative label.
    """
    arr = np.asarray(values)
    if arr.size == 0 and arr.dtype.kind == "f":
        arr = arr.astype(np.int64)
    if arr.dtype.kind == "b":
        raise ValueError(
            f"{name} must hold integer class ids; got dtype bool (booleans are not "
            "class ids; pass e.g. argmax labels as an integer array)"
        )
    if arr.dtype.kind not in "iu":
        hint = (
            " (probabilities, logits or one-hot rows? take argmax(axis=1) first)"
            if arr.dtype.kind == "f" else ""
        )
        raise ValueError(
            f"{name} must hold integer class ids (any integer dtype); got dtype "
            f"{arr.dtype}{hint}"
        )
    if arr.ndim != ndim:
        want = "1-D (one label per image)" if ndim == 1 else "2-D (n_models, n_images)"
        raise ValueError(f"{name} must be {want}; got shape {arr.shape}")
    if arr.size:
        lo = int(arr.min())
        if lo < 0:
            raise ValueError(f"{name} contains negative label {lo}; class ids must be >= 0")
    return arr.astype(np.int64, copy=False)


def check_n_classes(n_classes: Any) -> int | None:
    """``n_classes`` as an ``int`` >= 1, or ``None`` (infer it from the labels).

    Raises:
        ValueError: not None and not a positive integer.
    """
    if n_classes is None:
        return None
    if not is_int(n_classes) or n_classes < 1:
        raise ValueError(
            f"n_classes must be a positive integer, got {n_classes!r} (or None to "
            "infer it from the labels)"
        )
    return int(n_classes)


def resolve_n_classes(arrays: Mapping[str, np.ndarray], n_classes: int | None) -> int:
    """The number of classes: ``n_classes`` if given, else the largest label + 1.

    Args:
        arrays: Label arrays (from :func:`as_labels`) by argument name, at least one
            of them non-empty when ``n_classes`` is None.
        n_classes: From :func:`check_n_classes`.

    Raises:
        ValueError: an array holds a label >= ``n_classes`` (the message names it).
    """
    maxima = {name: int(a.max()) for name, a in arrays.items() if a.size}
    if n_classes is None:
        return max(maxima.values()) + 1
    for name, hi in maxima.items():
        if hi >= n_classes:
            raise ValueError(
                f"{name} contains label {hi}, but n_classes={n_classes}; class ids "
                f"must lie in [0, {n_classes})"
            )
    return n_classes
