"""Build the class-balanced Fashion-MNIST subset shipped in ``cielib/data_files``.

The quick profile must run with nothing downloaded, so cielib ships a small subset of
Fashion-MNIST (MIT licence, Copyright (c) 2017 Zalando SE). This script makes that subset
reproducible: it checks the source idx files against known sha256 digests, draws the
same number of images per class from the official train and test splits (without
replacement, seeded), shuffles each split (seeded), and writes

* ``<out>.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (images ``uint8``
  ``(N, 28, 28, 1)``, labels ``int64``) plus ``train_indices``/``test_indices``, the
  positions of each image in the official split;
* ``<out>.json``, the provenance: source files and digests, seed, counts per class,
  digests of the output.

The npz is written with fixed zip timestamps, so the same inputs give the same bytes.

Usage::

    python scripts/build_fashion_mnist_subset.py            # the shipped defaults
    python scripts/build_fashion_mnist_subset.py --train-per-class 100 --out /tmp/s.npz
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing cielib
    sys.path.insert(0, str(ROOT))

from cielib import data, paths  # noqa: E402
from cielib.hashing import file_sha256  # noqa: E402

#: sha256 of the files in Debian's ``dataset-fashion-mnist`` package.
SOURCE_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
}
LICENCE_LINE = (
    "Fashion-MNIST is MIT-licensed, Copyright (c) 2017 Zalando SE; see "
    "FASHION_MNIST_LICENSE.txt next to this file."
)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so rebuilding gives identical bytes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--source-dir", type=Path, default=data.DEBIAN_FASHION_MNIST_DIR,
                   help="directory with the four official *-ubyte.gz files")
    p.add_argument("--train-per-class", type=int, default=600,
                   help="images per class drawn from the official training split")
    p.add_argument("--test-per-class", type=int, default=200,
                   help="images per class drawn from the official test split")
    p.add_argument("--seed", type=int, default=0, help="seed for np.random.default_rng")
    p.add_argument("--out", type=Path, default=paths.DATA_FILES / "fashion_mnist_subset.npz",
                   help="output .npz; the provenance .json is written beside it")
    args = p.parse_args(argv)
    for opt in ("train_per_class", "test_per_class"):
        if getattr(args, opt) < 1:
            p.error(f"--{opt.replace('_', '-')} must be at least 1, got {getattr(args, opt)}")
    return args


def verify_sources(source_dir: Path) -> dict[str, dict[str, str]]:
    """Check every source file against :data:`SOURCE_SHA256`; fail loudly otherwise."""
    found = {}
    for name, expected in SOURCE_SHA256.items():
        path = source_dir / name
        if not path.is_file():
            sys.exit(f"error: {path} not found (install Debian's dataset-fashion-mnist "
                     "or pass --source-dir)")
        actual = file_sha256(path)
        if actual != expected:
            raise data.ChecksumError(path, expected, actual)
        found[name] = {"sha256": actual, "path": str(path)}
    return found


def sample_balanced(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``per_class`` examples of every class (without replacement), shuffled."""
    chosen = []
    for c in range(len(data.FASHION_MNIST_CLASSES)):
        idx = np.flatnonzero(y == c)
        if len(idx) < per_class:
            sys.exit(f"error: class {c} has only {len(idx)} images, asked for {per_class}")
        chosen.append(rng.choice(idx, size=per_class, replace=False))
    return rng.permutation(np.concatenate(chosen))


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like ``np.savez_compressed`` but with fixed timestamps, for reproducible bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".npz.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sources = verify_sources(args.source_dir)
    rng = np.random.default_rng(args.seed)
    arrays: dict[str, np.ndarray] = {}
    indices: dict[str, np.ndarray] = {}
    for split, official, per_class in (("train", "train", args.train_per_class),
                                       ("test", "t10k", args.test_per_class)):
        x = data.read_idx(args.source_dir / f"{official}-images-idx3-ubyte.gz",
                          expected_magic=data.IDX_IMAGES_MAGIC)
        y = data.read_idx(args.source_dir / f"{official}-labels-idx1-ubyte.gz",
                          expected_magic=data.IDX_LABELS_MAGIC)
        idx = sample_balanced(y, per_class, rng)
        arrays[f"x_{split}"] = x[idx][..., None].astype(np.uint8)
        arrays[f"y_{split}"] = y[idx].astype(np.int64)
        indices[f"{split}_indices"] = idx.astype(np.int32)
    save_npz(args.out, {**arrays, **indices})

    names = data.FASHION_MNIST_CLASSES
    counts = {
        split: {names[c]: int(n) for c, n in
                enumerate(np.bincount(arrays[f"y_{split}"], minlength=len(names)))}
        for split in ("train", "test")
    }
    provenance = {
        "dataset": "Fashion-MNIST",
        "description": "class-balanced seeded subset of the official train and test splits",
        "script": "scripts/build_fashion_mnist_subset.py",
        "arguments": {
            "source_dir": str(args.source_dir),
            "train_per_class": args.train_per_class,
            "test_per_class": args.test_per_class,
            "seed": args.seed,
        },
        "seed": args.seed,
        "sampling": "per class: np.random.default_rng(seed).choice without replacement "
                    "(train split first, then test), then a seeded permutation of each split",
        "source_files": sources,
        "class_names": list(names),
        "counts": counts,
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype),
                       "sha256": hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()}
                   for k, v in {**arrays, **indices}.items()},
        "output": {"file": args.out.name, "bytes": args.out.stat().st_size,
                   "sha256": file_sha256(args.out)},
        "licence": LICENCE_LINE,
    }
    json_path = args.out.with_suffix(".json")
    json_path.write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) and {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
