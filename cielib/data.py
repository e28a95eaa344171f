"""Datasets: find, verify, load and preprocess the images every experiment uses.

Nothing here touches the network unless a caller passes ``download=True`` (and then only
for CIFAR, whose archives have published checksums). The default dataset is a
class-balanced Fashion-MNIST subset shipped inside the package, so the quick profile runs
anywhere. Larger datasets are searched for, in a fixed and reported order, in a
user-given directory, in system locations and in the Keras cache; when they are missing,
:class:`DataNotFoundError` lists every place that was searched and how to provide them.

Every loader returns a :class:`Dataset` with the same conventions (images ``uint8``
NHWC, labels ``int64``), and :func:`preprocess` is the single place where those images
become a model's input. This module never imports TensorFlow, so planning and tests stay
fast.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cielib import paths

__all__ = [
    "CHECKSUMS",
    "DATASETS",
    "DEFAULT_DATASET",
    "ENV_DATA_DIR",
    "SCALINGS",
    "ChecksumError",
    "DataFormatError",
    "DataNotFoundError",
    "Dataset",
    "DatasetInfo",
    "available_datasets",
    "download_archive",
    "load_dataset",
    "locate_dataset",
    "preprocess",
    "read_idx",
    "require_dataset",
    "sha256_file",
    "validation_split",
]

#: Environment variable naming a directory to search first (after ``data_dir=``).
ENV_DATA_DIR = "CIELIB_DATA_DIR"
DEFAULT_DATASET = "fashion_mnist"

#: Debian's ``dataset-fashion-mnist`` package installs the idx files here.
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: The shipped, class-balanced subset (built by ``scripts/build_fashion_mnist_subset.py``).
FASHION_MNIST_SUBSET = paths.DATA_FILES / "fashion_mnist_subset.npz"

#: Published sha256 digests of the CIFAR archives, keyed by their canonical file name.
#: Any copy of an archive (whatever it is called on disk) must match before it is read.
CHECKSUMS: dict[str, str] = {
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}

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

#: Allowed values of ``preprocess(scaling=...)``.
SCALINGS = ("unit", "caffe")
#: BGR channel means that ``keras.applications`` subtract in 'caffe' mode.
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
#: ITU-R BT.601 luma weights for RGB -> grayscale.
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)
#: Largest zero border (per side, in pixels) that :func:`preprocess` adds instead of resizing.
MAX_PAD = 8

#: Fraction of scikit-learn's digits held out as the test split.
DIGITS_TEST_FRACTION = 0.2


# --------------------------------------------------------------------------- errors


class DataNotFoundError(FileNotFoundError):
    """A dataset is in none of the places searched.

    Its message lists every place, so users can see at once where to put the data.

    Attributes:
        dataset: The dataset name.
        searched: The paths that were checked, in search order.
    """

    def __init__(self, message: str, *, dataset: str | None = None,
                 searched: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.dataset = dataset
        self.searched = tuple(searched)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ChecksumError(ValueError):
    """A file's sha256 differs from the published one: it is corrupt or not the original.

    Attributes:
        path: The file that was checked.
        expected: The published sha256.
        actual: The sha256 of the file on disk.
    """

    def __init__(self, path: str | os.PathLike, expected: str, actual: str) -> None:
        super().__init__(str(path), expected, actual)
        self.path, self.expected, self.actual = str(path), expected, actual

    def __str__(self) -> str:
        return (
            f"sha256 mismatch for {self.path}: expected {self.expected}, got {self.actual}. "
            "The file is corrupt, truncated or not the original archive; delete it and "
            "provide a fresh copy (or pass --download)."
        )


class DataFormatError(ValueError):
    """A data file was found but is incomplete or not in the expected format."""


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test images of one dataset, in the project's single convention.

    Holding every dataset to one convention (``uint8`` NHWC images, ``int64`` labels)
    means models, metrics and :func:`preprocess` never special-case a source.

    Attributes:
        name: Registry name, e.g. ``"fashion_mnist"``.
        x_train: Training images, ``uint8``, shape ``(N, H, W, C)``; grayscale has C=1.
        y_train: Training labels, ``int64``, shape ``(N,)``.
        x_test: Test images, same layout as ``x_train``.
        y_test: Test labels.
        class_names: One human-readable name per class index.
        source: Where the arrays were loaded from, for provenance in reports.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
                raise ValueError(
                    f"{self.name}: x_{split} must be a uint8 array (N, H, W, C), got "
                    f"{getattr(x, 'dtype', type(x))} with shape {getattr(x, 'shape', None)}"
                )
            if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (len(x),):
                raise ValueError(
                    f"{self.name}: y_{split} must be an int64 array of shape ({len(x)},), got "
                    f"{getattr(y, 'dtype', type(y))} with shape {getattr(y, 'shape', None)}"
                )
            if y.size and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise ValueError(
                    f"{self.name}: y_{split} has labels outside 0..{len(self.class_names) - 1}"
                )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"{self.name}: train images {self.x_train.shape[1:]} and test images "
                f"{self.x_test.shape[1:]} differ in shape"
            )

    @property
    def n_classes(self) -> int:
        """Number of classes (the length of :attr:`class_names`)."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one image."""
        h, w, c = self.x_train.shape[1:]
        return (int(h), int(w), int(c))


