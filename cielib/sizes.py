"""Artefact sizes: raw bytes and gzip-compressed bytes.

Pruning leaves a model's tensors dense (zeros are stored like any other value), so its
file is no smaller until it is compressed; quantization shrinks the file itself. Both
numbers together show which technique saves what.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import gzip
from pathlib import Path


def gzip_bytes(data: bytes, *, level: int = 9) -> int:
    """Size of ``data`` after gzip at ``level`` (9: as small as gzip gets)."""
    if not 0 <= level <= 9:
        raise ValueError(f"gzip level must be 0..9, got {level}")
    return len(gzip.compress(data, compresslevel=level, mtime=0))


def file_sizes(path: str | Path, *, level: int = 9) -> dict[str, int]:
    """``{"bytes": raw size, "gzip_bytes": gzip-compressed size}`` of one file."""
    data = Path(path).read_bytes()
    return {"bytes": len(data), "gzip_bytes": gzip_bytes(data, level=level)}


def compression_ratio(reference_bytes: int, bytes_: int) -> float:
    """How many times smaller than the reference (2.0 = half the size)."""
    if bytes_ <= 0 or reference_bytes <= 0:
        raise ValueError(f"sizes must be positive, got {reference_bytes} and {bytes_}")
    return reference_bytes / bytes_


__all__ = ["gzip_bytes", "file_sizes", "compression_ratio"]
