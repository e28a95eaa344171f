"""cielib.evaluate: its contract (shapes, labels, zero division, errors), hand-worked answers.

The metrics are scikit-learn's, so these tests do not compare them with scikit-learn;
they check what this module adds: the conventions it fixes, the tables it returns,
and its own top-k accuracy (compared with scikit-learn where no tie is involved).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from cielib import evaluate as ev

N_CLASSES = 10


def _data(n: int = 600, n_classes: int = N_CLASSES, seed: int = 0):
    """Seeded labels where class 3 never occurs in y_true and classes 7, 8 are never predicted."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(n_classes, 0.5), size=n)
    true_pool = np.array([c for c in range(n_classes) if c != 3])
    y_true = rng.choice(true_pool, size=n)
    # Predictions: right 60% of the time, otherwise random among allowed classes.
    pred_pool = np.array([c for c in range(n_classes) if c not in (7, 8)])
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(pred_pool, size=n))
    y_pred = np.where(np.isin(y_pred, (7, 8)), 0, y_pred)
    return y_true, y_pred, probs


@pytest.fixture(scope="module")
def data():
    y_true, y_pred, probs = _data()
    assert 3 not in y_true and 3 in y_pred  # absent from truth, still predicted
    assert not np.isin((7, 8), y_pred).any() and np.isin((7, 8), y_true).all()
    return y_true, y_pred, probs


LABELS = np.arange(N_CLASSES)


# --------------------------------------------------------------------------- contract