# A locator returns (where the data was found or None, every place it searched).
Locator = Callable[[Path | None], tuple[str | None, list[str]]]
Loader = Callable[[Path | None, bool], Dataset]


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset before loading it.

    Attributes:
        name: Registry name.
        description: One line for help texts and reports.
        n_classes: Number of classes.
        image_shape: ``(H, W, C)`` of the stored images.
        loader: ``loader(data_dir, download) -> Dataset``.
        locator: ``locator(data_dir) -> (found or None, searched paths)``; never loads.
        licence: Licence and citation to quote wherever the data is used.
        downloadable: Whether ``download=True`` can fetch it.
        how_to_get: Advice printed when the data is missing.
    """

    name: str
    description: str
    n_classes: int
    image_shape: tuple[int, int, int]
    loader: Loader
    locator: Locator
    licence: str
    downloadable: bool = False
    how_to_get: str = ""


def available_datasets() -> list[str]:
    """Registry names, default first."""
    return list(DATASETS)


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}; allowed: {', '.join(available_datasets())}"
        )
    return DATASETS[name]


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None,
                 download: bool = False) -> Dataset:
    """Load a registered dataset.

    Args:
        name: One of :func:`available_datasets`.
        data_dir: Directory searched first; defaults to ``$CIELIB_DATA_DIR``.
        download: Allow fetching a missing dataset from its official URL (CIFAR only).
            This is the only way this module ever uses the network.

    CIFAR tarballs are checked against :data:`CHECKSUMS` before use. Extracted CIFAR
    folders cannot be checksummed (no digests are published for the single batches);
    their files are checked structurally instead and unpickled with an allow-list.

    Raises:
        ValueError: ``name`` is not registered.
        DataNotFoundError: The data is in none of the searched places.
        ChecksumError: An archive does not match its published sha256.
        DataFormatError: The data was found but is incomplete or malformed.
    """
    info = _info(name)
    return info.loader(_as_path(data_dir), bool(download))


def locate_dataset(name: str, *, data_dir: str | os.PathLike | None = None) -> str | None:
    """Where a dataset would be loaded from, or None; cheap enough for planning.

    It only checks that files exist: it never reads arrays, verifies checksums or
    downloads, so a planner can refuse a run before any work starts. The bundled
    datasets (``fashion_mnist``, ``digits``) are always found.
    """
    return _info(name).locator(_as_path(data_dir))[0]


def require_dataset(name: str, *, data_dir: str | os.PathLike | None = None,
                    download: bool = False) -> None:
    """Fail early, listing every place searched, unless a dataset can be loaded.

    ``download=True`` counts as success only for datasets that can be downloaded.

    Raises:
        ValueError: ``name`` is not registered.
        DataNotFoundError: Not found (and not downloadable, or ``download`` is False).
    """
    info = _info(name)
    found, searched = info.locator(_as_path(data_dir))
    if found is None and not (download and info.downloadable):
        raise _not_found(info, searched, download_requested=download)


def _not_found(info: DatasetInfo, searched: Sequence[str], *,
               download_requested: bool = False) -> DataNotFoundError:
    lines = [f"dataset {info.name!r} not found. Searched, in order:"]
    lines += [f"  - {p}" for p in searched]
    lines.append("To provide it:")
    lines.append(
        f"  - put the files in a directory and pass --data-dir DIR (data_dir=DIR), "
        f"or set the environment variable {ENV_DATA_DIR}=DIR;"
    )
    if info.downloadable:
        lines.append("  - or pass --download (download=True) to fetch the official archive;")
    elif download_requested:
        lines.append(f"  - --download is not supported for {info.name!r};")
    if info.how_to_get:
        lines.append(f"  - {info.how_to_get}")
    return DataNotFoundError("\n".join(lines), dataset=info.name, searched=searched)


# --------------------------------------------------------------------------- search paths


def _as_path(data_dir: str | os.PathLike | None) -> Path | None:
    return None if data_dir is None else Path(data_dir).expanduser()


def _user_dir(data_dir: Path | None) -> Path | None:
    """``data_dir`` if given, else ``$CIELIB_DATA_DIR`` if set and non-empty."""
    if data_dir is not None:
        return data_dir
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else None


def _keras_dataset_dirs() -> list[Path]:
    """Keras' dataset caches: ``$KERAS_HOME/datasets`` (Keras 3), ``~/.keras/datasets``.

    tf_keras ignores ``KERAS_HOME``, so the home cache is searched as well.
    """
    dirs = []
    env = os.environ.get("KERAS_HOME")
    if env:
        dirs.append(Path(env).expanduser() / "datasets")
    dirs.append(Path.home() / ".keras" / "datasets")
    return _unique(dirs)


def _unique(items: list[Path]) -> list[Path]:
    seen, out = set(), []
    for p in items:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def sha256_file(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so archives need no memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_size):
            h.update(block)
    return h.hexdigest()


def _verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected.lower():
        raise ChecksumError(path, expected, actual)


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
        raise _not_found(DATASETS["fashion_mnist"], searched)
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
    user = _user_dir(data_dir)
    if user is not None:
        dirs += [user, user / "fashion-mnist"]
    dirs.append(DEBIAN_FASHION_MNIST_DIR)
    dirs += [d / "fashion-mnist" for d in _keras_dataset_dirs()]
    return _unique(dirs)


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
        raise _not_found(DATASETS["fashion_mnist_full"], searched, download_requested=download)
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


# --------------------------------------------------------------------------- digits


def _locate_digits(data_dir: Path | None) -> tuple[str | None, list[str]]:
    where = "scikit-learn load_digits (bundled with scikit-learn)"
    return where, [where]


def _load_digits(data_dir: Path | None, download: bool) -> Dataset:
    from sklearn.datasets import load_digits  # lazy: sklearn import costs ~1 s

    bunch = load_digits()
    # 0..16 intensities -> 0..255 so every dataset shares one pixel range.
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    y = np.asarray(bunch.target, dtype=np.int64)
    x_tr, y_tr, x_te, y_te = validation_split(x, y, fraction=DIGITS_TEST_FRACTION, seed=0)
    return Dataset(
        name="digits", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        class_names=tuple(str(i) for i in range(10)),
        source=f"scikit-learn load_digits, stratified {1 - DIGITS_TEST_FRACTION:.0%}/"
               f"{DIGITS_TEST_FRACTION:.0%} train/test split, seed 0",
    )


# --------------------------------------------------------------------------- CIFAR


@dataclass(frozen=True)
class _CifarSpec:
    name: str
    archive: str            # canonical tarball name (key of CHECKSUMS)
    folder: str             # top-level folder inside the tarball
    url: str
    train_members: tuple[str, ...]
    test_member: str
    meta_member: str
    label_key: bytes
    names_key: bytes
    n_classes: int

    def tarball_names(self) -> tuple[str, ...]:
        # canonical; tf_keras' cache name; Keras 3's cache name (no extension)
        return (self.archive, f"{self.folder}.tar.gz", f"{self.folder}-target_archive")

    def folder_paths(self) -> tuple[str, ...]:
        # extracted by hand or by tf_keras; extracted by Keras 3
        return (self.folder, f"{self.folder}-target/{self.folder}")


_CIFAR = {
    "cifar10": _CifarSpec(
        name="cifar10", archive="cifar-10-python.tar.gz", folder="cifar-10-batches-py",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        train_members=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_member="test_batch", meta_member="batches.meta",
        label_key=b"labels", names_key=b"label_names", n_classes=10,
    ),
    "cifar100": _CifarSpec(
        name="cifar100", archive="cifar-100-python.tar.gz", folder="cifar-100-python",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        train_members=("train",), test_member="test", meta_member="meta",
        label_key=b"fine_labels", names_key=b"fine_label_names", n_classes=100,
    ),
}
_CIFAR_LICENCE = (
    "CIFAR-{n}: A. Krizhevsky, 'Learning Multiple Layers of Features from Tiny Images', "
    "technical report, University of Toronto (2009); cite the report when using the data."
)


def _cifar_roots(data_dir: Path | None) -> list[Path]:
    user = _user_dir(data_dir)
    return _unique(([user] if user is not None else []) + _keras_dataset_dirs())


def _locate_cifar(spec: _CifarSpec, data_dir: Path | None) -> tuple[str | None, list[str]]:
    """First tarball, else extracted folder, in each root (tarballs can be verified)."""
    searched = []
    for root in _cifar_roots(data_dir):
        for name in spec.tarball_names():
            p = root / name
            searched.append(str(p))
            if p.is_file():
                return str(p), searched
        for name in spec.folder_paths():
            p = root / name
            searched.append(f"{p}/")
            if p.is_dir():
                return str(p), searched
    return None, searched


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles only what CIFAR batches contain: dicts, lists, bytes and numpy arrays.

    Extracted folders are not checksummed, and a plain ``pickle.load`` would run
    whatever code a tampered file names.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _unpickle(f: BinaryIO, where: str) -> Any:
    try:
        # The batches were pickled by Python 2: keys and strings come back as bytes.
        return _SafeUnpickler(f, encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable
        raise DataFormatError(f"{where}: not a readable CIFAR pickle ({e})") from e


def _batch_arrays(obj: Any, spec: _CifarSpec, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(obj, dict) or b"data" not in obj or spec.label_key not in obj:
        keys = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise DataFormatError(
            f"{where}: malformed CIFAR batch: need keys b'data' and {spec.label_key!r}, "
            f"found {keys}"
        )
    data = obj[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3 * 32 * 32:
        raise DataFormatError(
            f"{where}: b'data' must be a uint8 array (N, 3072), got "
            f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}"
        )
    try:
        labels = np.asarray(obj[spec.label_key], dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise DataFormatError(f"{where}: labels are not integers ({e})") from e
    if labels.shape != (len(data),):
        raise DataFormatError(
            f"{where}: {len(data)} images but labels of shape {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= spec.n_classes):
        raise DataFormatError(f"{where}: labels outside 0..{spec.n_classes - 1}")
    # Rows hold the R, G and B planes one after the other, each 32x32 row-major.
    x = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return x, labels


def _class_names(obj: Any, spec: _CifarSpec, where: str) -> tuple[str, ...]:
    names = obj.get(spec.names_key) if isinstance(obj, dict) else None
    if not isinstance(names, list) or len(names) != spec.n_classes:
        raise DataFormatError(
            f"{where}: malformed metadata: need {spec.names_key!r} with "
            f"{spec.n_classes} names"
        )
    return tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)


def _read_cifar_members(spec: _CifarSpec, path: Path) -> dict[str, Any]:
    """Unpickled train, test and meta members of a tarball or an extracted folder."""
    wanted = (*spec.train_members, spec.test_member, spec.meta_member)
    objs: dict[str, Any] = {}
    if path.is_dir():
        for member in wanted:
            f = path / member
            if not f.is_file():
                raise DataFormatError(
                    f"{path} is incomplete: {member} is missing (expected "
                    f"{', '.join(wanted)}); re-extract {spec.archive}"
                )
            with open(f, "rb") as fh:
                objs[member] = _unpickle(fh, str(f))
        return objs
    try:
        with tarfile.open(path, "r:*") as tar:
            for info in tar:  # one pass: gzip streams are slow to seek backwards
                name = info.name[2:] if info.name.startswith("./") else info.name
                folder, _, member = name.partition("/")
                if folder == spec.folder and member in wanted and info.isfile():
                    fh = tar.extractfile(info)
                    assert fh is not None
                    objs[member] = _unpickle(fh, f"{path}:{name}")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataFormatError(f"{path}: unreadable tar archive ({e})") from e
    missing = [m for m in wanted if m not in objs]
    if missing:
        raise DataFormatError(
            f"{path} is incomplete: missing "
            f"{', '.join(spec.folder + '/' + m for m in missing)}"
        )
    return objs


def _read_cifar(spec: _CifarSpec, path: Path) -> Dataset:
    verified = ""
    if path.is_file():
        _verify_sha256(path, CHECKSUMS[spec.archive])
        verified = " (sha256 verified)"
    objs = _read_cifar_members(spec, path)
    where = (lambda m: f"{path}/{m}") if path.is_dir() else (lambda m: f"{path}:{spec.folder}/{m}")
    train = [_batch_arrays(objs[m], spec, where(m)) for m in spec.train_members]
    x_test, y_test = _batch_arrays(objs[spec.test_member], spec, where(spec.test_member))
    kind = "extracted folder (not checksummed)" if path.is_dir() else "archive"
    return Dataset(
        name=spec.name,
        x_train=np.concatenate([x for x, _ in train]),
        y_train=np.concatenate([y for _, y in train]),
        x_test=x_test,
        y_test=y_test,
        class_names=_class_names(objs[spec.meta_member], spec, where(spec.meta_member)),
        source=f"{spec.archive} {kind} {path}{verified}",
    )


def download_archive(name: str, *, dest_dir: str | os.PathLike) -> Path:
    """Download a CIFAR archive from its official URL and verify its sha256.

    The only function in the project that uses the network. The file is written under a
    temporary name and renamed only after the checksum matches, so an interrupted or
    corrupted download never looks like a good archive.

    Args:
        name: ``"cifar10"`` or ``"cifar100"``.
        dest_dir: Directory to save ``cifar-10-python.tar.gz`` (or the CIFAR-100 one) in.

    Returns:
        The path of the verified archive.

    Raises:
        ValueError: ``name`` cannot be downloaded.
        ChecksumError: The downloaded bytes do not match the published digest.
    """
    if name not in _CIFAR:
        raise ValueError(f"cannot download {name!r}; downloadable: {', '.join(_CIFAR)}")
    spec = _CIFAR[name]
    dest = Path(dest_dir).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / spec.archive
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{spec.archive}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=60) as resp:
            shutil.copyfileobj(resp, out, 1 << 20)
        _verify_sha256(tmp, CHECKSUMS[spec.archive])
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _cifar_locator(name: str) -> Locator:
    return lambda data_dir: _locate_cifar(_CIFAR[name], data_dir)


def _cifar_loader(name: str) -> Loader:
    def load(data_dir: Path | None, download: bool) -> Dataset:
        """Load CIFAR from a tarball (sha256-checked) or an extracted folder.

        Extracted folders cannot be checksummed (there is no published digest of the
        individual batches); their files are instead checked structurally and unpickled
        with an allow-list, so a damaged folder fails with a clear message.
        """
        spec = _CIFAR[name]
        found, searched = _locate_cifar(spec, data_dir)
        if found is None:
            if not download:
                raise _not_found(DATASETS[name], searched)
            user = _user_dir(data_dir)
            found = str(download_archive(
                name, dest_dir=user if user is not None else _keras_dataset_dirs()[0]
            ))
        return _read_cifar(spec, Path(found))

    return load


# --------------------------------------------------------------------------- registry

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
    "digits": DatasetInfo(
        name="digits",
        description="scikit-learn's 8x8 handwritten digits (1,797 images), for fast tests",
        n_classes=10, image_shape=(8, 8, 1),
        loader=_load_digits, locator=_locate_digits,
        licence="UCI ML 'Optical Recognition of Handwritten Digits' (E. Alpaydin and "
                "C. Kaynak, 1998), CC BY 4.0, as bundled with scikit-learn.",
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        description="CIFAR-10, 50,000 train + 10,000 test 32x32 colour images, 10 classes",
        n_classes=10, image_shape=(32, 32, 3),
        loader=_cifar_loader("cifar10"), locator=_cifar_locator("cifar10"),
        licence=_CIFAR_LICENCE.format(n=10), downloadable=True,
        how_to_get="or copy cifar-10-python.tar.gz (the 'python version' from "
                   "https://www.cs.toronto.edu/~kriz/cifar.html) into the data directory",
    ),
    "cifar100": DatasetInfo(
        name="cifar100",
        description="CIFAR-100 (fine labels), 50,000 train + 10,000 test 32x32 colour "
                    "images, 100 classes",
        n_classes=100, image_shape=(32, 32, 3),
        loader=_cifar_loader("cifar100"), locator=_cifar_locator("cifar100"),
        licence=_CIFAR_LICENCE.format(n=100), downloadable=True,
        how_to_get="or copy cifar-100-python.tar.gz (the 'python version' from "
                   "https://www.cs.toronto.edu/~kriz/cifar.html) into the data directory",
    ),
}


# --------------------------------------------------------------------------- splitting


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


# --------------------------------------------------------------------------- preprocessing


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
    if scaling not in SCALINGS:
        raise ValueError(f"unknown scaling {scaling!r}; allowed: {', '.join(SCALINGS)}")
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
