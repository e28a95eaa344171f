"""Fashion-MNIST: the shipped class-balanced subset and the full idx files.

The subset (``fashion_mnist``, the quick profile's default) ships inside the package,
so it is always found. The full set (``fashion_mnist_full``) is read from idx files,
the MNIST format, which :func:`read_idx` parses without TensorFlow.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from cielib import paths
from cielib.data._common import (
    DataFormatError,
    Dataset,
    DatasetInfo,
    keras_dataset_dirs,
    not_found,
    unique_paths,
    user_dir,
)

#: Debian's ``dataset-fashion-mnist`` package installs the idx files here.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: The shipped, class-balanced subset (built by ``scripts/build_fashion_mnist_subset.py``).
FASHION_MNIST_SUBSET = paths.DATA_FILES / "fashion_mnist_subset.npz"

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


# --------------------------------------------------------------------------- idx (MNIST format)

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_IMAGES_MAGIC = 2051  # uint8, 3 dimensions (N, rows, cols)
IDX_LABELS_MAGIC = 2049  # uint8, 1 dimension (N,)


def read_idx(path: str | os.PathLike, *, expected_magic: int | None = None) -> np.ndarray:
    """Read an idx file (the MNIST format), gzip-compressed or not.

    Parsed here rather than through Keras so the full Fashion-MNIST loads without
    TensorFlow. The header is a big-endian magic number (two zero bytes, a type code,
    the number of dimensions) followed by one big-endian uint32 per dimension.

    Args:
        path: File to read; compression is detected from its first bytes.
        expected_magic: If given (2051 for images, 2049 for labels), the file's magic
            number must equal it.

    Raises:
        DataFormatError: Bad magic number, unknown type, or a size that does not match.
    """
    path = Path(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        opener = gzip.open if gz else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataFormatError(f"{path}: cannot read idx file ({e})") from e
    if len(raw) < 4:
        raise DataFormatError(f"{path}: too short to be an idx file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if expected_magic is not None and magic != expected_magic:
        raise DataFormatError(
            f"{path}: idx magic number is {magic}, expected {expected_magic} "
            f"({'images' if expected_magic == IDX_IMAGES_MAGIC else 'labels'} file); "
            "is this the right file?"
        )
    zero, type_code, ndim = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or type_code not in _IDX_DTYPES or ndim == 0:
        raise DataFormatError(f"{path}: not an idx file (magic number {magic})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: idx header truncated")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[type_code]
    expected_bytes = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected_bytes:
        raise DataFormatError(
            f"{path}: idx dimensions {dims} need {expected_bytes} data bytes, "
            f"found {len(raw) - header}"
        )
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


# --------------------------------------------------------------------------- Fashion-MNIST

FASHION_MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_FASHION_LICENCE = (
    "Fashion-MNIST, MIT licence, Copyright (c) 2017 Zalando SE. Cite: H. Xiao, K. Rasul "
    "and R. Vollgraf, 'Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine "
    "Learning Algorithms', arXiv:1708.07747 (2017)."
)


def _locate_subset(data_dir: Path | None) -> tuple[str | None, list[str]]:
    p = FASHION_MNIST_SUBSET
    return (str(p) if p.is_file() else None), [str(p)]


def _load_subset(data_dir: Path | None, download: bool) -> Dataset:
    found, searched = _locate_subset(data_dir)
    if found is None:
        raise not_found(DATASETS["fashion_mnist"], searched)
    with np.load(found, allow_pickle=False) as z:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(z.files)
        if missing:
            raise DataFormatError(f"{found}: missing arrays {sorted(missing)}")
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return Dataset(
        name="fashion_mnist",
        x_train=arrays["x_train"],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"],
        y_test=arrays["y_test"].astype(np.int64),
        class_names=FASHION_MNIST_CLASSES,
        source=f"shipped class-balanced Fashion-MNIST subset {found}",
    )


def _fashion_file(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _fashion_dirs(data_dir: Path | None) -> list[Path]:
    dirs = []
    user = user_dir(data_dir)
    if user is not None:
        dirs += [user, user / "fashion-mnist"]
    dirs.append(DEBIAN_FASHION_MNIST_DIR)
    dirs += [d / "fashion-mnist" for d in keras_dataset_dirs()]
    return unique_paths(dirs)


def _locate_fashion_full(data_dir: Path | None) -> tuple[str | None, list[str]]:
    searched = []
    for d in _fashion_dirs(data_dir):
        searched.append(f"{d}/")
        if all(_fashion_file(d, s) is not None for s in FASHION_MNIST_FILES.values()):
            return str(d), searched
    return None, searched


def _load_fashion_full(data_dir: Path | None, download: bool) -> Dataset:
    found, searched = _locate_fashion_full(data_dir)
    if found is None:
        raise not_found(DATASETS["fashion_mnist_full"], searched, download_requested=download)
    d = Path(found)
    files = {k: _fashion_file(d, s) for k, s in FASHION_MNIST_FILES.items()}
    arrays = {}
    for split in ("train", "test"):
        x = read_idx(files[f"x_{split}"], expected_magic=IDX_IMAGES_MAGIC)
        y = read_idx(files[f"y_{split}"], expected_magic=IDX_LABELS_MAGIC)
        if len(x) != len(y):
            raise DataFormatError(
                f"{d}: {len(x)} {split} images but {len(y)} {split} labels"
            )
        arrays[f"x_{split}"] = x[..., None]
        arrays[f"y_{split}"] = y.astype(np.int64)
    return Dataset(name="fashion_mnist_full", class_names=FASHION_MNIST_CLASSES,
                   source=f"Fashion-MNIST idx files in {d}", **arrays)

#: This module's entries of the registry, :data:`cielib.data.DATASETS`.
DATASETS: dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        description="Fashion-MNIST class-balanced subset shipped with cielib "
                    "(600 train + 200 test images per class, 28x28 grayscale)",
        n_classes=10, image_shape=(28, 28, 1),
        loader=_load_subset, locator=_locate_subset, licence=_FASHION_LICENCE,
        how_to_get="reinstall cielib, or rebuild the subset with "
                   "scripts/build_fashion_mnist_subset.py",
    ),
    "fashion_mnist_full": DatasetInfo(
        name="fashion_mnist_full",
        description="Fashion-MNIST, all 60,000 train + 10,000 test images (idx files)",
        n_classes=10, image_shape=(28, 28, 1),
        loader=_load_fashion_full, locator=_locate_fashion_full, licence=_FASHION_LICENCE,
        how_to_get="a directory qualifies when it holds all of "
                   + ", ".join(f"{s}.gz" for s in FASHION_MNIST_FILES.values())
                   + ". On Debian/Ubuntu: apt-get install dataset-fashion-mnist; otherwise "
                   "copy those files from "
                   "https://github.com/zalandoresearch/fashion-mnist into the data directory",
    ),
}
