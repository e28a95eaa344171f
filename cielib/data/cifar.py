"""CIFAR-10 and CIFAR-100: found in a user directory or the Keras cache, or downloaded.

Tarballs are checked against their published sha256 before they are read; extracted
folders (which have no published digests) are checked structurally and unpickled with
an allow-list. :func:`download_archive` is the only code in the project that uses the
network, and only when a caller passes ``download=True``.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cielib.data._common import (
    DataFormatError,
    Dataset,
    DatasetInfo,
    Loader,
    Locator,
    keras_dataset_dirs,
    not_found,
    unique_paths,
    user_dir,
    verify_sha256,
)

#: Published sha256 digests of the CIFAR archives, keyed by their canonical file name.
#: Any copy of an archive (whatever it is called on disk) must match before it is read.
CHECKSUMS: dict[str, str] = {
    "cifar-10-python.tar.gz": "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    "cifar-100-python.tar.gz": "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
}


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
    user = user_dir(data_dir)
    return unique_paths(([user] if user is not None else []) + keras_dataset_dirs())


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
        verify_sha256(path, CHECKSUMS[spec.archive])
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
        verify_sha256(tmp, CHECKSUMS[spec.archive])
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
                raise not_found(DATASETS[name], searched)
            user = user_dir(data_dir)
            found = str(download_archive(
                name, dest_dir=user if user is not None else keras_dataset_dirs()[0]
            ))
        return _read_cifar(spec, Path(found))

    return load

#: This module's entries of the registry, :data:`cielib.data.DATASETS`.
DATASETS: dict[str, DatasetInfo] = {
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
