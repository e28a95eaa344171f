"""cielib.cie: both CIE schemas on small inputs whose answer is planted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cielib.cie import (
    agreement,
    agreement_table,
    benjamini_hochberg,
    modal_labels,
    population_cie,
    single_model_cie,
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
                "p_adjusted", "significant", "recall_base", "recall_comp", "n_images"}
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
