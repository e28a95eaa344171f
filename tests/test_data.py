"""Tests for cielib.data: finding, verifying, loading, splitting and preprocessing data.

CIFAR tests build tiny archives in the exact original format (Python-2-style pickled
dicts with bytes keys inside ``cifar-10-batches-py/`` or ``cifar-100-python/``, packed
as ``.tar.gz``) and plant known pixels and labels. The network is never used: an
autouse fixture makes ``urlopen`` fail, and HOME/KERAS_HOME/Debian paths point into
``tmp_path`` so real caches on the machine are never searched.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from cielib import data
from cielib.data import cifar, fashion_mnist
from cielib.hashing import file_sha256

CIFAR10_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
                 b"dog", b"frog", b"horse", b"ship", b"truck"]
PER_BATCH = 4


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Point every search location into tmp_path and forbid the network."""
    home, keras_home, debian = tmp_path / "home", tmp_path / "keras_home", tmp_path / "debian"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FASHION_MNIST_DIR", debian)

    def no_network(*args, **kwargs):
        raise AssertionError("tests must not use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return {"home": home, "keras_home": keras_home, "debian": debian}


def _planted_data(n: int, seed: int) -> np.ndarray:
    """Random rows (N, 3072); row 0 has known planes and one known pixel."""
    rows = np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    rows[0, :1024], rows[0, 1024:2048], rows[0, 2048:] = 10, 20, 30  # R, G, B planes
    k = 1 * 32 + 2  # pixel at row 1, column 2
    rows[0, k], rows[0, 1024 + k], rows[0, 2048 + k] = 200, 201, 202
    return rows


def _dump(obj, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def make_cifar(root: Path, name: str = "cifar10", *, tar: bool = True,
               folder_name: str | None = None, tar_name: str | None = None) -> dict:
    """Write a tiny CIFAR in the original layout; return the planted labels.

    The folder is written under ``root`` (named ``folder_name`` or the original name);
    with ``tar=True`` it is also packed as ``tar_name`` (default: the original archive
    name) and the folder removed.
    """
    spec = cifar._CIFAR[name]
    staging = root / f"_staging_{name}"
    folder = staging / spec.folder
    folder.mkdir(parents=True)
    labels = {}
    n_classes = spec.n_classes
    for i, member in enumerate((*spec.train_members, spec.test_member)):
        y = [int((i * PER_BATCH + j) % n_classes) for j in range(PER_BATCH)]
        labels[member] = y
        batch = {spec.label_key: y, b"data": _planted_data(PER_BATCH, i),
                 b"filenames": [b"img_%d_%d.png" % (i, j) for j in range(PER_BATCH)]}
        if name == "cifar10":
            batch[b"batch_label"] = b"batch %d" % i
        else:
            batch[b"coarse_labels"] = [v // 5 for v in y]
            batch[b"batch_label"] = b"training batch 1 of 1"
        _dump(batch, folder / member)
    if name == "cifar10":
        meta = {b"num_cases_per_batch": PER_BATCH, b"label_names": CIFAR10_NAMES, b"num_vis": 3072}
    else:
        meta = {b"fine_label_names": [b"fine_%d" % i for i in range(100)],
                b"coarse_label_names": [b"coarse_%d" % i for i in range(20)]}
    _dump(meta, folder / spec.meta_member)
    out = {"labels": labels, "spec": spec}
    if tar:
        path = root / (tar_name or spec.archive)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as t:
            t.add(folder, arcname=spec.folder)
        out["path"] = path
    else:
        target = root / (folder_name or spec.folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        out["path"] = target
    shutil.rmtree(staging)
    return out


def trust(monkeypatch, archive: Path, name: str = "cifar10") -> None:
    """Make the tiny archive's real digest the 'published' one."""
    monkeypatch.setitem(data.CHECKSUMS, cifar._CIFAR[name].archive, file_sha256(archive))


def write_idx(path: Path, arr: np.ndarray, *, magic: int | None = None) -> None:
    ndim = arr.ndim
    header = struct.pack(">I", magic if magic is not None else 0x0800 + ndim)
    header += struct.pack(f">{ndim}I", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def make_fashion(directory: Path, n_train: int = 12, n_test: int = 5) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8)[::-1].copy(),
    }
    for key, stem in data.FASHION_MNIST_FILES.items():
        write_idx(directory / f"{stem}.gz", arrays[key])
    return arrays


# --------------------------------------------------------------------------- CIFAR


def _check_cifar(ds: data.Dataset, made: dict, name: str) -> None:
    spec = made["spec"]
    n_train = PER_BATCH * len(spec.train_members)
    assert ds.name == name
    assert ds.x_train.shape == (n_train, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (PER_BATCH, 32, 32, 3) and ds.x_test.dtype == np.uint8
    assert ds.y_train.dtype == np.int64 and ds.y_test.dtype == np.int64
    expected_train = sum((made["labels"][m] for m in spec.train_members), [])
    assert ds.y_train.tolist() == expected_train
    assert ds.y_test.tolist() == made["labels"][spec.test_member]
    # planted pixels survive the (N, 3, 32, 32) -> NHWC transpose
    assert ds.x_train[0, 0, 0].tolist() == [10, 20, 30]
    assert ds.x_train[0, 1, 2].tolist() == [200, 201, 202]
    assert ds.x_train[0, 2, 1].tolist() == [10, 20, 30]
    assert ds.x_test[0, 1, 2].tolist() == [200, 201, 202]
    # the second image is the raw row, reshaped plane by plane
    raw = _planted_data(PER_BATCH, 0)[1]
    assert ds.x_train[1, 5, 7, 2] == raw[2 * 1024 + 5 * 32 + 7]
    assert ds.n_classes == spec.n_classes and ds.image_shape == (32, 32, 3)
    if name == "cifar10":
        assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"
    else:
        assert ds.class_names[42] == "fine_42"
    assert str(made["path"]) in ds.source


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loads_from_tarball(tmp_path, monkeypatch, name):
    made = make_cifar(tmp_path / "d", name)
    trust(monkeypatch, made["path"], name)
    ds = data.load_dataset(name, data_dir=tmp_path / "d")
    _check_cifar(ds, made, name)
    assert "sha256 verified" in ds.source
    assert data.locate_dataset(name, data_dir=tmp_path / "d") == str(made["path"])


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_loads_from_extracted_folder(tmp_path, name):
    made = make_cifar(tmp_path / "d", name, tar=False)
    ds = data.load_dataset(name, data_dir=tmp_path / "d")  # no checksum for folders
    _check_cifar(ds, made, name)
    assert "not checksummed" in ds.source


def test_tarball_and_folder_give_identical_arrays(tmp_path, monkeypatch):
    a = make_cifar(tmp_path / "a", tar=True)
    make_cifar(tmp_path / "b", tar=False)
    trust(monkeypatch, a["path"])
    da = data.load_dataset("cifar10", data_dir=tmp_path / "a")
    db = data.load_dataset("cifar10", data_dir=tmp_path / "b")
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(da, key), getattr(db, key))


def test_checksum_mismatch_raises(tmp_path):
    made = make_cifar(tmp_path / "d")  # CHECKSUMS still holds the real CIFAR digest
    with pytest.raises(data.ChecksumError) as err:
        data.load_dataset("cifar10", data_dir=tmp_path / "d")
    msg = str(err.value)
    assert str(made["path"]) in msg
    assert data.CHECKSUMS["cifar-10-python.tar.gz"] in msg
    assert file_sha256(made["path"]) in msg
    assert err.value.actual == file_sha256(made["path"])


def test_missing_cifar_lists_every_searched_path(tmp_path, isolated):
    empty = tmp_path / "empty"
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_dataset("cifar10", data_dir=empty)
    msg = str(err.value)
    roots = [empty, isolated["keras_home"] / "datasets", isolated["home"] / ".keras" / "datasets"]
    expected = []
    for root in roots:
        expected += [root / "cifar-10-python.tar.gz", root / "cifar-10-batches-py.tar.gz",
                     root / "cifar-10-batches-py-target_archive", root / "cifar-10-batches-py",
                     root / "cifar-10-batches-py-target" / "cifar-10-batches-py"]
    for p in expected:
        assert str(p) in msg, p
    assert len(err.value.searched) == len(expected)
    for hint in (data.ENV_DATA_DIR, "--data-dir", "--download"):
        assert hint in msg
    assert isinstance(err.value, FileNotFoundError)
    assert data.locate_dataset("cifar10", data_dir=empty) is None
    with pytest.raises(data.DataNotFoundError):
        data.require_dataset("cifar10", data_dir=empty)
    data.require_dataset("cifar10", data_dir=empty, download=True)  # would download


def test_missing_fashion_full_lists_every_searched_path(tmp_path, isolated):
    d = tmp_path / "mine"
    with pytest.raises(data.DataNotFoundError) as err:
        data.load_dataset("fashion_mnist_full", data_dir=d)
    msg = str(err.value)
    for p in (d, d / "fashion-mnist", isolated["debian"],
              isolated["keras_home"] / "datasets" / "fashion-mnist",
              isolated["home"] / ".keras" / "datasets" / "fashion-mnist"):
        assert f"{p}/" in msg, p
    assert "dataset-fashion-mnist" in msg and data.ENV_DATA_DIR in msg
    # there is no download for Fashion-MNIST, so download=True does not help
    with pytest.raises(data.DataNotFoundError, match="not supported"):
        data.require_dataset("fashion_mnist_full", data_dir=d, download=True)


def test_env_var_is_honoured_and_data_dir_wins(tmp_path, monkeypatch):
    made = make_cifar(tmp_path / "env", tar=False)
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path / "env"))
    assert data.locate_dataset("cifar10") == str(made["path"])
    assert data.load_dataset("cifar10").x_train.shape[0] == 20
    other = make_cifar(tmp_path / "arg", tar=False)
    assert data.locate_dataset("cifar10", data_dir=tmp_path / "arg") == str(other["path"])


def test_keras_cache_layouts_are_found(isolated, monkeypatch):
    # tf_keras: tarball saved as cifar-10-batches-py.tar.gz in ~/.keras/datasets
    home_ds = isolated["home"] / ".keras" / "datasets"
    made = make_cifar(home_ds, tar=True, tar_name="cifar-10-batches-py.tar.gz")
    trust(monkeypatch, made["path"])
    assert data.locate_dataset("cifar10") == str(made["path"])
    assert data.load_dataset("cifar10").y_test.tolist() == made["labels"]["test_batch"]
    # Keras 3: $KERAS_HOME/datasets/cifar-100-python-target/cifar-100-python, searched first
    k3 = make_cifar(isolated["keras_home"] / "datasets", "cifar100", tar=False,
                    folder_name="cifar-100-python-target/cifar-100-python")
    assert data.locate_dataset("cifar100") == str(k3["path"])
    assert data.load_dataset("cifar100").n_classes == 100


def test_download_only_when_asked(tmp_path, monkeypatch):
    calls = []

    def fake_download(name, *, dest_dir):
        calls.append((name, Path(dest_dir)))
        made = make_cifar(Path(dest_dir))
        trust(monkeypatch, made["path"])
        return made["path"]

    monkeypatch.setattr(cifar, "download_archive", fake_download)
    with pytest.raises(data.DataNotFoundError):
        data.load_dataset("cifar10", data_dir=tmp_path / "dl")
    assert calls == []
    ds = data.load_dataset("cifar10", data_dir=tmp_path / "dl", download=True)
    assert calls == [("cifar10", tmp_path / "dl")]
    assert ds.x_train[0, 1, 2].tolist() == [200, 201, 202]


def test_download_archive_verifies_before_keeping(tmp_path, monkeypatch):
    made = make_cifar(tmp_path / "src")
    payload = made["path"].read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: io.BytesIO(payload))
    dest = tmp_path / "dest"
    with pytest.raises(data.ChecksumError):  # real digest: the tiny archive fails
        data.download_archive("cifar10", dest_dir=dest)
    assert list(dest.iterdir()) == []  # nothing half-written is left behind
    trust(monkeypatch, made["path"])
    path = data.download_archive("cifar10", dest_dir=dest)
    assert path == dest / "cifar-10-python.tar.gz" and path.read_bytes() == payload
    with pytest.raises(ValueError, match="'mnist'"):
        data.download_archive("mnist", dest_dir=dest)


