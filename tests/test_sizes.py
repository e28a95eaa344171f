"""Sizes: zeros compress, random bytes do not; ratios are checked."""

import os

import pytest

from cielib import sizes


def test_zeros_compress_far_better_than_noise(tmp_path):
    zeros, noise = tmp_path / "z", tmp_path / "n"
    zeros.write_bytes(bytes(100_000))
    noise.write_bytes(os.urandom(100_000))
    z, n = sizes.file_sizes(zeros), sizes.file_sizes(noise)
    assert z["bytes"] == n["bytes"] == 100_000
    assert z["gzip_bytes"] < 1_000 < 99_000 < n["gzip_bytes"]


def test_gzip_is_deterministic():
    assert sizes.gzip_bytes(b"abc" * 1000) == sizes.gzip_bytes(b"abc" * 1000)


def test_ratio_and_errors():
    assert sizes.compression_ratio(400, 100) == 4.0
    with pytest.raises(ValueError, match="positive"):
        sizes.compression_ratio(400, 0)
    with pytest.raises(ValueError, match="gzip level must be 0..9, got 11"):
        sizes.gzip_bytes(b"x", level=11)
