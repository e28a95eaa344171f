"""cielib.cie: both CIE schemas on small inputs whose answer is planted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import pandas as pd
from scipy import stats

from cielib.cie import (
    LOW_POWER_MODELS,
    agreement,
    agreement_table,
    benjamini_hochberg,
    beyond_null,
    expected_false_flags,
    modal_labels,
    population_cie,
    population_null,
    population_summary,
    schemas_vs_null,
    single_model_cie,
    single_model_cie_from_recalls,
    single_model_null,
    single_model_table,
)

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def preds_from_counts(y: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Predictions (n_models, n_images) in which model i gets exactly counts[i, c]
    images of class c right (which ones is random); wrong ones say (c + 1) % K."""
    k = counts.shape[1]
    out = np.empty((counts.shape[0], y.size), dtype=np.int64)
    for i in range(counts.shape[0]):
        for c in range(k):
            idx = rng.permutation(np.flatnonzero(y == c))
            out[i, idx[: counts[i, c]]] = c
            out[i, idx[counts[i, c] :]] = (c + 1) % k
    return out


def class_shift_data(seed: int = 0):
    """20 classes x 50 images, 12 seeds. Compressed model i is baseline model i with
    class 3 losing 30% recall (15 of 50 images, +-2 noise); every other class keeps
    exactly the baseline's correct counts (noise 40 +- 5 per model and class)."""
    rng = np.random.default_rng(seed)
    k, per, m = 20, 50, 12
    y = np.repeat(np.arange(k), per)
    base_counts = 40 + rng.integers(-5, 6, size=(m, k))
    comp_counts = base_counts.copy()
    comp_counts[:, 3] -= 15 + rng.integers(-2, 3, size=m)
    return y, preds_from_counts(y, base_counts, rng), preds_from_counts(y, comp_counts, rng)


# --------------------------------------------------------------------------------------
# single-model schema
# --------------------------------------------------------------------------------------


def test_single_model_worked_by_hand():
    # classes 0,1,2 with 4,3,3 images
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    # before: class 0 4/4, class 1 2/3, class 2 1/3 -> top-1 7/10 = 0.7
    base = np.array([0, 0, 0, 0, 1, 1, 0, 2, 0, 0])
    # after:  class 0 3/4, class 1 3/3, class 2 1/3 -> top-1 7/10 = 0.7
    comp = np.array([0, 0, 0, 1, 1, 1, 1, 2, 1, 1])
    r = single_model_cie(y, base, comp)
    # accuracies before [1, 2/3, 1/3], mean 2/3,
    # boundary = sqrt(((1/3)^2 + 0 + (1/3)^2) / 3) = sqrt(2/27) = 0.2722
    assert r.boundary == pytest.approx(math.sqrt(2 / 27))
    assert r.top1_before == pytest.approx(0.7)
    assert r.top1_after == pytest.approx(0.7)
    t = r.table
    assert t["n_images"].tolist() == [4, 3, 3]
    assert t["accuracy_before"].to_numpy() == pytest.approx([1, 2 / 3, 1 / 3])
    assert t["accuracy_after"].to_numpy() == pytest.approx([0.75, 1, 1 / 3])
    # deviation before [0.3, -1/30, -11/30]: |.| > 0.2722 -> x = {0, 2}
    assert t["deviation_before"].to_numpy() == pytest.approx([0.3, -1 / 30, -11 / 30])
    assert t["outside_before"].tolist() == [True, False, True]
    # deviation after [0.05, 0.3, -11/30] against the SAME boundary -> y = {1, 2}
    assert t["deviation_after"].to_numpy() == pytest.approx([0.05, 0.3, -11 / 30])
    assert t["outside_after"].tolist() == [False, True, True]
    # impacted = x ^ y = {0, 1}
    assert r.impacted_classes == [0, 1]
    assert t["impacted"].tolist() == [True, True, False]
    # impacted images = |0.05-0.3|*4 + |0.3+1/30|*3 + 0*3 = 1 + 1 + 0 = 2
    assert r.impacted_images == pytest.approx(2.0)


def test_single_model_boundary_uses_uncompressed_std_only():
    # every class drops to 0 after compression: after-std is 0, but the boundary stays
    y = np.array([0, 0, 1, 1])
    r = single_model_cie(y, np.array([0, 0, 1, 0]), np.array([1, 1, 0, 0]))
    # before: accs [1, 0.5], std 0.25, top1 0.75, dev [0.25, -0.25] -> not outside
    assert r.boundary == pytest.approx(0.25)
    assert r.table["outside_before"].tolist() == [False, False]
    # after: accs [0, 0], top1 0 -> dev [0, 0] -> not outside; nothing impacted
    assert r.impacted_classes == []
    # impacted images = |0 - 0.25|*2 + |0 + 0.25|*2 = 1
    assert r.impacted_images == pytest.approx(1.0)


def test_single_model_class_without_images():
    # n_classes=4 but only classes 0 and 2 have images; class 3 is predicted though
    y = np.array([0, 0, 2, 2], dtype=np.uint8)
    base = np.array([0, 0, 2, 3], dtype=np.int16)
    comp = np.array([0, 3, 3, 3])
    r = single_model_cie(y, base, comp, n_classes=5)
    t = r.table
    assert list(t.index) == [0, 1, 2, 3, 4]
    assert t.loc[[1, 3, 4], "n_images"].tolist() == [0, 0, 0]
    assert t.loc[[1, 3, 4], "accuracy_before"].isna().all()
    assert not t.loc[[1, 3, 4], "impacted"].any()
    # boundary only over classes 0 and 2: accs [1, 0.5] -> 0.25
    assert r.boundary == pytest.approx(0.25)
    assert math.isfinite(r.impacted_images)