def test_missing_batch_in_folder(tmp_path):
    made = make_cifar(tmp_path / "d", tar=False)
    (made["path"] / "data_batch_3").unlink()
    with pytest.raises(data.DataFormatError, match="data_batch_3"):
        data.load_dataset("cifar10", data_dir=tmp_path / "d")


def test_missing_batch_in_tarball(tmp_path, monkeypatch):
    made = make_cifar(tmp_path / "src", tar=False)
    (made["path"] / "test_batch").unlink()
    archive = tmp_path / "d" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as t:
        t.add(made["path"], arcname="cifar-10-batches-py")
    trust(monkeypatch, archive)
    with pytest.raises(data.DataFormatError, match="cifar-10-batches-py/test_batch"):
        data.load_dataset("cifar10", data_dir=tmp_path / "d")


def test_corrupt_and_malformed_batches(tmp_path):
    made = make_cifar(tmp_path / "d", tar=False)
    batch = made["path"] / "data_batch_2"
    batch.write_bytes(b"this is not a pickle")
    with pytest.raises(data.DataFormatError, match="data_batch_2"):
        data.load_dataset("cifar10", data_dir=tmp_path / "d")
    _dump({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}, batch)
    with pytest.raises(data.DataFormatError, match=r"data_batch_2.*3072"):
        data.load_dataset("cifar10", data_dir=tmp_path / "d")
    _dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2]}, batch)
    with pytest.raises(data.DataFormatError, match="4 images but labels"):
        data.load_dataset("cifar10", data_dir=tmp_path / "d")
    _dump({b"data": np.zeros((4, 3072), np.uint8)}, batch)
    with pytest.raises(data.DataFormatError, match="b'labels'"):
        data.load_dataset("cifar10", data_dir=tmp_path / "d")


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_untrusted_pickle_globals_are_refused(tmp_path):
    made = make_cifar(tmp_path / "d", tar=False)
    _dump({b"data": _Evil(), b"labels": [0]}, made["path"] / "data_batch_1")
    with pytest.raises(data.DataFormatError, match=r"refusing to unpickle (__builtin__|builtins)\.print"):
        data.load_dataset("cifar10", data_dir=tmp_path / "d")


