"""Compression identified exemplars (CIE): which classes and images compression hurts.

Two detection schemas live here, so that they can be run on the same predictions
and compared:

* :func:`single_model_cie` -- the cheap schema of "Rethinking Compression within
  Deep Neural Networks" (Section IX.vii, seven steps; Tables 4 and 9). It needs one
  uncompressed and one compressed model and flags classes that cross a
  "standard deviation boundary". :func:`single_model_cie_from_recalls` runs the same
  steps on printed per-class recalls (e.g. the paper's own figures).
* :func:`population_cie` -- the schema of Hooker et al., "What Do Compressed Deep
  Neural Networks Forget?" (arXiv 1911.05248). It needs a *population* of
  independently trained models on each side; a class is impacted when Welch's
  t-test finds its normalized recall shifted, and an image is a CIE when the
  modal (most frequent) label across the population changes.

Neither paper calibrates its schema against a null. :func:`single_model_null` and
:func:`population_null` run each schema where nothing was compressed (dense models
that differ only in their seed); :func:`beyond_null` and :func:`schemas_vs_null` put
a compressed setting's counts beside that null. :func:`expected_false_flags` and the
``low_power`` columns say how many flags chance alone gives and when a population is
too small to mean much. :func:`agreement` and :func:`agreement_table` ask how often
the cheap schema agrees with the population schema.

Everything is plain numpy/pandas/scipy (never TensorFlow) and vectorized: per-model
per-class counts come from one ``np.bincount`` over ``model * n_classes + label``,
modal labels from one ``np.bincount`` over ``image * n_classes + label``; there is no
Python loop over images. Labels are integer class ids in ``[0, n_classes)``.
"""

from __future__ import annotations

import itertools
import math
import numbers
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln, xlogy

from cielib import checks

__all__ = [
    "SingleModelCIE",
    "PopulationCIE",
    "single_model_cie",
    "single_model_cie_from_recalls",
    "single_model_table",
    "population_cie",
    "population_summary",
    "benjamini_hochberg",
    "expected_false_flags",
    "modal_labels",
    "agreement",
    "agreement_table",
    "single_model_null",
    "population_null",
    "beyond_null",
    "schemas_vs_null",
    "CORRECTIONS",
    "NORMALIZATIONS",
    "BOUNDARIES",
    "LOW_POWER_MODELS",
]

CORRECTIONS = (None, "fdr_bh")
#: ``population``: each population's class recalls minus ONE constant, the population's
#: mean top-1 (Hooker et al.'s released code); ``model``: each model's own top-1.
NORMALIZATIONS = ("population", "model")
#: ``uncompressed``: the paper's step 2 (the dense model's std is the boundary before and
#: after); ``own``: each model is judged against its own std.
BOUNDARIES = ("uncompressed", "own")
#: A population smaller than this is marked ``low_power``: Hooker et al. used 30 models
#: per population; with a handful, Welch's test finds only very large shifts.
LOW_POWER_MODELS = 10
_TIE = 1e-12  # normalized recalls closer than this are equal (floating-point noise only)


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _as_labels(values, name: str, ndim: int) -> np.ndarray:
    return checks.as_labels(values, name, ndim=ndim)


_check_n_classes = checks.check_n_classes
_resolve_n_classes = checks.resolve_n_classes


def _check_alpha(alpha) -> float:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, numbers.Real)
        or not np.isfinite(alpha)
        or not 0.0 < alpha < 1.0
    ):
        raise ValueError(f"alpha must be a number in the open interval (0, 1); got {alpha!r}")
    return float(alpha)


def _check_correction(correction) -> str | None:
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be None or 'fdr_bh'; got {correction!r}")
    return correction


def _check_y_true(y_true) -> np.ndarray:
    y = _as_labels(y_true, "y_true", 1)
    if y.size == 0:
        raise ValueError("y_true is empty; need at least one test image")
    return y


def _check_population(preds, name: str, n_images: int) -> np.ndarray:
    p = _as_labels(preds, name, 2)
    if p.shape[1] != n_images:
        raise ValueError(
            f"{name} has {p.shape[1]} images (columns), but y_true has {n_images}; "
            "each row must hold one model's predictions for every test image"
        )
    if p.shape[0] < 2:
        raise ValueError(
            f"{name} has {p.shape[0]} model(s) (rows); Welch's t-test needs at least 2 "
            "independently trained models per population"
        )
    return p


def _check_normalize(normalize) -> str:
    if not isinstance(normalize, str) or normalize not in NORMALIZATIONS:
        raise ValueError(
            f"normalize must be one of {', '.join(map(repr, NORMALIZATIONS))}; got {normalize!r}"
        )
    return normalize


def _check_boundary(boundary) -> str:
    if not isinstance(boundary, str) or boundary not in BOUNDARIES:
        raise ValueError(
            f"boundary must be one of {', '.join(map(repr, BOUNDARIES))}; got {boundary!r}"
        )
    return boundary


def _correction_name(correction: str | None) -> str:
    return "none" if correction is None else correction


# --------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------