def test_single_model_n_classes_default_covers_predictions():
    y = np.array([0, 1, 2])
    r = single_model_cie(y, y, np.array([0, 1, 4]))
    assert len(r.table) == 5


# --------------------------------------------------------------------------------------
# population schema
# --------------------------------------------------------------------------------------


def test_population_finds_exactly_the_flipped_images():
    k, n = 10, 200
    y = np.arange(n) % k
    cols = np.arange(n)
    # 5 baseline models, 7 compressed: all correct except that one model per image
    # (for every third image) says label+2 -- never enough to move the modal label
    base = np.tile(y, (5, 1))
    noisy = cols[cols % 3 == 0]
    base[noisy % 5, noisy] = (y[noisy] + 2) % k
    comp = np.tile(y, (7, 1))
    comp[noisy % 7, noisy] = (y[noisy] + 2) % k
    flipped = np.array([3, 17, 42, 99, 150, 199])
    comp[:4, flipped] = (y[flipped] + 1) % k  # 4 of 7 models now agree on label+1
    r = population_cie(y, base, comp)
    assert r.cie_images.dtype == np.int64
    np.testing.assert_array_equal(r.cie_images, flipped)
    im = r.images
    assert im.loc[flipped, "modal_comp"].tolist() == ((y[flipped] + 1) % k).tolist()
    assert im["base_correct"].all()
    assert (~im.loc[flipped, "comp_correct"]).all()
    assert im["cie"].sum() == flipped.size
    assert list(im.columns) == ["label", "modal_base", "modal_comp", "base_correct", "comp_correct", "cie"]


def test_population_flags_only_the_shifted_class():
    y, base, comp = class_shift_data()
    r = population_cie(y, base, comp)
    assert r.impacted_classes == [3]
    t = r.table
    # class 3 loses 30 points absolute; normalized it loses ~0.3 - 0.015 (top-1 drop)
    assert (t.loc[3, "recall_comp"] - t.loc[3, "recall_base"]) == pytest.approx(-0.3, abs=0.02)
    assert t.loc[3, "difference"] == pytest.approx(-0.285, abs=0.02)
    assert t.loc[3, "t"] < 0 and t.loc[3, "p"] < 1e-6
    assert (t["p_adjusted"] == t["p"]).all()  # no correction asked
    expected = {"mean_norm_recall_base", "mean_norm_recall_comp", "difference", "t", "p",
                "p_adjusted", "significant", "recall_base", "recall_comp", "n_images", "normalize"}
    assert set(t.columns) == expected


def test_uniform_shift_is_not_flagged():
    # every class loses exactly 10 of 50 images in every compressed model (models in
    # another order): absolute recall drops 0.2 everywhere, normalized recall does not
    rng = np.random.default_rng(1)
    k, per, m = 10, 50, 8
    y = np.repeat(np.arange(k), per)
    base_counts = 40 + rng.integers(-5, 6, size=(m, k))
    comp_counts = base_counts[rng.permutation(m)] - 10
    base = preds_from_counts(y, base_counts, rng)
    comp = preds_from_counts(y, comp_counts, rng)
    r = population_cie(y, base, comp)
    assert r.impacted_classes == []
    t = r.table
    np.testing.assert_allclose(t["recall_comp"] - t["recall_base"], -0.2, atol=1e-12)
    np.testing.assert_allclose(t["difference"], 0.0, atol=1e-12)
    # ...whereas an un-normalized t-test would flag every class
    abs_p = stats.ttest_ind(base_counts / per, comp_counts / per, equal_var=False).pvalue
    assert (abs_p < 0.05).all()


def test_modal_ties_go_to_highest_label():
    # image 0: models say 1 and 4 -> tie -> 4; image 1: 2,0,2 -> 2 (majority wins)
    assert modal_labels(np.array([[1, 2], [4, 0]])).tolist() == [4, 2]  # both ties
    assert modal_labels(np.array([[1, 2], [4, 0], [0, 2]])).tolist() == [4, 2]
    assert modal_labels(np.array([[2], [0], [2]])).tolist() == [2]
    assert modal_labels(np.array([[0, 3], [3, 0]])).tolist() == [3, 3]
    y = np.array([1, 2])
    r = population_cie(y, np.array([[1, 2], [4, 2]]), np.array([[1, 2], [1, 2]]))
    assert r.images["modal_base"].tolist() == [4, 2]
    assert r.cie_images.tolist() == [0]


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    # sorted 0.005, 0.01, 0.03, 0.04, 0.5 times m/rank = 0.025, 0.025, 0.05, 0.05, 0.5,
    # running min from the top leaves them unchanged
    np.testing.assert_allclose(benjamini_hochberg(p), [0.025, 0.05, 0.05, 0.025, 0.5])
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p))
    # NaN ignored (m = 3): 0.01*3/1 = 0.03, 0.02*3/2 = 0.03, 0.025*3/3 = 0.025; the
    # running min from the largest p pulls the first two down to 0.025
    q = benjamini_hochberg(np.array([0.01, 0.02, np.nan, 0.025]))
    np.testing.assert_allclose(q, [0.025, 0.025, np.nan, 0.025])
    assert benjamini_hochberg(np.array([0.9, 0.95])).max() <= 1.0