# --------------------------------------------------------------------------- Fashion-MNIST


def test_fashion_full_loads_fake_idx_from_data_dir(tmp_path):
    arrays = make_fashion(tmp_path / "d" / "fashion-mnist")
    ds = data.load_dataset("fashion_mnist_full", data_dir=tmp_path / "d")
    assert ds.x_train.shape == (12, 28, 28, 1) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (5, 28, 28, 1)
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(ds.y_test, arrays["y_test"].astype(np.int64))
    assert ds.y_train.dtype == np.int64
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert data.locate_dataset("fashion_mnist_full", data_dir=tmp_path / "d") == str(
        tmp_path / "d" / "fashion-mnist")


def test_fashion_full_found_in_debian_location(isolated):
    make_fashion(isolated["debian"])
    assert data.locate_dataset("fashion_mnist_full") == str(isolated["debian"])
    assert data.load_dataset("fashion_mnist_full").x_train.shape[0] == 12


def test_idx_bad_magic_and_count_mismatch(tmp_path):
    d = tmp_path / "d"
    make_fashion(d)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros((12, 28, 28), np.uint8))  # images
    with pytest.raises(data.DataFormatError, match="magic number is 2051, expected 2049"):
        data.load_dataset("fashion_mnist_full", data_dir=d)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(11, np.uint8))
    with pytest.raises(data.DataFormatError, match="12 train images but 11 train labels"):
        data.load_dataset("fashion_mnist_full", data_dir=d)


