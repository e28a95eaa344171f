"""sha256 digests, in one place: run identity, notebook sources, store integrity, archives.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large archives need no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def bytes_sha256(data: bytes) -> str:
    """Hex sha256 of bytes already in memory (a notebook source that was read once)."""
    return hashlib.sha256(data).hexdigest()