def test_fdr_bh_flags_a_subset():
    # 100 classes, independent noise between the populations (so plain p < 0.05 lets
    # some null classes through); class 3 loses 30% in every compressed model
    rng = np.random.default_rng(7)
    k, per, m = 100, 20, 10
    y = np.repeat(np.arange(k), per)
    base_counts = 16 + rng.integers(-2, 3, size=(m, k))
    comp_counts = 16 + rng.integers(-2, 3, size=(m, k))
    comp_counts[:, 3] -= 6
    base = preds_from_counts(y, base_counts, rng)
    comp = preds_from_counts(y, comp_counts, rng)
    plain = population_cie(y, base, comp)
    bh = population_cie(y, base, comp, correction="fdr_bh")
    assert 3 in plain.impacted_classes and 3 in bh.impacted_classes
    assert set(bh.impacted_classes) <= set(plain.impacted_classes)
    assert len(bh.impacted_classes) < len(plain.impacted_classes)
    assert (bh.table["p_adjusted"] >= bh.table["p"] - 1e-15).all()
    np.testing.assert_allclose(bh.table["p_adjusted"], benjamini_hochberg(bh.table["p"].to_numpy()))


def test_zero_variance_both_populations():
    y = np.repeat(np.arange(3), 10)
    base = preds_from_counts(y, np.full((3, 3), 8), np.random.default_rng(0))
    base[:] = base[0]  # three identical models: recall .8 each, top-1 .8
    # identical values on both sides -> p = 1, t = 0, nothing flagged
    same = population_cie(y, base, base[:2])
    assert same.table["p"].tolist() == [1.0, 1.0, 1.0]
    assert same.table["t"].tolist() == [0.0, 0.0, 0.0]
    assert same.impacted_classes == []
    # deterministic shift: class 0 -> 6/10, class 1 -> 10/10, class 2 stays 8/10,
    # top-1 stays .8, so normalized recall goes -.2, +.2, 0 in every model
    comp = preds_from_counts(y, np.tile([6, 10, 8], (4, 1)), np.random.default_rng(1))
    comp[:] = comp[0]
    r = population_cie(y, base, comp)
    assert r.table["p"].tolist() == [0.0, 0.0, 1.0]
    assert r.table["t"].tolist() == [-np.inf, np.inf, 0.0]
    assert r.impacted_classes == [0, 1]
    # only one side constant: ordinary Welch test, finite p
    comp2 = comp.copy()
    comp2[0, :2] = 1  # model 0 gets two more class-0 images wrong
    r2 = population_cie(y, base, comp2)
    assert 0.0 < r2.table.loc[0, "p"] < 1.0


def test_population_class_without_images_is_never_significant():
    y = np.array([0, 0, 2, 2])
    base = np.array([[0, 0, 2, 2], [0, 0, 2, 0]])
    comp = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    r = population_cie(y, base, comp, correction="fdr_bh")
    t = r.table
    assert t.loc[1, "n_images"] == 0
    assert math.isnan(t.loc[1, "p"]) and not t.loc[1, "significant"]


# --------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------

Y = np.array([0, 1, 2, 0])
P = np.array([[0, 1, 2, 0], [0, 1, 1, 0]])