def test_read_idx_plain_and_truncated(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    raw = struct.pack(">IIII", 2051, 2, 3, 4) + arr.tobytes()
    (tmp_path / "plain").write_bytes(raw)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "plain", expected_magic=2051), arr)
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(data.DataFormatError, match="need 24 data bytes, found 23"):
        data.read_idx(tmp_path / "short")


def test_shipped_subset_is_balanced_and_matches_provenance():
    ds = data.load_dataset("fashion_mnist")
    meta = json.loads(data.FASHION_MNIST_SUBSET.with_suffix(".json").read_text())
    for split in ("train", "test"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        assert x.dtype == np.uint8 and x.ndim == 4 and x.shape[1:] == (28, 28, 1)
        assert y.dtype == np.int64
        counts = np.bincount(y, minlength=10)
        assert len(set(counts.tolist())) == 1  # balanced
        assert {ds.class_names[c]: int(n) for c, n in enumerate(counts)} == meta["counts"][split]
    assert meta["counts"]["train"]["Bag"] == 600 and meta["counts"]["test"]["Bag"] == 200
    assert meta["output"]["sha256"] == file_sha256(data.FASHION_MNIST_SUBSET)
    assert meta["seed"] == 0 and "Zalando SE" in meta["licence"]
    assert ds.x_train.max() > 200  # real images, not zeros
    licence = (data.FASHION_MNIST_SUBSET.parent / "FASHION_MNIST_LICENSE.txt").read_text()
    assert "Copyright (c) 2017 Zalando SE" in licence and "MIT" in licence
    assert data.locate_dataset("fashion_mnist") == str(data.FASHION_MNIST_SUBSET)
    assert ds.n_classes == 10 and ds.image_shape == (28, 28, 1)


def test_digits_loads():
    ds = data.load_dataset("digits")
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape[1:] == (8, 8, 1)
    assert len(ds.x_train) + len(ds.x_test) == 1797
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0
    assert ds.y_train.dtype == np.int64 and ds.n_classes == 10
    assert abs(len(ds.x_test) / 1797 - 0.2) < 0.01
    assert set(np.unique(ds.y_test)) == set(range(10))
    again = data.load_dataset("digits")
    np.testing.assert_array_equal(ds.y_test, again.y_test)  # deterministic split
    assert data.locate_dataset("digits") is not None


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("call", [
    lambda: data.load_dataset("mnist"),
    lambda: data.locate_dataset("mnist"),
    lambda: data.require_dataset("mnist"),
])
def test_unknown_name_lists_allowed(call):
    with pytest.raises(ValueError) as err:
        call()
    assert "'mnist'" in str(err.value)
    for name in data.available_datasets():
        assert name in str(err.value)


def test_registry():
    names = data.available_datasets()
    assert names[0] == data.DEFAULT_DATASET == "fashion_mnist"
    assert set(names) == {"fashion_mnist", "fashion_mnist_full", "digits", "cifar10", "cifar100"}
    for name, info in data.DATASETS.items():
        assert info.name == name and info.licence and info.description
    assert data.DATASETS["cifar100"].n_classes == 100
    assert data.DATASETS["cifar10"].image_shape == (32, 32, 3)
    from cielib import config  # planner validates names against this list

    assert tuple(names) == tuple(config.DATASETS)


def test_dataset_rejects_wrong_dtypes():
    x = np.zeros((2, 4, 4, 1), np.uint8)
    y = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="uint8"):
        data.Dataset("t", x.astype(np.float32), y, x, y, ("a",), "test")
    with pytest.raises(ValueError, match="int64"):
        data.Dataset("t", x, y.astype(np.int32), x, y, ("a",), "test")


