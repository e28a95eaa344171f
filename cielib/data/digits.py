"""scikit-learn's 8x8 digits: a real 10-class dataset for tests that take seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cielib.data._common import Dataset, DatasetInfo
from cielib.data.splits import validation_split

#: Fraction of scikit-learn's digits held out as the test split.
DIGITS_TEST_FRACTION = 0.2


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

#: This module's entries of the registry, :data:`cielib.data.DATASETS`.
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        name="digits",
        description="scikit-learn's 8x8 handwritten digits (1,797 images), for fast tests",
        n_classes=10, image_shape=(8, 8, 1),
        loader=_load_digits, locator=_locate_digits,
        licence="UCI ML 'Optical Recognition of Handwritten Digits' (E. Alpaydin and "
                "C. Kaynak, 1998), CC BY 4.0, as bundled with scikit-learn.",
    ),
}
