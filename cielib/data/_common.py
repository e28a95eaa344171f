"""What every dataset module shares: errors, the Dataset convention, search paths.

Private to :mod:`cielib.data`; the package re-exports the public names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cielib.hashing import file_sha256

#: Environment variable naming a directory to search first (after ``data_dir=``).
ENV_DATA_DIR = "CIELIB_DATA_DIR"


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


def not_found(info: DatasetInfo, searched: Sequence[str], *,
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


def as_path(data_dir: str | os.PathLike | None) -> Path | None:
    return None if data_dir is None else Path(data_dir).expanduser()


def user_dir(data_dir: Path | None) -> Path | None:
    """``data_dir`` if given, else ``$CIELIB_DATA_DIR`` if set and non-empty."""
    if data_dir is not None:
        return data_dir
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else None


def keras_dataset_dirs() -> list[Path]:
    """Keras' dataset caches: ``$KERAS_HOME/datasets`` (Keras 3), ``~/.keras/datasets``.

    tf_keras ignores ``KERAS_HOME``, so the home cache is searched as well.
    """
    dirs = []
    env = os.environ.get("KERAS_HOME")
    if env:
        dirs.append(Path(env).expanduser() / "datasets")
    dirs.append(Path.home() / ".keras" / "datasets")
    return unique_paths(dirs)


def unique_paths(items: list[Path]) -> list[Path]:
    seen, out = set(), []
    for p in items:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out

def verify_sha256(path: Path, expected: str) -> None:
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ChecksumError(path, expected, actual)