def test_import_needs_neither_tensorflow_nor_sklearn():
    code = ("import sys, cielib.data; "
            "assert 'tensorflow' not in sys.modules; assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- validation_split


def _labels() -> np.ndarray:
    return np.repeat(np.arange(4), [40, 20, 100, 10])


def test_validation_split_is_stratified_disjoint_and_complete():
    y = _labels()
    x = np.arange(len(y))  # ids, so we can check membership
    x_tr, y_tr, x_val, y_val = data.validation_split(x, y, fraction=0.1, seed=3)
    assert np.bincount(y_val).tolist() == [4, 2, 10, 1]
    assert set(x_tr) & set(x_val) == set()
    assert sorted(np.concatenate([x_tr, x_val]).tolist()) == x.tolist()
    np.testing.assert_array_equal(y[x_tr], y_tr)
    np.testing.assert_array_equal(y[x_val], y_val)


def test_validation_split_is_deterministic_from_seed():
    y = _labels()
    x = np.arange(len(y))
    a = data.validation_split(x, y, fraction=0.25, seed=7)
    b = data.validation_split(x, y, fraction=0.25, seed=7)
    c = data.validation_split(x, y, fraction=0.25, seed=8)
    np.testing.assert_array_equal(a[2], b[2])
    assert not np.array_equal(a[2], c[2])


def test_validation_split_zero_fraction_gives_empty_validation():
    x = np.zeros((10, 8, 8, 1), np.uint8)
    y = np.arange(10, dtype=np.int64) % 2
    x_tr, y_tr, x_val, y_val = data.validation_split(x, y, fraction=0.0, seed=0)
    assert len(x_tr) == 10
    assert x_val.shape == (0, 8, 8, 1) and x_val.dtype == np.uint8
    assert y_val.shape == (0,) and y_val.dtype == np.int64


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, "0.1"])
def test_validation_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError) as err:
        data.validation_split(np.zeros(4), np.zeros(4), fraction=fraction, seed=0)
    assert repr(fraction) in str(err.value)


# --------------------------------------------------------------------------- preprocess