BAD = [
    (lambda: single_model_cie(Y.astype(float), Y, Y), r"y_true .*integer.*float64"),
    (lambda: single_model_cie(Y, Y.astype(bool), Y), r"y_pred_base .*bool"),
    (lambda: single_model_cie(P, Y, Y), r"y_true must be 1-D.*\(2, 4\)"),
    (lambda: single_model_cie(Y, Y, Y[:3]), r"y_pred_comp has 3 labels, but y_true has 4"),
    (lambda: single_model_cie(Y, np.array([0, -1, 2, 0]), Y), r"y_pred_base contains negative label -1"),
    (lambda: single_model_cie(Y, Y, np.array([0, 1, 5, 0]), n_classes=3),
     r"y_pred_comp contains label 5, but n_classes=3"),
    (lambda: single_model_cie(Y, Y, Y, n_classes=0), r"n_classes must be a positive integer.*got 0"),
    (lambda: single_model_cie([], [], []), r"y_true is empty"),
    (lambda: population_cie(Y, Y, P), r"base_preds must be 2-D.*\(4,\)"),
    (lambda: population_cie(Y, P, P[:, :3]), r"comp_preds has 3 images .*y_true has 4"),
    (lambda: population_cie(Y, P[:1], P), r"base_preds has 1 model"),
    (lambda: population_cie(Y, P, P[:0]), r"comp_preds has 0 model"),
    (lambda: population_cie(Y, P, P.astype(np.float32)), r"comp_preds .*float32"),
    (lambda: population_cie(np.array([0, -2, 1, 0]), P, P), r"y_true contains negative label -2"),
    (lambda: population_cie(Y, P, P, n_classes=2), r"contains label 2, but n_classes=2"),
    (lambda: population_cie(Y, P, P, alpha=0), r"alpha must be .*\(0, 1\); got 0"),
    (lambda: population_cie(Y, P, P, alpha=1.5), r"alpha .*got 1\.5"),
    (lambda: population_cie(Y, P, P, alpha=float("nan")), r"alpha .*got nan"),
    (lambda: population_cie(Y, P, P, correction="bonferroni"),
     r"correction must be None or 'fdr_bh'; got 'bonferroni'"),
    (lambda: agreement_table(Y, {"s": (P, P[:1])}), r"settings\['s'\] comp_preds has 1 model"),
    (lambda: agreement_table(Y, {"s": (P, np.vstack([P, P]))}), r"pairs seeds by row.*2 rows.*4"),
    (lambda: agreement_table(Y, {}), r"settings is empty"),
    (lambda: benjamini_hochberg([0.5, 1.2]), r"\[0, 1\]; got 1\.2"),
    (lambda: population_cie(Y, P, P, normalize="per_model"),
     r"normalize must be one of 'population', 'model'; got 'per_model'"),
    (lambda: agreement_table(Y, {"s": (P, P)}, normalize=None), r"normalize must be one of .*got None"),
    (lambda: single_model_cie(Y, Y, Y, boundary="compressed"),
     r"boundary must be one of 'uncompressed', 'own'; got 'compressed'"),
    (lambda: single_model_table(Y, {0: Y}, {"s": {0: Y}}, boundary=1), r"boundary must be one of .*got 1"),
    (lambda: single_model_cie_from_recalls([0.5, 90], [0.5, 0.5], n_images=[1, 1]),
     r"recall_before must lie in \[0, 1\] \(fractions, not percent\); got 90\.0"),
    (lambda: single_model_cie_from_recalls([0.5, 0.5], [0.5], n_images=[1, 1]),
     r"recall_after has 1 classes, but recall_before has 2"),
    (lambda: single_model_cie_from_recalls([0.5, 0.5], [0.5, 0.5], n_images=[1.0, 1.0]),
     r"n_images must be non-negative integers"),
    (lambda: single_model_cie_from_recalls([0.5, np.nan], [0.5, 0.5], n_images=[1, 1]),
     r"recall_before is NaN for class 1, which has test images"),
    (lambda: expected_false_flags(0), r"n_classes must be a positive integer; got 0"),
    (lambda: expected_false_flags(10, correction="holm"), r"correction must be None or 'fdr_bh'; got 'holm'"),
    (lambda: expected_false_flags(10, alpha=5), r"alpha .*got 5"),
    (lambda: single_model_null(Y, {0: Y}), r"dense has 1 model\(s\); the null needs at least 2 seeds"),
    (lambda: single_model_null(Y, {"a": Y, "b": Y}), r"dense keys must be integer seeds; got 'a'"),
    (lambda: population_null(Y, np.vstack([P, P[:1]])), r"dense has 3 model\(s\); .*at least 4 seeds"),
    (lambda: population_null(Y, np.vstack([P, P]), max_splits=0), r"max_splits must be a positive integer; got 0"),
    (lambda: population_null(Y, np.vstack([P, P]), normalize="x"), r"normalize must be one of"),
    (lambda: beyond_null(float("nan"), [1, 2]), r"observed must be a finite number; got nan"),
    (lambda: beyond_null(1, [1, float("nan")]), r"null contains NaN"),
]


@pytest.mark.parametrize("call, message", BAD, ids=[m for _, m in BAD])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------
# agreement
# --------------------------------------------------------------------------------------


def test_agreement_by_hand():
    a = agreement([1, 2, 3], {2, 3, 4, 5})
    assert a["n_single"] == 3 and a["n_population"] == 4 and a["n_both"] == 2
    assert a["precision"] == pytest.approx(2 / 3)
    assert a["recall"] == pytest.approx(1 / 2)
    assert a["f1"] == pytest.approx(4 / 7)  # 2 * (1/3) / (7/6)
    disjoint = agreement([1], [2])
    assert disjoint["precision"] == 0 and disjoint["recall"] == 0 and disjoint["f1"] == 0


@pytest.mark.parametrize(
    "s, p, precision_nan, recall_nan",
    [([], [1], True, False), ([1], [], False, True), ([], [], True, True)],
)
def test_agreement_nan_cases(s, p, precision_nan, recall_nan):
    a = agreement(s, p)
    assert math.isnan(a["precision"]) == precision_nan
    assert math.isnan(a["recall"]) == recall_nan
    assert math.isnan(a["f1"])


def test_agreement_table_pairs_seeds():
    y, base, comp = class_shift_data()
    out = agreement_table(y, {"shift": (base, comp), "none": (base, base)})
    assert list(out.index) == ["shift", "none"]
    pop = population_cie(y, base, comp)
    singles = [single_model_cie(y, base[i], comp[i]) for i in range(base.shape[0])]
    ags = [agreement(s.impacted_classes, pop.impacted_classes) for s in singles]
    row = out.loc["shift"]
    assert row["n_seeds"] == 12
    assert row["n_population"] == 1
    assert row["mean_recall"] == pytest.approx(np.mean([a["recall"] for a in ags]))
    assert row["mean_precision"] == pytest.approx(np.nanmean([a["precision"] for a in ags]))
    assert row["mean_n_single"] == pytest.approx(np.mean([len(s.impacted_classes) for s in singles]))
    assert row["mean_impacted_images_single"] == pytest.approx(np.mean([s.impacted_images for s in singles]))
    none = out.loc["none"]
    assert none["n_population"] == 0 and none["mean_n_single"] == 0
    assert math.isnan(none["mean_precision"]) and math.isnan(none["mean_recall"])
    assert none["n_cie_images_population"] == 0


