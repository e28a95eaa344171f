"""cielib.evaluate agrees with scikit-learn, handles a hand-worked case, rejects bad input."""

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


# --------------------------------------------------------------------------- vs scikit-learn


def test_confusion_counts_matches_sklearn(data):
    y_true, y_pred, _ = data
    got = ev.confusion_counts(y_true, y_pred, n_classes=N_CLASSES)
    np.testing.assert_array_equal(got, skm.confusion_matrix(y_true, y_pred, labels=LABELS))
    assert got.dtype == np.int64 and got.shape == (N_CLASSES, N_CLASSES)


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_matches_sklearn(data, normalize):
    y_true, y_pred, _ = data
    got = ev.confusion_matrix(y_true, y_pred, n_classes=N_CLASSES, normalize=normalize)
    want = skm.confusion_matrix(y_true, y_pred, labels=LABELS, normalize=normalize)
    np.testing.assert_allclose(got.to_numpy(), want)
    assert got.index.name == "true" and got.columns.name == "predicted"
    if normalize == "true":
        np.testing.assert_array_equal(got.loc[3].to_numpy(), 0.0)  # no support: row stays 0
        sums = got.drop(index=3).sum(axis=1).to_numpy()
        np.testing.assert_allclose(sums, 1.0)
    if normalize is None:
        assert pd.api.types.is_integer_dtype(got.to_numpy().dtype)


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


def test_summary_metrics_match_sklearn(data):
    y_true, y_pred, probs = data
    got = ev.summary_metrics(y_true, y_pred, probs=probs)
    assert got["n_images"] == len(y_true)
    assert got["top1"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert got["top5"] == pytest.approx(skm.top_k_accuracy_score(y_true, probs, k=5, labels=LABELS))
    for avg in ("micro", "macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=LABELS, average=avg, zero_division=0
        )
        if avg != "weighted":
            assert got[f"{avg}_precision"] == pytest.approx(p)
            assert got[f"{avg}_recall"] == pytest.approx(r)
        assert got[f"{avg}_f1"] == pytest.approx(f)
    # single-label multiclass: micro P = R = F1 = accuracy (the paper's Table 1 pattern)
    assert got["micro_f1"] == pytest.approx(got["top1"])


def test_summary_metrics_default_labels_match_sklearn_default(data):
    """Every class occurs in y_true or y_pred, so sklearn's inferred labels are all ten."""
    y_true, y_pred, _ = data
    got = ev.summary_metrics(y_true, y_pred)
    _, _, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    assert got["macro_f1"] == pytest.approx(f)


def test_summary_metrics_top5_nan_cases(data):
    y_true, y_pred, probs = data
    assert np.isnan(ev.summary_metrics(y_true, y_pred)["top5"])
    small = np.array([0, 1, 2, 3, 4, 0])
    p5 = np.full((6, 5), 0.2)
    assert np.isnan(ev.summary_metrics(small, small, probs=p5)["top5"])


def test_classification_report_matches_sklearn(data):
    y_true, y_pred, _ = data
    names = [f"c{i}" for i in range(N_CLASSES)]
    got = ev.classification_report(y_true, y_pred, class_names=names)
    want = skm.classification_report(
        y_true, y_pred, labels=LABELS, target_names=names, output_dict=True, zero_division=0
    )
    assert list(got.index) == [*names, "micro avg", "macro avg", "weighted avg"]
    assert list(got.columns) == ["precision", "recall", "f1", "support"]
    assert got["support"].dtype == np.int64
    for row in [*names, "macro avg", "weighted avg"]:
        w = want[row]
        assert got.loc[row, ["precision", "recall", "f1"]].to_numpy() == pytest.approx(
            [w["precision"], w["recall"], w["f1-score"]]
        ), row
        assert got.loc[row, "support"] == w["support"], row
    # sklearn reports micro avg as "accuracy" when all labels are included
    assert got.loc["micro avg", ["precision", "recall", "f1"]].to_numpy() == pytest.approx(
        [want["accuracy"]] * 3
    )
    assert got.loc["micro avg", "support"] == len(y_true)
    # zero-division cases
    assert got.loc["c7", "precision"] == 0.0 and got.loc["c7", "recall"] == 0.0  # never predicted
    assert got.loc["c3", "recall"] == 0.0 and got.loc["c3", "support"] == 0  # never true


def test_report_100_classes_matches_sklearn():
    y_true, y_pred, _ = _data(n=3000, n_classes=100, seed=1)
    got = ev.classification_report(y_true, y_pred, n_classes=100)
    want = skm.classification_report(
        y_true, y_pred, labels=np.arange(100), output_dict=True, zero_division=0
    )
    np.testing.assert_allclose(got.loc[list(range(100)), "f1"].to_numpy(),
                               [want[str(i)]["f1-score"] for i in range(100)])
    assert got.loc["macro avg", "f1"] == pytest.approx(want["macro avg"]["f1-score"])


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


def test_module_does_not_import_sklearn_or_tensorflow():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(ev))
    imported = {
        (n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
        for n in ast.walk(tree)
        if isinstance(n, (ast.Import, ast.ImportFrom))
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert imported <= {"__future__", "typing", "numpy", "pandas"}, imported
