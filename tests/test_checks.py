"""Tests for cielib.checks and cielib.hashing: the shared argument checks and sha256."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from cielib import checks, hashing


@pytest.mark.parametrize("value, expected", [
    (3, True), (np.int64(3), True), (0, True), (-2, True),
    (True, False), (3.0, False), ("3", False), (None, False), (np.float32(1), False),
])
def test_is_int(value, expected):
    assert checks.is_int(value) is expected


@pytest.mark.parametrize("value, expected", [
    (0.5, True), (2, True), (np.float32(0.1), True), (False, False), ("0.5", False),
])
def test_is_real(value, expected):
    assert checks.is_real(value) is expected


def test_check_positive_int():
    assert checks.check_positive_int("width", np.int32(4)) == 4
    assert type(checks.check_positive_int("width", np.int32(4))) is int
    for bad in (0, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match=f"width must be a positive int, got {bad!r}"):
            checks.check_positive_int("width", bad)


def test_check_int():
    assert checks.check_int("warmup", 0, minimum=0) == 0
    with pytest.raises(ValueError, match="warmup must be an int >= 0, got -1"):
        checks.check_int("warmup", -1, minimum=0)
    with pytest.raises(ValueError, match="epochs must be an int >= 1, got 2.5"):
        checks.check_int("epochs", 2.5, minimum=1)


def test_check_choice_names_value_and_allowed():
    assert checks.check_choice("b", ("a", "b"), what="letter") == "b"
    with pytest.raises(ValueError, match=r"^unknown letter 'c'; allowed: a, b$"):
        checks.check_choice("c", ("a", "b"), what="letter")
    # Types never blur: a bool is not the int 1, a number is not a string, and
    # unhashable or array values are refused with the same message.
    with pytest.raises(ValueError, match="unknown level True; allowed: 1, 2"):
        checks.check_choice(True, (1, 2), what="level")
    with pytest.raises(ValueError, match="unknown letter 1"):
        checks.check_choice(1, ("1",), what="letter")
    for bad in (["a"], np.array(["a", "b"]), {"a": 1}):
        with pytest.raises(ValueError, match="unknown letter"):
            checks.check_choice(bad, ("a", "b"), what="letter")
    assert checks.check_choice(None, (None, "fdr_bh"), what="correction") is None


def test_as_labels_accepts_any_integer_dtype():
    out = checks.as_labels(np.array([0, 3, 2], dtype=np.uint8), "y_true")
    assert out.dtype == np.int64 and out.tolist() == [0, 3, 2]
    assert checks.as_labels([], "y_true").shape == (0,)  # an empty list is empty labels
    assert checks.as_labels([[0, 1], [1, 1]], "preds", ndim=2).shape == (2, 2)


@pytest.mark.parametrize("values, ndim, message", [
    ([True, False], 1, "y must hold integer class ids; got dtype bool"),
    ([0.0, 1.0], 1, r"y must hold integer class ids \(any integer dtype\); got dtype float64 "
                    r"\(probabilities, logits or one-hot rows\? take argmax"),
    (["a"], 1, "got dtype <U1$"),
    ([[0, 1]], 1, r"y must be 1-D \(one label per image\); got shape \(1, 2\)"),
    ([0, 1], 2, r"y must be 2-D \(n_models, n_images\); got shape \(2,\)"),
    ([0, -2, 1], 1, "y contains negative label -2; class ids must be >= 0"),
])
def test_as_labels_refuses(values, ndim, message):
    with pytest.raises(ValueError, match=message):
        checks.as_labels(values, "y", ndim=ndim)


def test_n_classes_checks():
    assert checks.check_n_classes(None) is None
    assert checks.check_n_classes(np.int64(10)) == 10
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match=f"n_classes must be a positive integer, got {bad!r}"):
            checks.check_n_classes(bad)
    y, p = np.array([0, 4]), np.array([1, 7])
    assert checks.resolve_n_classes({"y_true": y, "y_pred": p}, None) == 8  # planted max 7
    assert checks.resolve_n_classes({"y_true": y, "y_pred": p}, 9) == 9
    with pytest.raises(ValueError, match=r"y_pred contains label 7, but n_classes=5; "
                                         r"class ids must lie in \[0, 5\)"):
        checks.resolve_n_classes({"y_true": y, "y_pred": p}, 5)


def test_file_sha256_matches_hashlib_across_chunks(tmp_path):
    payload = np.random.default_rng(0).bytes(3 * 1000 + 7)
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    expected = hashlib.sha256(payload).hexdigest()
    assert hashing.file_sha256(path) == expected
    assert hashing.file_sha256(str(path), chunk_size=1000) == expected  # 4 chunks, last short
    (tmp_path / "empty").write_bytes(b"")
    assert hashing.file_sha256(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