def _class_counts(y: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(y, minlength=k)


def _recall_matrix(y: np.ndarray, preds: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-model per-class recall (n_models, k) and per-model top-1 (n_models,).

    One bincount over ``model * k + label`` of the correct predictions. Classes with
    no test images get NaN recall (undefined, not zero).
    """
    m = preds.shape[0]
    correct = preds == y[None, :]
    flat = (np.arange(m, dtype=np.int64)[:, None] * k + y[None, :])[correct]
    hits = np.bincount(flat, minlength=m * k).reshape(m, k)
    n_c = _class_counts(y, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(n_c > 0, hits / n_c, np.nan)
    top1 = correct.mean(axis=1)
    return recall, top1


def modal_labels(preds, *, n_classes: int | None = None) -> np.ndarray:
    """The most frequent predicted label of each image across a population of models.

    Ties go to the HIGHEST class id, as in Hooker et al.'s code, so that results are
    comparable with theirs (argmax over the reversed class axis).

    Args:
        preds: integer array (n_models, n_images).
        n_classes: number of classes; defaults to max label + 1.

    Returns:
        int64 array (n_images,).
    """
    p = _as_labels(preds, "preds", 2)
    if p.size == 0:
        raise ValueError(f"preds is empty (shape {p.shape}); need at least one model and image")
    k = _resolve_n_classes({"preds": p}, _check_n_classes(n_classes))
    return _modal(p, k)


def _modal(p: np.ndarray, k: int) -> np.ndarray:
    m, n = p.shape
    flat = (np.arange(n, dtype=np.int64)[None, :] * k + p).ravel()
    counts = np.bincount(flat, minlength=n * k).reshape(n, k)
    return (k - 1 - np.argmax(counts[:, ::-1], axis=1)).astype(np.int64)


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), NaN-aware.

    Implemented in numpy so that NaN p-values (classes without test images) can be
    carried through: they stay NaN and do not count towards the number of tests.
    Equals ``scipy.stats.false_discovery_control(p, method="bh")`` on finite input.

    Args:
        pvalues: 1-D array of p-values in [0, 1] (NaN allowed).

    Returns:
        float array of adjusted p-values, same shape; reject where adjusted < alpha.
    """
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"pvalues must be 1-D; got shape {p.shape}")
    ok = ~np.isnan(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        bad = p[ok][(p[ok] < 0) | (p[ok] > 1)][0]
        raise ValueError(f"pvalues must lie in [0, 1]; got {float(bad)!r}")
    out = np.full_like(p, np.nan)
    v = p[ok]
    m = v.size
    if m == 0:
        return out
    order = np.argsort(v, kind="stable")
    scaled = v[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(scaled[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def _welch(comp: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise Welch t-test of ``comp`` vs ``base`` (t > 0: comp higher).

    scipy gives NaN (with a warning) when both samples have zero variance. Then the
    populations are two point masses: equal means -> no evidence of a shift
    (t = 0, p = 1); different means -> a deterministic shift (t = +-inf, p = 0).
    "Zero" and "equal" allow ``_TIE`` of floating-point noise: the normalizing
    constants are means of top-1 values, and e.g. mean(0.8, 0.8, 0.8) differs from
    0.8 in the last bit, which must not read as a deterministic shift. A real
    difference in recall is at least 1 / n_images, far above ``_TIE``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(comp, base, axis=0, equal_var=False)
    t = np.asarray(res.statistic, dtype=float).copy()
    p = np.asarray(res.pvalue, dtype=float).copy()
    const = (np.ptp(comp, axis=0) <= _TIE) & (np.ptp(base, axis=0) <= _TIE)
    diff = comp[0] - base[0]
    same = np.abs(diff) <= _TIE
    t[const] = np.where(same[const], 0.0, np.copysign(np.inf, diff[const]))
    p[const] = np.where(same[const], 1.0, 0.0)
    return t, p


# --------------------------------------------------------------------------------------
# Single-model schema (the paper's seven steps)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SingleModelCIE:
    """Result of :func:`single_model_cie` / :func:`single_model_cie_from_recalls`.

    Attributes:
        impacted_classes: sorted class ids that crossed the boundary (either way).
        impacted_images: sum over classes of |deviation after - deviation before|
            times the class's number of test images (a count of images, fractional).
        boundary: population std (ddof=0) of the uncompressed class accuracies (the
            paper's step 2; the boundary of the "before" set). Also ``boundary_before``.
        boundary_after: population std (ddof=0) of the COMPRESSED class accuracies
            (the paper quotes both, e.g. 7.79 and 7.49 points for VGG-19 at 0.7
            sparsity); the boundary of the "after" set only when ``boundary_mode`` is
            ``"own"``.
        boundary_mode: ``"uncompressed"`` (the paper's step 2) or ``"own"``.
        top1_before: overall accuracy of the uncompressed model.
        top1_after: overall accuracy of the compressed model.
        table: one row per class id (see :func:`single_model_cie`).
    """

    impacted_classes: list[int]
    impacted_images: float
    boundary: float
    boundary_after: float
    boundary_mode: str
    top1_before: float
    top1_after: float
    _columns: dict = field(repr=False)

    @property
    def boundary_before(self) -> float:
        """Same as ``boundary``: the uncompressed model's std of class accuracies."""
        return self.boundary

    @cached_property
    def table(self) -> pd.DataFrame:
        """Per class (see :func:`single_model_cie`); built on first use, since building a
        DataFrame costs far more than the schema (the null runs it on every pair)."""
        cols = self._columns
        table = pd.DataFrame(cols, index=pd.RangeIndex(len(cols["n_images"]), name="class"))
        table.attrs["boundary_mode"] = self.boundary_mode
        return table


def _single_core(recall: np.ndarray, top1: np.ndarray, n_c: np.ndarray, mode: str) -> SingleModelCIE:
    """Steps 2-7 on class accuracies ``recall`` (2, k) and top-1 ``top1`` (2,)."""
    has = n_c > 0
    std_before = float(np.std(recall[0, has], ddof=0))
    std_after = float(np.std(recall[1, has], ddof=0))
    b_after = std_before if mode == "uncompressed" else std_after
    dev = recall - top1[:, None]
    with np.errstate(invalid="ignore"):
        outside_before = np.abs(dev[0]) > std_before  # NaN compares False
        outside_after = np.abs(dev[1]) > b_after
    impacted = (outside_before ^ outside_after) & has
    impacted_images = float(np.sum(np.abs(dev[1, has] - dev[0, has]) * n_c[has]))
    columns = {
        "n_images": n_c.astype(np.int64),
        "accuracy_before": recall[0],
        "accuracy_after": recall[1],
        "deviation_before": dev[0],
        "deviation_after": dev[1],
        "outside_before": outside_before,
        "outside_after": outside_after,
        "impacted": impacted,
    }
    return SingleModelCIE(
        impacted_classes=[int(c) for c in np.flatnonzero(impacted)],
        impacted_images=impacted_images,
        boundary=std_before,
        boundary_after=std_after,
        boundary_mode=mode,
        top1_before=float(top1[0]),
        top1_after=float(top1[1]),
        _columns=columns,
    )


def single_model_cie(
    y_true, y_pred_base, y_pred_comp, *, n_classes=None, boundary="uncompressed"
) -> SingleModelCIE:
    """The paper's single-model CIE detection schema (Section IX.vii).

    Why: Hooker et al.'s schema needs populations of trained models; the paper
    proposes a one-model proxy. Steps, with class accuracy = the class's recall and
    top-1 = accuracy over all test images:

    1. class accuracies and top-1 of the uncompressed model;
    2. boundary = population std (ddof=0) of those class accuracies;
    3. x = classes whose |class accuracy - top-1| (the *deviation*) > boundary;
    5. y = the same after compression, against the SAME (uncompressed) boundary;
    6. impacted classes = x symmetric-difference y (left or entered the tails);
    7. impacted images = sum_c |deviation_after - deviation_before| * n_images_c.

    Step 5 says "the same process is applied again", which can also be read as
    recomputing the boundary from the compressed model; ``boundary="own"`` does that
    (x against the dense model's std, y against the compressed model's std). The
    default follows step 2 as written. Both stds are returned either way
    (``boundary`` and ``boundary_after``) -- the paper quotes both for 0.7 sparsity.
    The std is ddof=0: the paper's quoted 7.79 (points) is reachable as the ddof=0 std
    of its Figure 19 recalls within their rounding, not as the ddof=1 std
    (``tests/test_paper_per_class.py``).

    The paper says "above the standard deviation boundary"; here the flags are named
    ``outside_before`` / ``outside_after``: |deviation| > boundary, i.e. outside the
    band of half-width ``boundary`` around top-1.

    A class with no test images has undefined recall: it is left out of the
    boundary, its row has ``n_images`` 0 and NaN accuracies/deviations, and it is
    never impacted (nor counted in impacted images).

    Args:
        y_true: 1-D integer labels of the test images.
        y_pred_base: 1-D integer predictions of the uncompressed model.
        y_pred_comp: 1-D integer predictions of the compressed model.
        n_classes: number of classes; defaults to max label + 1 over all three.
        boundary: ``"uncompressed"`` (default, the paper's step 2) or ``"own"``.

    Returns:
        SingleModelCIE; ``table`` is indexed by class id with columns ``n_images``,
        ``accuracy_before``, ``accuracy_after``, ``deviation_before``,
        ``deviation_after``, ``outside_before``, ``outside_after``, ``impacted``
        (``table.attrs["boundary_mode"]`` names the boundary).
    """
    mode = _check_boundary(boundary)
    y = _check_y_true(y_true)
    n = y.size
    preds = {}
    for name, v in (("y_pred_base", y_pred_base), ("y_pred_comp", y_pred_comp)):
        a = _as_labels(v, name, 1)
        if a.size != n:
            raise ValueError(f"{name} has {a.size} labels, but y_true has {n}")
        preds[name] = a
    k = _resolve_n_classes({"y_true": y, **preds}, _check_n_classes(n_classes))
    both = np.stack([preds["y_pred_base"], preds["y_pred_comp"]])
    recall, top1 = _recall_matrix(y, both, k)
    return _single_core(recall, top1, _class_counts(y, k), mode)


def _check_fraction_vector(values, name: str, *, nan_ok: bool) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array (one value per class); got shape {a.shape}")
    bad = (np.isnan(a) & (not nan_ok)) | (a < 0) | (a > 1)
    if np.any(bad):
        raise ValueError(f"{name} must lie in [0, 1] (fractions, not percent); got {float(a[bad][0])!r}")
    return a


def single_model_cie_from_recalls(
    recall_before,
    recall_after,
    *,
    n_images,
    top1_before=None,
    top1_after=None,
    boundary="uncompressed",
) -> SingleModelCIE:
    """The paper's single-model schema on per-class recalls instead of predictions.

    Why: the paper prints per-class recalls (its classification reports) and top-1,
    not predictions; this runs exactly the steps of :func:`single_model_cie` on them,
    so the paper's Table 4 can be checked against its own figures.

    Args:
        recall_before: per-class recall (fractions in [0, 1]) of the uncompressed model.
        recall_after: per-class recall of the compressed model, same classes.
        n_images: per-class number of test images (the weights of step 7).
        top1_before: top-1 of the uncompressed model; default: the image-weighted
            mean recall (which is top-1 exactly when the recalls are exact).
        top1_after: top-1 of the compressed model; same default.
        boundary: ``"uncompressed"`` (the paper's step 2) or ``"own"``.

    Rounding: printed recalls are within +-0.005 of the exact ones, so each recall's
    rounding moves its class's step-7 term by up to +-0.005 x the class size (about
    +-5 images for a class of 1,000), and a class's term depends on two recalls. When
    two models' exact recalls are nearly equal (a quantized model and its dense
    model), the printed values cannot tell a handful of impacted images from several
    dozen; a class within the rounding of the boundary can fall on either side. See
    ``cielib/data_files/paper_per_class.md``.

    Returns:
        SingleModelCIE, as :func:`single_model_cie`. A class with 0 images must have
        NaN recall and is never impacted.
    """
    mode = _check_boundary(boundary)
    rb = _check_fraction_vector(recall_before, "recall_before", nan_ok=True)
    ra = _check_fraction_vector(recall_after, "recall_after", nan_ok=True)
    n_c = np.asarray(n_images)
    if n_c.dtype.kind not in "iu" or n_c.shape != rb.shape or np.any(n_c < 0):
        raise ValueError(
            f"n_images must be non-negative integers, one per class ({rb.size}); got "
            f"dtype {n_c.dtype}, shape {n_c.shape}"
        )
    if ra.shape != rb.shape:
        raise ValueError(f"recall_after has {ra.size} classes, but recall_before has {rb.size}")
    has = n_c > 0
    if not has.any():
        raise ValueError("n_images is all zero; need at least one class with test images")
    for name, r in (("recall_before", rb), ("recall_after", ra)):
        if np.isnan(r[has]).any():
            raise ValueError(f"{name} is NaN for class {int(np.flatnonzero(has & np.isnan(r))[0])}, "
                             "which has test images; every class with images needs a recall")
    recall = np.stack([rb, ra])
    top1 = []
    for name, given, r in (("top1_before", top1_before, rb), ("top1_after", top1_after, ra)):
        if given is None:
            top1.append(float(np.sum(r[has] * n_c[has]) / np.sum(n_c[has])))
        else:
            top1.append(float(_check_fraction_vector([given], name, nan_ok=False)[0]))
    return _single_core(recall, np.array(top1), n_c.astype(np.int64), mode)


# --------------------------------------------------------------------------------------
# Power: what chance alone flags
# --------------------------------------------------------------------------------------


def _bh_complete_null_pmf(m: int, alpha: float) -> np.ndarray:
    """P(BH rejects exactly r of m true nulls), r = 0..m, for independent uniform p.

    With c_r = r * alpha / m, BH rejects exactly r when exactly r p-values are <= c_r
    and the other m - r, uniform on (c_r, 1], stay above the shifted linear boundary;
    the ballot-type identity P(U_(i) > i * b for all i <= n) = 1 - n * b gives
    P(R = r) = C(m, r) c_r^r (1 - c_r)^(m - r - 1) (1 - alpha). For r = 0 this is
    1 - alpha: under the complete null BH rejects anything with probability alpha.
    """
    r = np.arange(m + 1)
    c = r * alpha / m
    # in log space, so that thousands of classes neither overflow nor underflow
    log_comb = gammaln(m + 1) - gammaln(r + 1) - gammaln(m - r + 1)
    return np.exp(log_comb + xlogy(r, c) + (m - r - 1) * np.log1p(-c) + np.log1p(-alpha))


def expected_false_flags(n_classes, *, alpha=0.05, correction=None) -> float:
    """Classes a population test flags by chance alone when nothing changed.

    Why: with few models and many classes, some flags are expected even from two
    populations of identical models; a count means little unless it stands beside
    this number (and beside a measured null, :func:`population_null`).

    * ``correction=None``: each class is flagged with probability ``alpha``, so the
      expected count is ``alpha * n_classes`` (0.5 for 10 classes at 0.05).
    * ``correction="fdr_bh"``: Benjamini-Hochberg controls the false discovery rate,
      FDR = E[false flags / flags] <= alpha. When nothing changed every flag is
      false, so FDR = P(at least one flag): BH keeps the chance of ANY false flag at
      or below alpha (exactly alpha for independent p-values). It does not bound the
      expected NUMBER of false flags by alpha: when it flags, it may flag several.
      Returned here is that expected number, computed exactly for independent
      uniform p-values from the distribution in :func:`_bh_complete_null_pmf`; it is
      slightly above alpha (about 0.0548 for 10 classes and about 0.0553 for 100 at
      alpha 0.05).

    Both are nominal: they assume the t-test's p-values are uniform and the classes
    independent. Neither holds exactly here (recalls are discrete with few models, and
    every class shares the normalizing top-1), which is why the null control measures
    the real rate.

    Args:
        n_classes: number of classes tested (those with test images), >= 1.
        alpha: significance level in (0, 1).
        correction: None or "fdr_bh".

    Returns:
        The expected number of falsely flagged classes under the complete null.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer; got {n_classes!r}")
    alpha = _check_alpha(alpha)
    correction = _check_correction(correction)
    m = int(n_classes)
    if correction is None:
        return alpha * m
    pmf = _bh_complete_null_pmf(m, alpha)
    return float(np.sum(np.arange(m + 1) * pmf))


def _power(n_base: int, n_comp: int, n_tested: int, alpha: float, correction) -> tuple[bool, float, str]:
    """(low_power, expected false flags, a sentence saying both)."""
    low = min(n_base, n_comp) < LOW_POWER_MODELS
    expected = expected_false_flags(n_tested, alpha=alpha, correction=correction)
    corr = "Benjamini-Hochberg corrected" if correction == "fdr_bh" else "uncorrected"
    note = (f"{n_base} vs {n_comp} models: "
            + (f"little power (fewer than {LOW_POWER_MODELS} models per population; Hooker et al. "
               f"used 30), so a shift must be large to be found and flags are no ground truth. "
               if low else "")
            + f"Chance alone flags {expected:.2f} of {n_tested} classes on average "
              f"(alpha {alpha:g}, {corr}).")
    return low, expected, note


# --------------------------------------------------------------------------------------
# Population schema (Hooker et al.)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PopulationCIE:
    """Result of :func:`population_cie`.

    Attributes:
        impacted_classes: sorted class ids with a significant normalized-recall shift.
        cie_images: sorted image indices (int64) whose modal label changed.
        alpha: significance level used.
        correction: None or "fdr_bh".
        normalize: "population" (Hooker et al.'s code) or "model".
        n_models_base: number of uncompressed models.
        n_models_comp: number of compressed models.
        top1_base: mean top-1 of the uncompressed population.
        top1_comp: mean top-1 of the compressed population.
        expected_false_flags: classes flagged by chance alone on average
            (:func:`expected_false_flags` over the classes with test images).
        low_power: True when either population has fewer than
            :data:`LOW_POWER_MODELS` models.
        power_note: one sentence saying the last two.
        table: per class (see :func:`population_cie`).
        images: per image (see :func:`population_cie`).
    """

    impacted_classes: list[int]
    cie_images: np.ndarray
    alpha: float
    correction: str | None
    normalize: str
    n_models_base: int
    n_models_comp: int
    top1_base: float
    top1_comp: float
    expected_false_flags: float
    low_power: bool
    power_note: str
    table: pd.DataFrame = field(repr=False)
    images: pd.DataFrame = field(repr=False)


def population_cie(
    y_true,
    base_preds,
    comp_preds,
    *,
    alpha=0.05,
    correction=None,
    normalize="population",
    n_classes=None,
) -> PopulationCIE:
    """Hooker et al.'s population schema: impacted classes and CIE images.

    Why: one model's per-class accuracy is noisy (training seed alone moves it), so
    Hooker et al. compare populations of independently trained models. Recall is
    normalized by subtracting top-1, so that a class that loses exactly as much as
    the model overall is not "forgotten"; a class is impacted when Welch's two-sided
    t-test between the populations' normalized recalls gives p < alpha (after
    ``correction``). An image is a CIE when its modal label (most frequent prediction
    across the population, ties to the highest class id as in the authors' code)
    differs between the two populations.

    Normalization (``normalize``):

    * ``"population"`` (default): as Hooker et al.'s released code
      (``pruning_identified_exemplars/per_class_accuracy/gen_tstatistic.py``):
      every model's class recall minus ONE constant per population, the population's
      mean top-1 ("mean accuracy across 30 models"), then
      ``ttest_ind(baseline, variant, equal_var=False)``. A constant shift leaves each
      population's variance alone, so model-to-model variation in overall accuracy
      stays in the test.
    * ``"model"``: every model's class recall minus that model's own top-1. This
      removes model-to-model variation in overall accuracy as well, so the variances
      shrink and more classes are flagged.

    The mean normalized recalls (and ``difference``) are the same under both (the mean
    of per-model top-1 is the population's mean top-1); t and p differ. The sign of
    ``t`` is ours: positive when the compressed population is higher (the reference
    computes ``ttest_ind(baseline, variant)``, the opposite sign; p is the same).

    Zero variance: when every model in BOTH populations has the same normalized
    recall for a class, scipy's t is NaN. We define p = 1.0 (t = 0) when the two
    values are equal and p = 0.0 (t = +-inf, significant) when they differ -- a
    deterministic shift. Classes without test images get NaN statistics and are
    never significant; they do not count towards the BH correction.

    Power: a population of fewer than :data:`LOW_POWER_MODELS` models is marked
    ``low_power``; ``expected_false_flags`` says how many classes chance alone flags.

    Args:
        y_true: 1-D integer labels (n_images,).
        base_preds: integer predictions (n_models_base, n_images) of uncompressed
            models, one row per independently trained model (>= 2 rows).
        comp_preds: same for compressed models (n_models_comp may differ).
        alpha: significance level, in (0, 1).
        correction: None, or "fdr_bh" for Benjamini-Hochberg across classes.
        normalize: "population" (default, the reference) or "model".
        n_classes: number of classes; defaults to max label + 1 over all arrays.

    Returns:
        PopulationCIE. ``table`` (index class id): ``n_images``, ``recall_base``,
        ``recall_comp`` (mean absolute recall), ``mean_norm_recall_base``,
        ``mean_norm_recall_comp``, ``difference`` (comp - base), ``t`` (positive:
        comp higher), ``p``, ``p_adjusted`` (= p without correction),
        ``significant``, ``normalize``; ``table.attrs`` also hold ``normalize``,
        ``alpha``, ``correction``, ``low_power``, ``power_note``. ``images`` (index
        image id): ``label``, ``modal_base``, ``modal_comp``, ``base_correct``,
        ``comp_correct``, ``cie``.
    """
    normalize = _check_normalize(normalize)
    alpha = _check_alpha(alpha)
    correction = _check_correction(correction)
    y = _check_y_true(y_true)
    n = y.size
    base = _check_population(base_preds, "base_preds", n)
    comp = _check_population(comp_preds, "comp_preds", n)
    k = _resolve_n_classes(
        {"y_true": y, "base_preds": base, "comp_preds": comp}, _check_n_classes(n_classes)
    )

    rec_b, top_b = _recall_matrix(y, base, k)
    rec_c, top_c = _recall_matrix(y, comp, k)
    if normalize == "population":
        norm_b = rec_b - top_b.mean()
        norm_c = rec_c - top_c.mean()
    else:
        norm_b = rec_b - top_b[:, None]
        norm_c = rec_c - top_c[:, None]
    n_c = _class_counts(y, k)
    has = n_c > 0

    t = np.full(k, np.nan)
    p = np.full(k, np.nan)
    t[has], p[has] = _welch(norm_c[:, has], norm_b[:, has])
    p_adj = benjamini_hochberg(p) if correction == "fdr_bh" else p.copy()
    with np.errstate(invalid="ignore"):
        significant = p_adj < alpha  # NaN -> False

    mean_nb = norm_b.mean(axis=0)
    mean_nc = norm_c.mean(axis=0)
    low, expected, note = _power(base.shape[0], comp.shape[0], int(has.sum()), alpha, correction)
    table = pd.DataFrame(
        {
            "n_images": n_c.astype(np.int64),
            "recall_base": rec_b.mean(axis=0),
            "recall_comp": rec_c.mean(axis=0),
            "mean_norm_recall_base": mean_nb,
            "mean_norm_recall_comp": mean_nc,
            "difference": mean_nc - mean_nb,
            "t": t,
            "p": p,
            "p_adjusted": p_adj,
            "significant": significant,
            "normalize": normalize,
        },
        index=pd.RangeIndex(k, name="class"),
    )
    table.attrs.update(normalize=normalize, alpha=alpha, correction=_correction_name(correction),
                       low_power=low, power_note=note)

    modal_b = _modal(base, k)
    modal_c = _modal(comp, k)
    cie = modal_b != modal_c
    images = pd.DataFrame(
        {
            "label": y,
            "modal_base": modal_b,
            "modal_comp": modal_c,
            "base_correct": modal_b == y,
            "comp_correct": modal_c == y,
            "cie": cie,
        },
        index=pd.RangeIndex(n, name="image"),
    )
    return PopulationCIE(
        impacted_classes=[int(c) for c in np.flatnonzero(significant)],
        cie_images=np.flatnonzero(cie).astype(np.int64),
        alpha=alpha,
        correction=correction,
        normalize=normalize,
        n_models_base=int(base.shape[0]),
        n_models_comp=int(comp.shape[0]),
        top1_base=float(top_b.mean()),
        top1_comp=float(top_c.mean()),
        expected_false_flags=expected,
        low_power=low,
        power_note=note,
        table=table,
        images=images,
    )


POPULATION_SUMMARY_COLUMNS = [
    "n_models_base", "n_models_comp", "top1_base", "top1_comp", "normalize", "alpha",
    "correction", "significant_classes", "classes", "expected_false_flags", "low_power",
    "cie_images", "power_note",
]


def population_summary(pops: Mapping[str, PopulationCIE]) -> pd.DataFrame:
    """One row per setting of :func:`population_cie` results, power stated beside counts.

    Args:
        pops: {setting name: PopulationCIE}.

    Returns:
        DataFrame indexed by ``setting``: ``n_models_base``, ``n_models_comp``,
        ``top1_base``, ``top1_comp`` (the constants subtracted under "population"),
        ``normalize``, ``alpha``, ``correction`` ("none" or "fdr_bh"),
        ``significant_classes`` (count), ``classes`` (ids, space-separated),
        ``expected_false_flags``, ``low_power``, ``cie_images`` (count),
        ``power_note``.
    """
    rows = []
    for name, r in pops.items():
        if not isinstance(r, PopulationCIE):
            raise ValueError(f"pops[{name!r}] must be a PopulationCIE; got {type(r).__name__}")
        rows.append({
            "setting": name, "n_models_base": r.n_models_base, "n_models_comp": r.n_models_comp,
            "top1_base": r.top1_base, "top1_comp": r.top1_comp, "normalize": r.normalize,
            "alpha": r.alpha, "correction": _correction_name(r.correction),
            "significant_classes": len(r.impacted_classes),
            "classes": " ".join(map(str, r.impacted_classes)),
            "expected_false_flags": r.expected_false_flags, "low_power": r.low_power,
            "cie_images": int(r.cie_images.size), "power_note": r.power_note,
        })
    return pd.DataFrame(rows, columns=["setting", *POPULATION_SUMMARY_COLUMNS]).set_index("setting")


# --------------------------------------------------------------------------------------
# Does the single-model schema agree with the population schema?
# --------------------------------------------------------------------------------------


def agreement(single_flags: Iterable[int], population_flags: Iterable[int]) -> dict:
    """How far the single-model flags S agree with the population flags P.

    Measured against P: precision = |S & P| / |S| (NaN when S is empty: nothing was
    claimed), recall = |S & P| / |P| (NaN when P is empty: nothing to find), f1 their
    harmonic mean (NaN if either is NaN, 0 if both are 0). P is a reference, not the
    truth: with few models it has little power and its own chance flags (see
    :func:`expected_false_flags`), so read these as agreement, never confirmation.

    Args:
        single_flags: class ids flagged by :func:`single_model_cie`.
        population_flags: class ids flagged by :func:`population_cie`.

    Returns:
        dict with ``precision``, ``recall``, ``f1``, ``n_single``, ``n_population``,
        ``n_both``.
    """
    s = {int(c) for c in single_flags}
    p = {int(c) for c in population_flags}
    both = len(s & p)
    precision = both / len(s) if s else float("nan")
    recall = both / len(p) if p else float("nan")
    if np.isnan(precision) or np.isnan(recall):
        f1 = float("nan")
    elif precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_single": len(s),
        "n_population": len(p),
        "n_both": both,
    }


def _nanmean(values: list[float]) -> float:
    a = np.asarray(values, dtype=float)
    return float(np.nanmean(a)) if np.any(~np.isnan(a)) else float("nan")


AGREEMENT_COLUMNS = [
    "n_seeds", "normalize", "boundary", "alpha", "correction", "mean_n_single", "n_population",
    "mean_n_both", "n_single_total", "n_both_total", "n_population_total", "mean_precision",
    "mean_recall", "mean_f1", "mean_impacted_images_single", "n_cie_images_population",
    "expected_false_flags", "low_power", "power_note",
]


def agreement_table(
    y_true,
    settings: Mapping[str, tuple],
    *,
    alpha=0.05,
    correction=None,
    normalize="population",
    boundary="uncompressed",
    n_classes=None,
) -> pd.DataFrame:
    """Single-model vs population schema, for several compression settings at once.

    Pairing: in each setting, row i of the baseline array and row i of the
    compressed array are the same seed (the compressed model i was made from
    baseline model i), so :func:`single_model_cie` is run on each pair (i, i) -- what
    a practitioner with one trained model would do -- and :func:`population_cie`
    once on all rows. Both arrays of a setting must therefore have the same number
    of rows. Per-seed precision/recall/f1 are averaged ignoring NaN (seeds that
    flagged nothing have no precision); an all-NaN column stays NaN. Counts stand
    beside the rates: ``n_both_total`` of ``n_single_total`` single-model flags
    agree with the population schema, and they recover ``n_both_total`` of
    ``n_population_total`` (= n_population x n_seeds) population flags.

    Args:
        y_true: 1-D integer labels (n_images,).
        settings: {setting name: (base_preds, comp_preds)}, each (n_seeds, n_images).
        alpha: passed to :func:`population_cie`.
        correction: passed to :func:`population_cie`.
        normalize: passed to :func:`population_cie`.
        boundary: passed to :func:`single_model_cie`.
        n_classes: number of classes; defaults to max label + 1 over every array of
            every setting, so all settings share the same class ids.

    Returns:
        DataFrame indexed by setting: ``n_seeds``, ``normalize``, ``boundary``,
        ``alpha``, ``correction`` ("none"/"fdr_bh"), ``mean_n_single`` (mean number
        of classes the single-model schema flags per seed), ``n_population``
        (classes flagged by the population schema), ``mean_n_both`` (mean per seed
        of classes both flag), ``n_single_total``, ``n_both_total``,
        ``n_population_total`` (sums over seeds), ``mean_precision``,
        ``mean_recall``, ``mean_f1``, ``mean_impacted_images_single``,
        ``n_cie_images_population``, ``expected_false_flags``, ``low_power``,
        ``power_note``.
    """
    y = _check_y_true(y_true)
    if not settings:
        raise ValueError("settings is empty; give at least one {name: (base_preds, comp_preds)}")
    _check_alpha(alpha)
    _check_correction(correction)
    _check_normalize(normalize)
    _check_boundary(boundary)
    checked = {}
    for name, pair in settings.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"settings[{name!r}] must be a (base_preds, comp_preds) pair")
        b = _check_population(pair[0], f"settings[{name!r}] base_preds", y.size)
        c = _check_population(pair[1], f"settings[{name!r}] comp_preds", y.size)
        if b.shape[0] != c.shape[0]:
            raise ValueError(
                f"settings[{name!r}] pairs seeds by row, but base_preds has {b.shape[0]} "
                f"rows and comp_preds has {c.shape[0]}"
            )
        checked[name] = (b, c)
    arrays = {"y_true": y}
    for name, (b, c) in checked.items():
        arrays[f"settings[{name!r}] base_preds"] = b
        arrays[f"settings[{name!r}] comp_preds"] = c
    k = _resolve_n_classes(arrays, _check_n_classes(n_classes))

    rows = []
    for name, (b, c) in checked.items():
        pop = population_cie(y, b, c, alpha=alpha, correction=correction, normalize=normalize,
                             n_classes=k)
        per_seed = []
        images = []
        for i in range(b.shape[0]):
            single = single_model_cie(y, b[i], c[i], n_classes=k, boundary=boundary)
            per_seed.append(agreement(single.impacted_classes, pop.impacted_classes))
            images.append(single.impacted_images)
        rows.append(
            {
                "setting": name,
                "n_seeds": b.shape[0],
                "normalize": normalize,
                "boundary": boundary,
                "alpha": pop.alpha,
                "correction": _correction_name(correction),
                "mean_n_single": float(np.mean([a["n_single"] for a in per_seed])),
                "n_population": len(pop.impacted_classes),
                "mean_n_both": float(np.mean([a["n_both"] for a in per_seed])),
                "n_single_total": int(sum(a["n_single"] for a in per_seed)),
                "n_both_total": int(sum(a["n_both"] for a in per_seed)),
                "n_population_total": len(pop.impacted_classes) * b.shape[0],
                "mean_precision": _nanmean([a["precision"] for a in per_seed]),
                "mean_recall": _nanmean([a["recall"] for a in per_seed]),
                "mean_f1": _nanmean([a["f1"] for a in per_seed]),
                "mean_impacted_images_single": float(np.mean(images)),
                "n_cie_images_population": int(pop.cie_images.size),
                "expected_false_flags": pop.expected_false_flags,
                "low_power": pop.low_power,
                "power_note": pop.power_note,
            }
        )
    return pd.DataFrame(rows, columns=["setting", *AGREEMENT_COLUMNS]).set_index("setting")


SINGLE_TABLE_COLUMNS = [
    "setting", "seed", "boundary_mode", "impacted_classes", "classes", "impacted_images",
    "boundary_before", "boundary_after", "top1_before", "top1_after",
]


def _single_row(res: SingleModelCIE) -> dict:
    return {
        "boundary_mode": res.boundary_mode,
        "impacted_classes": len(res.impacted_classes),
        "classes": " ".join(map(str, res.impacted_classes)),
        "impacted_images": res.impacted_images,
        "boundary_before": res.boundary,
        "boundary_after": res.boundary_after,
        "top1_before": res.top1_before,
        "top1_after": res.top1_after,
    }


def single_model_table(
    y_true,
    base: Mapping[int, np.ndarray],
    settings: Mapping[str, Mapping[int, np.ndarray]],
    *,
    n_classes=None,
    boundary="uncompressed",
) -> pd.DataFrame:
    """The paper's schema for every (setting, seed): what a one-model user would see.

    Each compressed model is compared with the dense model of the same seed (the
    paper's Tables 4 and 9 are this table for its one seed).

    Args:
        y_true: 1-D integer labels (n_images,).
        base: {seed: dense predictions (n_images,)}.
        settings: {setting name: {seed: compressed predictions (n_images,)}}; seeds
            without a dense model are skipped.
        n_classes: number of classes (default: max label + 1 over all arrays).
        boundary: ``"uncompressed"`` (the paper's step 2) or ``"own"``.

    Returns:
        One row per (setting, seed): ``setting``, ``seed``, ``boundary_mode``,
        ``impacted_classes`` (count), ``classes`` (the ids, as text),
        ``impacted_images``, ``boundary_before`` (std of the dense model's class
        accuracies), ``boundary_after`` (std of the compressed model's),
        ``top1_before``, ``top1_after``.
    """
    _check_boundary(boundary)
    y = _check_y_true(y_true)
    rows = []
    for name, by_seed in settings.items():
        for seed, pred in sorted(by_seed.items()):
            if seed not in base:
                continue
            res = single_model_cie(y, base[seed], pred, n_classes=n_classes, boundary=boundary)
            rows.append({"setting": name, "seed": int(seed), **_single_row(res)})
    return pd.DataFrame(rows, columns=SINGLE_TABLE_COLUMNS)


# --------------------------------------------------------------------------------------
# The null: both schemas where nothing was compressed
# --------------------------------------------------------------------------------------


def _dense_by_seed(y: np.ndarray, dense, name: str = "dense") -> dict[int, np.ndarray]:
    """{seed: 1-D predictions}, from a mapping or a 2-D array (row i = seed i)."""
    if isinstance(dense, Mapping):
        out = {}
        for seed, v in dense.items():
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                raise ValueError(f"{name} keys must be integer seeds; got {seed!r}")
            a = _as_labels(v, f"{name}[{seed!r}]", 1)
            if a.size != y.size:
                raise ValueError(f"{name}[{seed!r}] has {a.size} labels, but y_true has {y.size}")
            out[int(seed)] = a
        return dict(sorted(out.items()))
    arr = _as_labels(dense, name, 2)
    if arr.shape[1] != y.size:
        raise ValueError(f"{name} has {arr.shape[1]} images (columns), but y_true has {y.size}")
    return {i: arr[i] for i in range(arr.shape[0])}


NULL_SINGLE_COLUMNS = [
    "seed_before", "seed_after", "boundary_mode", "impacted_classes", "classes",
    "impacted_images", "boundary_before", "boundary_after", "top1_before", "top1_after",
]


def single_model_null(y_true, dense, *, boundary="uncompressed", n_classes=None) -> pd.DataFrame:
    """The paper's single-model schema applied where nothing was compressed.

    Why: the schema flags a class whenever it crosses a one-std band, and training
    seed alone moves class accuracies; what it flags between two dense models that
    differ only in seed is what it flags by chance. Neither the paper nor Hooker et
    al. report this.

    Pairs are ORDERED (every (a, b) with a != b, a as "before"): the schema is not
    symmetric in its two models -- the boundary of both sets is the first model's
    std -- so (a, b) and (b, a) are both legitimate "before, after" draws and can
    flag different classes. Impacted images are symmetric (|dev_b - dev_a|), so the
    two orders of a pair repeat the image count; with ``boundary="own"`` the class
    flags are symmetric too. Duplicating every pair leaves the null's mean and shares
    unchanged. The pairs share models, so they are not independent draws.

    Caveat: in this project compressed model i shares seed i with the dense model it
    is compared with (a pruned model is trained from the same seed, hence the same
    initial weights; a quantized model IS that dense model with rounded weights), so it is
    closer to it than a reseeded model is. The null is therefore a high bar: a count
    above it is beyond what reseeding alone does, while a count below it does not show
    that the compression is harmless.

    Args:
        y_true: 1-D integer labels (n_images,).
        dense: {seed: dense predictions (n_images,)}, or an array (n_seeds, n_images)
            whose row i is seed i; at least 2 models.
        boundary: ``"uncompressed"`` (the paper's step 2) or ``"own"``.
        n_classes: number of classes (default: max label + 1 over all arrays).

    Returns:
        One row per ordered pair: ``seed_before``, ``seed_after``, ``boundary_mode``,
        ``impacted_classes`` (count), ``classes`` (ids, as text),
        ``impacted_images``, ``boundary_before``, ``boundary_after``,
        ``top1_before``, ``top1_after``.
    """
    mode = _check_boundary(boundary)
    y = _check_y_true(y_true)
    by_seed = _dense_by_seed(y, dense)
    if len(by_seed) < 2:
        raise ValueError(f"dense has {len(by_seed)} model(s); the null needs at least 2 seeds")
    k = _resolve_n_classes({"y_true": y, **{f"dense[{s}]": p for s, p in by_seed.items()}},
                           _check_n_classes(n_classes))
    seeds = list(by_seed)
    recall, top1 = _recall_matrix(y, np.stack([by_seed[s] for s in seeds]), k)  # once per model
    n_c = _class_counts(y, k)
    rows = []
    for i, j in itertools.permutations(range(len(seeds)), 2):
        res = _single_core(recall[[i, j]], top1[[i, j]], n_c, mode)
        rows.append({"seed_before": seeds[i], "seed_after": seeds[j], **_single_row(res)})
    return pd.DataFrame(rows, columns=NULL_SINGLE_COLUMNS)


NULL_POPULATION_COLUMNS = [
    "split", "seeds_a", "seeds_b", "n_models_a", "n_models_b", "normalize", "alpha",
    "correction", "significant_classes", "classes", "cie_images", "expected_false_flags",
    "low_power", "power_note",
]


def _splits(seeds: list[int], max_splits: int, rng_seed: int) -> tuple[list[tuple], int]:
    """Distinct unordered splits into two disjoint halves of len(seeds) // 2."""
    n, half = len(seeds), len(seeds) // 2
    total = math.comb(n, half) * math.comb(n - half, half) // 2
    if total <= max_splits:
        out = []
        for a in itertools.combinations(seeds, half):
            rest = [s for s in seeds if s not in a]
            for b in itertools.combinations(rest, half):
                if a < b:
                    out.append((a, b))
        return out, total
    rng = np.random.default_rng(rng_seed)
    seen: dict[tuple, None] = {}
    arr = np.asarray(seeds)
    while len(seen) < max_splits:
        perm = rng.permutation(n)
        a = tuple(sorted(int(s) for s in arr[perm[:half]]))
        b = tuple(sorted(int(s) for s in arr[perm[half:2 * half]]))
        seen.setdefault((min(a, b), max(a, b)), None)
    return list(seen), total


def population_null(
    y_true,
    dense,
    *,
    alpha=0.05,
    correction=None,
    normalize="population",
    max_splits=20,
    seed=0,
    n_classes=None,
) -> pd.DataFrame:
    """Hooker et al.'s population schema applied to two disjoint populations of dense models.

    Why: how many classes the t-test flags, and how many images change their modal
    label, when both populations are uncompressed and differ only in their seeds.
    The dense seeds are split into two disjoint halves of ``n // 2`` models (with an
    odd count one seed sits out). With few seeds every distinct split is used; when
    there are more than ``max_splits`` distinct splits, ``max_splits`` random
    distinct ones are drawn with ``np.random.default_rng(seed)``, so the result is
    reproducible. Splits share models, so they are not independent draws.

    Caveat: each null population is half the size of the available dense
    population, so its modal labels are noisier than a full population's and its
    CIE-image count overstates what the same number of models would give.

    Args:
        y_true: 1-D integer labels (n_images,).
        dense: {seed: dense predictions (n_images,)}, or (n_seeds, n_images); at least
            4 models (two halves of >= 2, as Welch's test needs).
        alpha, correction, normalize: as :func:`population_cie`.
        max_splits: most splits to use (>= 1).
        seed: seed of the random choice of splits.
        n_classes: number of classes (default: max label + 1 over all arrays).

    Returns:
        One row per split: ``split`` (0, 1, ...), ``seeds_a``, ``seeds_b`` (seeds, as
        text), ``n_models_a``, ``n_models_b``, ``normalize``, ``alpha``,
        ``correction``, ``significant_classes`` (count), ``classes`` (ids, as text),
        ``cie_images`` (count), ``expected_false_flags``, ``low_power``,
        ``power_note``. ``attrs["n_possible_splits"]`` and ``attrs["all_splits"]``
        say whether every distinct split was used.
    """
    _check_alpha(alpha)
    _check_correction(correction)
    _check_normalize(normalize)
    if isinstance(max_splits, bool) or not isinstance(max_splits, numbers.Integral) or max_splits < 1:
        raise ValueError(f"max_splits must be a positive integer; got {max_splits!r}")
    y = _check_y_true(y_true)
    by_seed = _dense_by_seed(y, dense)
    if len(by_seed) < 4:
        raise ValueError(
            f"dense has {len(by_seed)} model(s); the population null needs at least 4 seeds "
            "(two disjoint halves of >= 2 models)"
        )
    k = _resolve_n_classes({"y_true": y, **{f"dense[{s}]": p for s, p in by_seed.items()}},
                           _check_n_classes(n_classes))
    splits, total = _splits(list(by_seed), int(max_splits), seed)
    rows = []
    for i, (a, b) in enumerate(splits):
        pop = population_cie(y, np.stack([by_seed[s] for s in a]), np.stack([by_seed[s] for s in b]),
                             alpha=alpha, correction=correction, normalize=normalize, n_classes=k)
        rows.append({
            "split": i, "seeds_a": " ".join(map(str, a)), "seeds_b": " ".join(map(str, b)),
            "n_models_a": len(a), "n_models_b": len(b), "normalize": normalize,
            "alpha": pop.alpha, "correction": _correction_name(correction),
            "significant_classes": len(pop.impacted_classes),
            "classes": " ".join(map(str, pop.impacted_classes)),
            "cie_images": int(pop.cie_images.size),
            "expected_false_flags": pop.expected_false_flags, "low_power": pop.low_power,
            "power_note": pop.power_note,
        })
    out = pd.DataFrame(rows, columns=NULL_POPULATION_COLUMNS)
    out.attrs.update(n_possible_splits=total, all_splits=len(splits) == total)
    return out


def beyond_null(observed, null) -> dict:
    """Where one observed count stands against a null distribution of counts.

    Args:
        observed: the count for a compressed setting (classes or images).
        null: the same count in every null draw (e.g. ``single_model_null(...)
            ["impacted_classes"]``).

    Returns:
        dict: ``observed``; ``null_n`` (draws); ``null_mean``; ``null_max``;
        ``share_null_ge`` -- the share of null draws at least as large as the observed
        count (an empirical one-sided p-value: small means beyond chance);
        ``beyond_null_max`` -- True when the observed count exceeds every null draw.
        With an empty null the statistics are NaN and ``beyond_null_max`` is False.
    """
    obs = float(observed)
    if not np.isfinite(obs):
        raise ValueError(f"observed must be a finite number; got {observed!r}")
    v = np.asarray(null, dtype=float).ravel()
    if np.isnan(v).any():
        raise ValueError("null contains NaN; pass the counts of every null draw")
    if v.size == 0:
        return {"observed": obs, "null_n": 0, "null_mean": float("nan"), "null_max": float("nan"),
                "share_null_ge": float("nan"), "beyond_null_max": False}
    return {"observed": obs, "null_n": int(v.size), "null_mean": float(v.mean()),
            "null_max": float(v.max()), "share_null_ge": float(np.mean(v >= obs)),
            "beyond_null_max": bool(obs > v.max())}


def _check_same(kind: str, a: pd.DataFrame, b: pd.DataFrame, columns: Iterable[str]) -> None:
    for col in columns:
        if col in a.columns and col in b.columns:
            va, vb = set(a[col].astype(str)), set(b[col].astype(str))
            if va != vb:
                raise ValueError(f"{kind} and its null disagree on {col}: {sorted(va)} vs {sorted(vb)}; "
                                 "run both with the same options")


def schemas_vs_null(
    single: pd.DataFrame,
    single_null: pd.DataFrame,
    *,
    population: pd.DataFrame | None = None,
    population_null: pd.DataFrame | None = None,
    agreement: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Both schemas' counts per setting, each beside its null: flags beyond chance.

    Single-model schema: every seed's count is placed against every null pair
    (:func:`beyond_null`); ``*_share_null_ge`` is the mean over seeds of the share of
    null pairs flagging at least as much, ``*_seeds_beyond_null_max`` the number of
    seeds that flag more than any null pair. Population schema: the setting's one
    count against the null splits.

    Args:
        single: :func:`single_model_table` output.
        single_null: :func:`single_model_null` output (same ``boundary``).
        population: :func:`population_summary` output (index setting), optional.
        population_null: :func:`population_null` output (same normalize, alpha,
            correction), optional.
        agreement: :func:`agreement_table` output (for ``both_mean``), optional.

    Returns:
        DataFrame indexed by setting: ``boundary_mode`` and ``normalize`` (the options
        the two schemas ran with; "" when unknown), ``n_seeds``, ``single_classes_mean``,
        ``single_null_classes_mean``, ``single_null_classes_max``,
        ``single_classes_share_null_ge``, ``single_classes_seeds_beyond_null_max``,
        ``single_images_mean``, ``single_null_images_mean``,
        ``single_null_images_max``, ``single_images_share_null_ge``,
        ``single_images_seeds_beyond_null_max``, ``single_null_pairs``,
        ``population_classes``, ``population_null_classes_mean``,
        ``population_null_classes_max``, ``population_classes_share_null_ge``,
        ``population_cie_images``, ``population_null_cie_images_mean``,
        ``population_null_cie_images_max``, ``population_cie_images_share_null_ge``,
        ``population_null_splits``, ``expected_false_flags``, ``low_power``,
        ``both_mean`` (mean per seed of classes both schemas flag). Missing inputs
        leave their columns NaN.
    """
    need = {"setting", "seed", "impacted_classes", "impacted_images"}
    if need - set(single.columns):
        raise ValueError(f"single lacks column(s) {sorted(need - set(single.columns))}")
    if {"impacted_classes", "impacted_images"} - set(single_null.columns):
        raise ValueError("single_null must have impacted_classes and impacted_images columns")
    _check_same("single", single, single_null, ["boundary_mode"])
    if (population is None) != (population_null is None):
        raise ValueError("give population and population_null together, or neither")
    if population is not None:
        for col in ("significant_classes", "cie_images"):
            if col not in population.columns or col not in population_null.columns:
                raise ValueError(f"population and population_null need a {col!r} column")
        _check_same("population", population, population_null, ["normalize", "alpha", "correction"])

    settings = list(dict.fromkeys(single["setting"]))
    if population is not None:
        settings += [s for s in population.index if s not in settings]
    boundary_mode = (str(single["boundary_mode"].iloc[0])
                     if "boundary_mode" in single.columns and len(single) else "")
    normalize = (str(population["normalize"].iloc[0])
                 if population is not None and "normalize" in population.columns and len(population)
                 else "")
    rows = []
    for name in settings:
        row: dict = {"setting": name, "boundary_mode": boundary_mode, "normalize": normalize}
        mine = single[single["setting"] == name]
        row["n_seeds"] = len(mine)
        for what, col in (("classes", "impacted_classes"), ("images", "impacted_images")):
            nulls = single_null[col].to_numpy(dtype=float)
            placed = [beyond_null(v, nulls) for v in mine[col]]
            row[f"single_{what}_mean"] = float(mine[col].mean()) if len(mine) else float("nan")
            row[f"single_null_{what}_mean"] = float(nulls.mean()) if nulls.size else float("nan")
            row[f"single_null_{what}_max"] = float(nulls.max()) if nulls.size else float("nan")
            row[f"single_{what}_share_null_ge"] = _nanmean([p["share_null_ge"] for p in placed])
            row[f"single_{what}_seeds_beyond_null_max"] = int(sum(p["beyond_null_max"] for p in placed))
        row["single_null_pairs"] = len(single_null)
        for what, col in (("classes", "significant_classes"), ("cie_images", "cie_images")):
            if population is not None and name in population.index:
                placed = beyond_null(population.loc[name, col], population_null[col])
                row[f"population_{what}"] = placed["observed"]
                row[f"population_null_{what}_mean"] = placed["null_mean"]
                row[f"population_null_{what}_max"] = placed["null_max"]
                row[f"population_{what}_share_null_ge"] = placed["share_null_ge"]
            else:
                for key in (f"population_{what}", f"population_null_{what}_mean",
                            f"population_null_{what}_max", f"population_{what}_share_null_ge"):
                    row[key] = float("nan")
        row["population_null_splits"] = len(population_null) if population_null is not None else 0
        has_pop = population is not None and name in population.index
        row["expected_false_flags"] = (float(population.loc[name, "expected_false_flags"])
                                       if has_pop and "expected_false_flags" in population.columns
                                       else float("nan"))
        row["low_power"] = (bool(population.loc[name, "low_power"])
                            if has_pop and "low_power" in population.columns else pd.NA)
        row["both_mean"] = (float(agreement.loc[name, "mean_n_both"])
                            if agreement is not None and name in agreement.index
                            and "mean_n_both" in agreement.columns else float("nan"))
        rows.append(row)
    return pd.DataFrame(rows).set_index("setting")