# --------------------------------------------------------------------------------------
# normalization: the reference (one constant per population) vs per model
# --------------------------------------------------------------------------------------


def uneven_populations(seed: int, *, m_base=6, m_comp=7, k=8, per=40, shift_class=None, shift=0.0):
    """Populations whose models differ in overall accuracy (each model's skill scales
    every class), so that per-model and per-population normalization disagree."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), per)
    class_ease = rng.uniform(-0.1, 0.1, size=k)

    def population(m, drop):
        skill = rng.uniform(0.45, 0.85, size=m)  # models differ a lot in top-1
        acc = np.clip(skill[:, None] + class_ease[None, :], 0.02, 0.98)
        if shift_class is not None:
            acc[:, shift_class] = np.clip(acc[:, shift_class] - drop, 0.0, 1.0)
        right = rng.random((m, y.size)) < acc[:, y]
        wrong = (y[None, :] + rng.integers(1, k, size=(m, y.size))) % k
        return np.where(right, y[None, :], wrong)

    return y, population(m_base, 0.0), population(m_comp, shift)


def loop_reference(y, base, comp, normalize):
    """A plain loop as Hooker et al.'s code does it: per class, every model's recall
    minus the normalizer, then scipy's ttest_ind(baseline, variant, equal_var=False)."""
    def recalls_and_top1(preds):
        rec = [[sum(1 for j in range(y.size) if y[j] == c and row[j] == c) / sum(1 for v in y if v == c)
                for c in range(int(y.max()) + 1)] for row in preds]
        top1 = [sum(1 for j in range(y.size) if row[j] == y[j]) / y.size for row in preds]
        return rec, top1

    rb, tb = recalls_and_top1(base)
    rc, tc = recalls_and_top1(comp)
    out = []
    for c in range(int(y.max()) + 1):
        if normalize == "population":
            baseline = [rb[i][c] - sum(tb) / len(tb) for i in range(len(rb))]
            variant = [rc[i][c] - sum(tc) / len(tc) for i in range(len(rc))]
        else:
            baseline = [rb[i][c] - tb[i] for i in range(len(rb))]
            variant = [rc[i][c] - tc[i] for i in range(len(rc))]
        res = stats.ttest_ind(baseline, variant, equal_var=False)
        out.append((float(res.statistic), float(res.pvalue)))
    return np.array(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_normalizations_match_the_plain_loop_and_differ(seed):
    y, base, comp = uneven_populations(seed)
    results = {}
    for normalize in ("population", "model"):
        r = population_cie(y, base, comp, normalize=normalize)
        ref = loop_reference(y, base, comp, normalize)
        # our t is comp - base; the reference's ttest_ind(baseline, variant) is base - comp
        np.testing.assert_allclose(r.table["t"], -ref[:, 0], rtol=1e-9)
        np.testing.assert_allclose(r.table["p"], ref[:, 1], rtol=1e-9)
        assert (r.table["normalize"] == normalize).all() and r.normalize == normalize
        results[normalize] = r
    pop, mod = results["population"].table, results["model"].table
    # the means are the same under both; the tests are not
    np.testing.assert_allclose(pop["difference"], mod["difference"], atol=1e-12)
    assert np.all(np.abs(pop["p"] - mod["p"]) > 1e-6)
    # removing each model's own top-1 removes the skill spread: smaller variance, smaller p
    assert np.median(mod["p"]) < np.median(pop["p"])


def test_default_normalization_is_the_references():
    y, base, comp = uneven_populations(3)
    default = population_cie(y, base, comp)
    ref = loop_reference(y, base, comp, "population")
    assert default.normalize == "population"
    np.testing.assert_allclose(default.table["p"], ref[:, 1], rtol=1e-9)
    assert default.table.attrs["normalize"] == "population"
    assert default.top1_base == pytest.approx(np.mean(base == y, axis=1).mean())


@pytest.mark.parametrize("normalize", ["population", "model"])
def test_planted_class_found_under_either_normalization(normalize):
    y, base, comp = uneven_populations(4, m_base=12, m_comp=12, shift_class=5, shift=0.45)
    r = population_cie(y, base, comp, normalize=normalize, correction="fdr_bh")
    assert 5 in r.impacted_classes
    assert r.table.loc[5, "difference"] < -0.3
    assert r.table["p"].idxmin() == 5


# --------------------------------------------------------------------------------------
# power
# --------------------------------------------------------------------------------------


def test_expected_false_flags_uncorrected():
    assert expected_false_flags(10, alpha=0.05) == pytest.approx(0.5)
    assert expected_false_flags(100, alpha=0.01, correction=None) == pytest.approx(1.0)


def test_expected_false_flags_bh_numbers_in_the_docstring():
    assert expected_false_flags(10, alpha=0.05, correction="fdr_bh") == pytest.approx(0.0548, abs=5e-5)
    assert expected_false_flags(100, alpha=0.05, correction="fdr_bh") == pytest.approx(0.0553, abs=5e-5)
    assert "0.0548" in expected_false_flags.__doc__ and "0.0553" in expected_false_flags.__doc__
    # many classes: still a finite number just above alpha (no overflow in the binomials)
    assert 0.05 < expected_false_flags(5000, alpha=0.05, correction="fdr_bh") < 0.06


def test_expected_false_flags_bh_matches_simulation():
    from cielib.cie import bh_complete_null_pmf

    m, alpha = 10, 0.05
    pmf = bh_complete_null_pmf(m, alpha)
    assert pmf.sum() == pytest.approx(1.0)
    assert 1 - pmf[0] == pytest.approx(alpha)  # P(any false flag) = alpha exactly
    expected = expected_false_flags(m, alpha=alpha, correction="fdr_bh")
    assert alpha < expected < 2 * alpha  # NOT at most alpha: BH may flag several at once
    # simulate BH on independent uniform p-values under the complete null
    rng = np.random.default_rng(0)
    p = rng.random((40_000, m))
    flags = (stats.false_discovery_control(p, axis=1) < alpha).sum(axis=1)
    assert flags.mean() == pytest.approx(expected, abs=0.006)
    assert (flags > 0).mean() == pytest.approx(alpha, abs=0.005)


def test_low_power_marked_in_results_and_tables():
    y, base, comp = uneven_populations(5, m_base=3, m_comp=3)
    small = population_cie(y, base, comp)
    assert small.low_power and "little power" in small.power_note and "3 vs 3" in small.power_note
    assert small.expected_false_flags == pytest.approx(0.05 * 8)
    assert "0.40 of 8 classes" in small.power_note
    y, base, comp = uneven_populations(5, m_base=LOW_POWER_MODELS, m_comp=LOW_POWER_MODELS + 2)
    big = population_cie(y, base, comp, correction="fdr_bh")
    assert not big.low_power and "little power" not in big.power_note
    assert "Benjamini-Hochberg" in big.power_note
    summary = population_summary({"small": small, "big": big})
    assert summary["low_power"].tolist() == [True, False]
    assert summary.loc["big", "correction"] == "fdr_bh" and summary.loc["small", "correction"] == "none"
    assert summary.loc["small", "n_models_base"] == 3 and summary.loc["big", "n_models_comp"] == 12
    assert (summary["normalize"] == "population").all()
    assert summary.loc["small", "expected_false_flags"] == pytest.approx(0.4)


# --------------------------------------------------------------------------------------
# single-model schema: the boundary before and after
# --------------------------------------------------------------------------------------


def test_boundary_own_uses_the_compressed_std():
    # same data as test_single_model_worked_by_hand
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    base = np.array([0, 0, 0, 0, 1, 1, 0, 2, 0, 0])
    comp = np.array([0, 0, 0, 1, 1, 1, 1, 2, 1, 1])
    paper_reading = single_model_cie(y, base, comp)
    own = single_model_cie(y, base, comp, boundary="own")
    # after: accs [0.75, 1, 1/3], mean 25/36; std = sqrt(mean of squared deviations)
    acc_after = np.array([0.75, 1.0, 1 / 3])
    assert own.boundary_after == pytest.approx(np.sqrt(np.mean((acc_after - acc_after.mean()) ** 2)))
    assert paper_reading.boundary_after == pytest.approx(own.boundary_after)  # reported either way
    assert own.boundary == paper_reading.boundary == pytest.approx(math.sqrt(2 / 27))
    assert own.boundary_mode == "own" and paper_reading.boundary_mode == "uncompressed"
    # here both stds are close (0.2722, 0.2727) and the flags agree; a case where they differ:
    y2 = np.repeat(np.arange(4), 10)
    b2 = np.where(np.arange(40) % 10 < np.repeat([9, 7, 7, 5], 10), y2, (y2 + 1) % 4)
    c2 = np.where(np.arange(40) % 10 < np.repeat([10, 4, 7, 3], 10), y2, (y2 + 1) % 4)
    a = single_model_cie(y2, b2, c2)
    o = single_model_cie(y2, b2, c2, boundary="own")
    # before: accs [.9,.7,.7,.5], top-1 .7, std sqrt(.02)=.1414: outside {0, 3}
    # after: accs [1,.4,.7,.3], top-1 .6, dev [.4,-.2,.1,-.3]; std .2739
    assert a.boundary == pytest.approx(math.sqrt(0.02))
    assert o.boundary_after == pytest.approx(np.std([1, 0.4, 0.7, 0.3]))
    # uncompressed boundary .1414: after-outside {0, 1, 3} -> impacted {1}
    assert a.impacted_classes == [1]
    # own boundary .2739: after-outside {0, 3} -> impacted {}
    assert o.impacted_classes == [] and o.table.attrs["boundary_mode"] == "own"
    assert a.impacted_images == pytest.approx(o.impacted_images)  # step 7 has no boundary


def test_from_recalls_equals_from_labels():
    y, base, comp = class_shift_data(2)
    for mode in ("uncompressed", "own"):
        labels = single_model_cie(y, base[0], comp[0], boundary=mode)
        recalls = single_model_cie_from_recalls(
            labels.table["accuracy_before"], labels.table["accuracy_after"],
            n_images=labels.table["n_images"].to_numpy(), boundary=mode)
        assert recalls.impacted_classes == labels.impacted_classes
        assert recalls.impacted_images == pytest.approx(labels.impacted_images)
        assert recalls.top1_before == pytest.approx(labels.top1_before)  # weighted mean recall
        assert recalls.boundary_after == pytest.approx(labels.boundary_after)
        assert recalls.table["outside_after"].tolist() == labels.table["outside_after"].tolist()


def test_single_model_table_reports_both_boundaries():
    y, base, comp = class_shift_data(0)
    t = single_model_table(y, {0: base[0], 1: base[1]}, {"shift": {0: comp[0], 1: comp[1], 7: comp[2]}},
                           boundary="own")
    assert list(t.columns) == ["setting", "seed", "boundary_mode", "impacted_classes", "classes",
                               "impacted_images", "boundary_before", "boundary_after",
                               "top1_before", "top1_after"]
    assert t["seed"].tolist() == [0, 1]  # seed 7 has no dense model
    r = single_model_cie(y, base[1], comp[1], boundary="own")
    row = t.iloc[1]
    assert row["boundary_mode"] == "own"
    assert row["boundary_before"] == pytest.approx(r.boundary)
    assert row["boundary_after"] == pytest.approx(r.boundary_after)
    assert row["boundary_before"] != pytest.approx(row["boundary_after"])


# --------------------------------------------------------------------------------------
# the null
# --------------------------------------------------------------------------------------


def test_single_model_null_on_identical_models_flags_nothing():
    y = np.repeat(np.arange(5), 20)
    pred = np.where(np.arange(100) % 4 == 0, (y + 1) % 5, y)
    null = single_model_null(y, {3: pred, 5: pred, 9: pred})
    assert len(null) == 6  # ordered pairs
    assert sorted(zip(null["seed_before"], null["seed_after"])) == [
        (3, 5), (3, 9), (5, 3), (5, 9), (9, 3), (9, 5)]
    assert (null["impacted_classes"] == 0).all() and (null["impacted_images"] == 0).all()
    assert (null["boundary_mode"] == "uncompressed").all()


def test_single_model_null_finds_a_planted_odd_seed():
    # six classes of 10 images; seeds 0 and 1 get the same number right per class (other
    # images), seed 2 loses 5 of class 3. Worked by hand: (2, x) flags exactly {3};
    # (x, 2) flags 3 among others (the dense boundary is narrow); (0, 1) flags nothing.
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(6), 10)
    counts = np.array([8, 9, 8, 8, 7, 8])
    odd = counts.copy()
    odd[3] = 3
    dense = {s: preds_from_counts(y, (odd if s == 2 else counts)[None, :], rng)[0] for s in range(3)}
    null = single_model_null(y, dense)
    with_2 = null[(null["seed_before"] == 2) | (null["seed_after"] == 2)]
    assert with_2["classes"].str.split().apply(lambda c: "3" in c).all()
    assert null[null["seed_before"] == 2]["classes"].tolist() == ["3", "3"]
    without = null[(null["seed_before"] != 2) & (null["seed_after"] != 2)]
    assert (without["impacted_classes"] == 0).all() and (without["impacted_images"] == 0).all()
    # images are symmetric in the pair
    for (a, b), row in null.set_index(["seed_before", "seed_after"]).iterrows():
        other = null[(null["seed_before"] == b) & (null["seed_after"] == a)].iloc[0]
        assert row["impacted_images"] == pytest.approx(other["impacted_images"])
    # the same as single_model_cie run pair by pair
    r = single_model_cie(y, dense[0], dense[2])
    row = null[(null["seed_before"] == 0) & (null["seed_after"] == 2)].iloc[0]
    assert row["impacted_classes"] == len(r.impacted_classes)
    assert row["boundary_after"] == pytest.approx(r.boundary_after)
    # a 2-D array works too, seeds are the row numbers
    arr = single_model_null(y, np.stack([dense[0], dense[1], dense[2]]), boundary="own")
    assert len(arr) == 6 and (arr["boundary_mode"] == "own").all()