def test_preprocess_pads_28_to_32_centred():
    x = np.full((3, 28, 28, 1), 255, np.uint8)
    x[0, 0, 0, 0] = 51
    out = data.preprocess(x, input_shape=(32, 32, 1))
    assert out.shape == (3, 32, 32, 1) and out.dtype == np.float32
    assert np.all(out[:, :2] == 0) and np.all(out[:, -2:] == 0)
    assert np.all(out[:, :, :2] == 0) and np.all(out[:, :, -2:] == 0)
    assert out[0, 2, 2, 0] == pytest.approx(0.2)  # the planted pixel moved by 2, 2
    assert np.all(out[1, 2:30, 2:30] == 1.0)


def test_preprocess_pad_or_resize_rule():
    x = np.full((1, 28, 28, 1), 255, np.uint8)
    padded = data.preprocess(x, input_shape=(44, 44, 1))  # 8 px per side: pad
    assert padded[0, 0, 0, 0] == 0 and padded[0, 8, 8, 0] == 1
    for target in (46, 31):  # 9 px per side, odd margin: resize
        resized = data.preprocess(x, input_shape=(target, target, 1))
        np.testing.assert_allclose(resized, 1.0, rtol=1e-6)


def test_preprocess_resizes_8_to_32_and_repeats_channels():
    x = np.full((2, 8, 8, 1), 128, np.uint8)
    out = data.preprocess(x, input_shape=(32, 32, 3))
    assert out.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(out, 128 / 255, rtol=1e-6)
    # hand-computed bilinear with half-pixel centres: [0, 100] -> [0, 25, 75, 100]
    ramp = np.array([0, 100], np.uint8).reshape(1, 1, 2, 1)
    up = data.preprocess(ramp, input_shape=(2, 4, 1)) * 255  # odd height margin: resize
    np.testing.assert_allclose(up[0, :, :, 0], [[0, 25, 75, 100]] * 2, atol=1e-4)
    colour = data.preprocess(np.arange(64, dtype=np.uint8).reshape(1, 8, 8, 1),
                             input_shape=(32, 32, 3))
    np.testing.assert_array_equal(colour[..., 0], colour[..., 1])
    np.testing.assert_array_equal(colour[..., 0], colour[..., 2])


def test_preprocess_luminance_and_caffe_known_pixels():
    x = np.zeros((1, 32, 32, 3), np.uint8)
    x[0, 0, 0] = (100, 50, 200)
    grey = data.preprocess(x, input_shape=(32, 32, 1))
    assert grey[0, 0, 0, 0] == pytest.approx((0.299 * 100 + 0.587 * 50 + 0.114 * 200) / 255)
    x[0, 0, 0] = (10, 20, 30)  # RGB
    caffe = data.preprocess(x, input_shape=(32, 32, 3), scaling="caffe")
    expected_bgr = [30 - 103.939, 20 - 116.779, 10 - 123.68]
    np.testing.assert_allclose(caffe[0, 0, 0], expected_bgr, rtol=1e-6)
    np.testing.assert_allclose(caffe[0, 5, 5], [-103.939, -116.779, -123.68], rtol=1e-6)


def test_preprocess_chunking_does_not_change_results():
    x = np.random.default_rng(0).integers(0, 256, (7, 8, 8, 1), dtype=np.uint8)
    a = data.preprocess(x, input_shape=(32, 32, 3), scaling="caffe", chunk_size=3)
    b = data.preprocess(x, input_shape=(32, 32, 3), scaling="caffe")
    np.testing.assert_array_equal(a, b)


def test_preprocess_rejects_bad_arguments():
    x = np.zeros((1, 8, 8, 1), np.uint8)
    with pytest.raises(ValueError) as err:
        data.preprocess(x, input_shape=(8, 8, 1), scaling="torch")
    assert "'torch'" in str(err.value) and "unit" in str(err.value) and "caffe" in str(err.value)
    with pytest.raises(ValueError, match="uint8"):
        data.preprocess(x.astype(np.float32), input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="3 channels"):
        data.preprocess(x, input_shape=(8, 8, 1), scaling="caffe")
    with pytest.raises(ValueError, match=r"1 or 3, got 1 -> 2"):
        data.preprocess(x, input_shape=(8, 8, 2))
    with pytest.raises(ValueError, match="input_shape"):
        data.preprocess(x, input_shape=(8, 8))
