"""Datasets: find, verify, load and preprocess the images every experiment uses.

Nothing here touches the network unless a caller passes ``download=True`` (and then only
for CIFAR, whose archives have published checksums). The default dataset is a
class-balanced Fashion-MNIST subset shipped inside the package, so the quick profile runs
anywhere. Larger datasets are searched for, in a fixed and reported order, in a
user-given directory, in system locations and in the Keras cache; when they are missing,
:class:`DataNotFoundError` lists every place that was searched and how to provide them.

Every loader returns a :class:`Dataset` with the same conventions (images ``uint8``
NHWC, labels ``int64``), and :func:`preprocess` is the single place where those images
become a model's input. This package never imports TensorFlow (nor scikit-learn until
the ``digits`` dataset is loaded), so planning and tests stay fast.

Layout: ``_common`` (errors, :class:`Dataset`, :class:`DatasetInfo`, search paths), one
module per source (``fashion_mnist``, ``digits``, ``cifar``), each holding its entries
of the registry :data:`DATASETS`, then ``splits`` and ``preprocessing``. This module
assembles the registry and is the public API: import from ``cielib.data``.
"""

from __future__ import annotations

import os

from cielib.checks import check_choice
from cielib.data import cifar, digits, fashion_mnist
from cielib.data._common import (
    ENV_DATA_DIR,
    ChecksumError,
    DataFormatError,
    DataNotFoundError,
    Dataset,
    DatasetInfo,
    as_path,
    not_found,
)
from cielib.data.cifar import CHECKSUMS, download_archive
from cielib.data.digits import DIGITS_TEST_FRACTION
from cielib.data.fashion_mnist import (
    DEBIAN_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_FILES,
    FASHION_MNIST_SUBSET,
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    read_idx,
)
from cielib.data.preprocessing import (
    CAFFE_BGR_MEANS,
    LUMINANCE_WEIGHTS,
    MAX_PAD,
    SCALINGS,
    preprocess,
)
from cielib.data.splits import validation_split

__all__ = [
    "CAFFE_BGR_MEANS",
    "CHECKSUMS",
    "DATASETS",
    "DEBIAN_FASHION_MNIST_DIR",
    "DEFAULT_DATASET",
    "DIGITS_TEST_FRACTION",
    "ENV_DATA_DIR",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_SUBSET",
    "IDX_IMAGES_MAGIC",
    "IDX_LABELS_MAGIC",
    "LUMINANCE_WEIGHTS",
    "MAX_PAD",
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
    "validation_split",
]

DEFAULT_DATASET = "fashion_mnist"

#: Every dataset by registry name, the default first. The one list of dataset names:
#: configuration and planning validate against it.
DATASETS: dict[str, DatasetInfo] = {
    **fashion_mnist.DATASETS,
    **digits.DATASETS,
    **cifar.DATASETS,
}


def available_datasets() -> list[str]:
    """Registry names, default first."""
    return list(DATASETS)


def _info(name: str) -> DatasetInfo:
    return DATASETS[check_choice(name, available_datasets(), what="dataset")]


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
    return info.loader(as_path(data_dir), bool(download))


def locate_dataset(name: str, *, data_dir: str | os.PathLike | None = None) -> str | None:
    """Where a dataset would be loaded from, or None; cheap enough for planning.

    It only checks that files exist: it never reads arrays, verifies checksums or
    downloads, so a planner can refuse a run before any work starts. The bundled
    datasets (``fashion_mnist``, ``digits``) are always found.
    """
    return _info(name).locator(as_path(data_dir))[0]


def require_dataset(name: str, *, data_dir: str | os.PathLike | None = None,
                    download: bool = False) -> None:
    """Fail early, listing every place searched, unless a dataset can be loaded.

    ``download=True`` counts as success only for datasets that can be downloaded.

    Raises:
        ValueError: ``name`` is not registered.
        DataNotFoundError: Not found (and not downloadable, or ``download`` is False).
    """
    info = _info(name)
    found, searched = info.locator(as_path(data_dir))
    if found is None and not (download and info.downloadable):
        raise not_found(info, searched, download_requested=download)