def test_population_null_enumerates_small_splits():
    y, base, _ = uneven_populations(6, m_base=5)
    null = population_null(y, base[:4])
    # 4 seeds: {0,1}|{2,3}, {0,2}|{1,3}, {0,3}|{1,2}
    assert len(null) == 3 and null.attrs["all_splits"] and null.attrs["n_possible_splits"] == 3
    assert sorted(zip(null["seeds_a"], null["seeds_b"])) == [("0 1", "2 3"), ("0 2", "1 3"), ("0 3", "1 2")]
    five = population_null(y, {s: base[s] for s in range(5)})
    # 5 seeds, halves of 2, one seed sits out: C(5,2) * C(3,2) / 2 = 15 distinct splits
    assert len(five) == 15 and five.attrs["all_splits"]
    for a, b in zip(five["seeds_a"], five["seeds_b"]):
        assert not set(a.split()) & set(b.split())
    assert (five[["n_models_a", "n_models_b"]] == 2).all().all()
    assert five["low_power"].all() and (five["normalize"] == "population").all()
    # each row is population_cie on that split
    row = null.iloc[0]
    a = [int(s) for s in row["seeds_a"].split()]
    b = [int(s) for s in row["seeds_b"].split()]
    r = population_cie(y, base[a], base[b])
    assert row["significant_classes"] == len(r.impacted_classes)
    assert row["cie_images"] == r.cie_images.size