def test_confusion_counts_shape_and_planted_cells(data):
    y_true, y_pred, _ = data
    got = ev.confusion_counts(y_true, y_pred, n_classes=N_CLASSES)
    assert got.dtype == np.int64 and got.shape == (N_CLASSES, N_CLASSES)
    assert got.sum() == len(y_true)
    np.testing.assert_array_equal(got.sum(axis=1), np.bincount(y_true, minlength=N_CLASSES))
    assert got[3].sum() == 0 and got[:, 3].sum() > 0  # never true, but predicted
    assert got[:, [7, 8]].sum() == 0  # never predicted
    # a class absent from both arrays still gets its row and column
    assert ev.confusion_counts([0, 1], [1, 1], n_classes=4).tolist() == [
        [0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_labels_and_normalization(data, normalize):
    y_true, y_pred, _ = data
    got = ev.confusion_matrix(y_true, y_pred, n_classes=N_CLASSES, normalize=normalize)
    counts = ev.confusion_counts(y_true, y_pred, n_classes=N_CLASSES)
    assert got.index.name == "true" and got.columns.name == "predicted"
    assert list(got.index) == list(got.columns) == list(range(N_CLASSES))
    if normalize is None:
        assert pd.api.types.is_integer_dtype(got.to_numpy().dtype)
        np.testing.assert_array_equal(got.to_numpy(), counts)
    if normalize == "true":
        np.testing.assert_array_equal(got.loc[3].to_numpy(), 0.0)  # no support: row stays 0
        np.testing.assert_allclose(got.drop(index=3).sum(axis=1).to_numpy(), 1.0)
    if normalize == "pred":
        np.testing.assert_array_equal(got[[7, 8]].to_numpy(), 0.0)  # never predicted: column 0
        np.testing.assert_allclose(got.drop(columns=[7, 8]).sum(axis=0).to_numpy(), 1.0)
    if normalize == "all":
        assert got.to_numpy().sum() == pytest.approx(1.0)


@pytest.mark.parametrize("k", [1, 2, 5, 9])
def test_top_k_accuracy_matches_sklearn(data, k):
    y_true, _, probs = data
    want = skm.top_k_accuracy_score(y_true, probs, k=k, labels=LABELS)
    assert ev.top_k_accuracy(y_true, probs, k=k) == pytest.approx(want)


def test_top_k_equal_to_n_classes_is_one(data):
    y_true, _, probs = data
    assert ev.top_k_accuracy(y_true, probs, k=N_CLASSES) == 1.0


def test_top_1_equals_argmax_accuracy(data):
    y_true, _, probs = data
    assert ev.top_k_accuracy(y_true, probs, k=1) == pytest.approx(
        skm.accuracy_score(y_true, probs.argmax(axis=1))
    )


def test_summary_metrics_keys_and_micro_equal_top1(data):
    y_true, y_pred, probs = data
    got = ev.summary_metrics(y_true, y_pred, probs=probs)
    assert set(got) == {"top1", "top5", "micro_precision", "micro_recall", "micro_f1",
                        "macro_precision", "macro_recall", "macro_f1", "weighted_f1", "n_images"}
    assert got["n_images"] == len(y_true) and isinstance(got["n_images"], int)
    assert got["top1"] == np.mean(y_true == y_pred)
    assert got["top5"] == ev.top_k_accuracy(y_true, probs, k=5)
    # single-label multiclass: micro P = R = F1 = accuracy, on any test set
    assert got["micro_precision"] == got["micro_recall"] == got["micro_f1"] == got["top1"]
    # n_classes comes from probs: class 3 (never true) and 7, 8 (never predicted) count
    report = ev.classification_report(y_true, y_pred, n_classes=N_CLASSES)
    assert got["macro_f1"] == report.loc["macro avg", "f1"]
    assert got["macro_precision"] == report.loc[list(range(N_CLASSES)), "precision"].mean()


def test_summary_metrics_macro_counts_unseen_classes():
    """A class nobody predicts or holds still lowers the macro average when n_classes says so."""
    y = [0, 0, 1, 1]
    assert ev.summary_metrics(y, y)["macro_f1"] == 1.0
    assert ev.summary_metrics(y, y, n_classes=4)["macro_f1"] == 0.5  # classes 2, 3 score 0


def test_summary_metrics_top5_nan_cases(data):
    y_true, y_pred, probs = data
    assert np.isnan(ev.summary_metrics(y_true, y_pred)["top5"])
    small = np.array([0, 1, 2, 3, 4, 0])
    p5 = np.full((6, 5), 0.2)
    assert np.isnan(ev.summary_metrics(small, small, probs=p5)["top5"])


def test_classification_report_table(data):
    y_true, y_pred, _ = data
    names = [f"c{i}" for i in range(N_CLASSES)]
    got = ev.classification_report(y_true, y_pred, class_names=names)
    assert list(got.index) == [*names, *ev.AVERAGE_ROWS]
    assert got.index.name == "class"
    assert list(got.columns) == list(ev.REPORT_COLUMNS)
    assert got["support"].dtype == np.int64
    assert all(got[c].dtype == np.float64 for c in ("precision", "recall", "f1"))
    counts = ev.confusion_counts(y_true, y_pred, n_classes=N_CLASSES)
    np.testing.assert_array_equal(got.loc[names, "support"], counts.sum(axis=1))
    np.testing.assert_allclose(got.loc[names, "recall"].drop("c3"),
                               np.delete(np.diag(counts) / counts.sum(axis=1).clip(1), 3))
    # the micro row is accuracy, its support the number of images
    accuracy = np.mean(y_true == y_pred)
    assert got.loc["micro avg", ["precision", "recall", "f1"]].tolist() == [accuracy] * 3
    assert got.loc[list(ev.AVERAGE_ROWS), "support"].tolist() == [len(y_true)] * 3
    # zero-division cases
    assert got.loc["c7", "precision"] == 0.0 and got.loc["c7", "recall"] == 0.0  # never predicted
    assert got.loc["c3", "recall"] == 0.0 and got.loc["c3", "support"] == 0  # never true


@pytest.mark.parametrize("n_classes, seed", [(N_CLASSES, 0), (100, 1)])
def test_report_averages_equal_sklearns_report(n_classes, seed):
    """The averages are taken here from sklearn's per-class scores: they must be its report's."""
    y_true, y_pred, _ = _data(n=3000, n_classes=n_classes, seed=seed)
    got = ev.classification_report(y_true, y_pred, n_classes=n_classes)
    want = skm.classification_report(y_true, y_pred, labels=np.arange(n_classes),
                                     output_dict=True, zero_division=0)
    for row in ("macro avg", "weighted avg"):
        assert got.loc[row, ["precision", "recall", "f1"]].tolist() == [
            want[row]["precision"], want[row]["recall"], want[row]["f1-score"]]
    assert got.loc["micro avg", "f1"] == want["accuracy"]
    s = ev.summary_metrics(y_true, y_pred, n_classes=n_classes)
    assert (s["macro_f1"], s["weighted_f1"], s["top1"]) == (
        want["macro avg"]["f1-score"], want["weighted avg"]["f1-score"], want["accuracy"])


def test_report_100_classes_has_a_row_per_class():
    y_true, y_pred, _ = _data(n=3000, n_classes=100, seed=1)
    got = ev.classification_report(y_true, y_pred, n_classes=100)
    assert list(got.index) == [*range(100), *ev.AVERAGE_ROWS]
    assert got.loc[list(range(100)), "support"].sum() == 3000


def test_class_balance(data):
    y_true, _, _ = data
    got = ev.class_balance(y_true, n_classes=N_CLASSES)
    assert list(got.columns) == ["class", "count", "share"]
    np.testing.assert_array_equal(got["count"].to_numpy(), np.bincount(y_true, minlength=N_CLASSES))
    assert got.loc[3, "count"] == 0
    assert got["share"].sum() == pytest.approx(1.0)
    named = ev.class_balance([0, 0, 1], class_names=["cat", "dog", "frog"])
    assert named["class"].tolist() == ["cat", "dog", "frog"]
    assert named["count"].tolist() == [2, 1, 0]


def test_per_class_change(data):
    y_true, y_pred, _ = data
    base = ev.classification_report(y_true, y_true, n_classes=N_CLASSES)  # perfect baseline
    comp = ev.classification_report(y_true, y_pred, n_classes=N_CLASSES)
    got = ev.per_class_change(base, comp)
    assert len(got) == N_CLASSES  # averages dropped
    assert got["recall_delta"].is_monotonic_increasing
    for m in ("precision", "recall", "f1"):
        np.testing.assert_allclose(got[f"{m}_delta"], got[f"{m}_after"] - got[f"{m}_before"])
        np.testing.assert_allclose(got[f"{m}_after"], comp.loc[got.index, m].astype(float))
    assert got.index[0] in (7, 8)  # never predicted after compression: recall 1 -> 0
    # reordering one report's rows does not change the answer
    shuffled = comp.iloc[::-1]
    pd.testing.assert_frame_equal(ev.per_class_change(base, shuffled), got)


# --------------------------------------------------------------------------- hand-worked


def test_hand_worked_tiny_case():
    # 3 classes. true: 0 0 1 1 1 2 ; pred: 0 1 1 1 0 0
    y_true = [0, 0, 1, 1, 1, 2]
    y_pred = [0, 1, 1, 1, 0, 0]
    cm = ev.confusion_counts(y_true, y_pred)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [1, 2, 0], [1, 0, 0]])
    rep = ev.classification_report(y_true, y_pred, class_names=["a", "b", "c"])
    # a: TP1 predicted3 support2 -> P 1/3 R 1/2 F1 0.4
    # b: TP2 predicted3 support3 -> P 2/3 R 2/3 F1 2/3
    # c: TP0 predicted0 support1 -> P 0 (zero division) R 0 F1 0
    np.testing.assert_allclose(rep.loc["a", ["precision", "recall", "f1"]].astype(float), [1 / 3, 1 / 2, 0.4])
    np.testing.assert_allclose(rep.loc["b", ["precision", "recall", "f1"]].astype(float), [2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(rep.loc["c", ["precision", "recall", "f1"]].astype(float), [0, 0, 0])
    assert rep.loc["micro avg", "f1"] == pytest.approx(0.5)
    assert rep.loc["macro avg", "f1"] == pytest.approx((0.4 + 2 / 3) / 3)
    assert rep.loc["weighted avg", "f1"] == pytest.approx((2 * 0.4 + 3 * 2 / 3) / 6)
    norm = ev.confusion_matrix(y_true, y_pred, normalize="true")
    np.testing.assert_allclose(norm.to_numpy(), [[0.5, 0.5, 0], [1 / 3, 2 / 3, 0], [1, 0, 0]])
    s = ev.summary_metrics(y_true, y_pred)
    assert s["top1"] == pytest.approx(0.5) and s["n_images"] == 6


def test_top_k_ties_prefer_lower_class_id():
    probs = np.array([[0.25, 0.25, 0.25, 0.25]] * 4)
    y_true = np.array([0, 1, 2, 3])
    # all tied: rank = class id, so top-k hits exactly classes 0..k-1
    assert ev.top_k_accuracy(y_true, probs, k=1) == 0.25
    assert ev.top_k_accuracy(y_true, probs, k=2) == 0.5
    assert ev.top_k_accuracy(y_true, probs, k=4) == 1.0
    # consistent with argmax (first max wins)
    assert ev.top_k_accuracy(y_true, probs, k=1) == np.mean(probs.argmax(axis=1) == y_true)


def test_top_k_is_not_sklearns_on_ties():
    """Why top-k is computed here: int8 outputs tie, and sklearn breaks ties the other way."""
    probs = np.array([[128, 128, 0], [0, 64, 192]], dtype=np.float64) / 256  # int8-like steps
    y_true = np.array([0, 2])
    assert ev.top_k_accuracy(y_true, probs, k=1) == np.mean(probs.argmax(axis=1) == y_true) == 1.0
    assert skm.top_k_accuracy_score(y_true, probs, k=1, labels=[0, 1, 2]) == 0.5


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ev.confusion_counts([0, 1], [0, 1, 1]), "2 vs 3"),
        (lambda: ev.confusion_counts([[0, 1]], [[0, 1]]), r"\(1, 2\)"),
        (lambda: ev.confusion_counts([0.0, 1.0], [0, 1]), "float64"),
        (lambda: ev.confusion_counts([0, -1], [0, 1]), "-1"),
        (lambda: ev.confusion_counts([0, 12], [0, 1], n_classes=10), "label 12"),
        (lambda: ev.confusion_counts([], []), "empty"),
        (lambda: ev.confusion_counts([0, 1], [0, 1], n_classes=0), "n_classes must be a positive integer, got 0"),
        (lambda: ev.classification_report([0, 1], [0, 1], class_names=["a"], n_classes=2), "1 names"),
        (lambda: ev.confusion_matrix([0, 1], [0, 1], normalize="rows"), "'rows'"),
        (lambda: ev.top_k_accuracy([0, 1], np.full((2, 3), 1 / 3), k=0), "got 0"),
        (lambda: ev.top_k_accuracy([0, 1], np.full((2, 3), 1 / 3), k=4), "got 4"),
        (lambda: ev.top_k_accuracy([0, 1], np.full((2, 3), 2.0), k=1), "sums to 6"),
        (lambda: ev.top_k_accuracy([0, 1], np.full((3, 3), 1 / 3), k=1), "3 rows"),
        (lambda: ev.top_k_accuracy([0, 5], np.full((2, 3), 1 / 3), k=1), "label 5"),
        (lambda: ev.top_k_accuracy([0, 1], np.full(3, 1 / 3), k=1), r"\(3,\)"),
        (lambda: ev.top_k_accuracy([0, 1], np.array([[1.5, -0.5], [0.5, 0.5]]), k=1), "-0.5"),
        (lambda: ev.summary_metrics([0, 1], [0, 1], probs=np.full((2, 3), 1 / 3), n_classes=4), "3 columns"),
    ],
)
def test_bad_inputs_raise_with_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_per_class_change_rejects_mismatched_reports():
    a = ev.classification_report([0, 1, 1], [0, 1, 1])
    b = ev.classification_report([0, 0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="support differs for class 0"):
        ev.per_class_change(a, b)
    c = ev.classification_report([0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match=r"only in comp \[2\]"):
        ev.per_class_change(a, c)
    with pytest.raises(ValueError, match="lacks column"):
        ev.per_class_change(a, a.drop(columns="recall"))