def test_population_null_samples_many_splits_reproducibly():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    dense = np.where(rng.random((12, 40)) < 0.8, y, (y + 1) % 4)
    first = population_null(y, dense, max_splits=6, seed=3)
    again = population_null(y, dense, max_splits=6, seed=3)
    other = population_null(y, dense, max_splits=6, seed=4)
    assert len(first) == 6 and not first.attrs["all_splits"]
    assert first.attrs["n_possible_splits"] == math.comb(12, 6) // 2
    pd.testing.assert_frame_equal(first, again)
    assert list(first["seeds_a"]) != list(other["seeds_a"])
    assert len(set(zip(first["seeds_a"], first["seeds_b"]))) == 6  # distinct
    assert (first["n_models_a"] == 6).all()


def test_population_null_of_identical_models_flags_nothing():
    y = np.repeat(np.arange(3), 10)
    pred = np.where(np.arange(30) % 5 == 0, (y + 1) % 3, y)
    null = population_null(y, np.tile(pred, (4, 1)))
    assert (null["significant_classes"] == 0).all() and (null["cie_images"] == 0).all()


def test_beyond_null_by_hand():
    b = beyond_null(3, [0, 1, 1, 3, 5])
    assert b == {"observed": 3.0, "null_n": 5, "null_mean": 2.0, "null_max": 5.0,
                 "share_null_ge": 0.4, "beyond_null_max": False}
    assert beyond_null(6, [0, 1, 1, 3, 5])["beyond_null_max"] is True
    assert beyond_null(0, [0, 0])["share_null_ge"] == 1.0
    empty = beyond_null(2, [])
    assert empty["null_n"] == 0 and math.isnan(empty["null_mean"]) and not empty["beyond_null_max"]


def test_schemas_vs_null_planted():
    single = pd.DataFrame({"setting": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1],
                           "boundary_mode": "uncompressed",
                           "impacted_classes": [4, 2, 0, 1], "impacted_images": [90.0, 70.0, 5.0, 15.0]})
    single_null = pd.DataFrame({"boundary_mode": "uncompressed", "impacted_classes": [0, 1, 1, 2],
                                "impacted_images": [10.0, 20.0, 30.0, 40.0]})
    population = pd.DataFrame({"significant_classes": [3, 0], "cie_images": [50, 4],
                               "normalize": "population", "alpha": 0.05, "correction": "none",
                               "expected_false_flags": 0.5, "low_power": True}, index=["a", "b"])
    population_null_ = pd.DataFrame({"significant_classes": [0, 1, 0], "cie_images": [6, 4, 8],
                                     "normalize": "population", "alpha": 0.05, "correction": "none"})
    agree = pd.DataFrame({"mean_n_both": [1.5, 0.0]}, index=["a", "b"])
    t = schemas_vs_null(single, single_null, population=population, population_null=population_null_,
                        agreement=agree)
    a, b = t.loc["a"], t.loc["b"]
    assert a["boundary_mode"] == "uncompressed" and b["normalize"] == "population"
    assert a["n_seeds"] == 2 and a["single_classes_mean"] == 3
    assert a["single_null_classes_mean"] == 1 and a["single_null_classes_max"] == 2
    # seed 0 (4 classes): no null pair >= 4 -> 0; seed 1 (2): one of four -> 0.25
    assert a["single_classes_share_null_ge"] == pytest.approx(0.125)
    assert a["single_classes_seeds_beyond_null_max"] == 1
    assert a["single_images_seeds_beyond_null_max"] == 2 and b["single_images_seeds_beyond_null_max"] == 0
    # b: 5 images -> all 4 null >= ; 15 -> 3 of 4
    assert b["single_images_share_null_ge"] == pytest.approx((1 + 0.75) / 2)
    assert a["population_classes"] == 3 and a["population_classes_share_null_ge"] == 0
    assert a["population_null_classes_max"] == 1
    assert b["population_cie_images_share_null_ge"] == 1.0
    assert a["population_null_cie_images_mean"] == 6 and a["population_null_splits"] == 3
    assert a["both_mean"] == 1.5 and bool(a["low_power"]) and a["expected_false_flags"] == 0.5
    # without the population side, its columns are NaN
    only = schemas_vs_null(single, single_null)
    assert math.isnan(only.loc["a", "population_classes"])
    # mismatched options are refused
    with pytest.raises(ValueError, match="disagree on correction"):
        schemas_vs_null(single, single_null, population=population,
                        population_null=population_null_.assign(correction="fdr_bh"))
    with pytest.raises(ValueError, match="disagree on boundary_mode"):
        schemas_vs_null(single, single_null.assign(boundary_mode="own"))
    with pytest.raises(ValueError, match="together"):
        schemas_vs_null(single, single_null, population=population)


def test_agreement_table_counts_beside_rates():
    y, base, comp = class_shift_data()
    out = agreement_table(y, {"shift": (base, comp)}, normalize="model", boundary="own")
    singles = [single_model_cie(y, base[i], comp[i], boundary="own") for i in range(base.shape[0])]
    pop = population_cie(y, base, comp, normalize="model")
    row = out.loc["shift"]
    assert row["normalize"] == "model" and row["boundary"] == "own" and row["correction"] == "none"
    assert row["n_single_total"] == sum(len(s.impacted_classes) for s in singles)
    assert row["n_both_total"] == sum(len(set(s.impacted_classes) & set(pop.impacted_classes))
                                      for s in singles)
    assert row["n_population_total"] == len(pop.impacted_classes) * 12
    assert row["mean_n_both"] == pytest.approx(row["n_both_total"] / 12)
    assert not row["low_power"] and row["expected_false_flags"] == pytest.approx(1.0)
    assert "12 vs 12 models" in row["power_note"]
