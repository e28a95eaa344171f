"""Hooker et al.'s population schema: Welch's t-test per class, modal labels per image.

Also what the schema's counts mean: Benjamini-Hochberg across classes, and how many
classes chance alone flags (:func:`expected_false_flags`, ``low_power``).
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln, xlogy

from cielib.cie._checks import (
    as_labels,
    check_alpha,
    check_correction,
    check_n_classes,
    check_normalize,
    check_population,
    check_y_true,
    class_counts,
    correction_name,
    recall_matrix,
    resolve_n_classes,
)


#: A population smaller than this is marked ``low_power``: Hooker et al. used 30 models
#: per population; with a handful, Welch's test finds only very large shifts.
LOW_POWER_MODELS = 10
_TIE = 1e-12  # normalized recalls closer than this are equal (floating-point noise only)


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
    p = as_labels(preds, "preds", 2)
    if p.size == 0:
        raise ValueError(f"preds is empty (shape {p.shape}); need at least one model and image")
    k = resolve_n_classes({"preds": p}, check_n_classes(n_classes))
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


def welch_t(comp: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise Welch t-test of ``comp`` vs ``base`` (t > 0: comp higher).

    Rows (axis -2) are models; leading axes, if any, are independent draws (the
    matched null tests many splits at once with this same function).

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
        res = stats.ttest_ind(comp, base, axis=-2, equal_var=False)
    t = np.asarray(res.statistic, dtype=float).copy()
    p = np.asarray(res.pvalue, dtype=float).copy()
    const = (np.ptp(comp, axis=-2) <= _TIE) & (np.ptp(base, axis=-2) <= _TIE)
    diff = comp[..., 0, :] - base[..., 0, :]
    same = np.abs(diff) <= _TIE
    t[const] = np.where(same[const], 0.0, np.copysign(np.inf, diff[const]))
    p[const] = np.where(same[const], 1.0, 0.0)
    return t, p


def paired_t(comp: np.ndarray, base: np.ndarray, raw_diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise paired t-test on ``comp - base`` (rows are pairs; t > 0: comp higher).

    Why: a quantized model (or one pruned by fine-tuning) IS its dense model changed,
    so its class recall moves with that model's; the within-pair differences remove the
    seed-to-seed variation that Welch's test (Hooker et al.'s, for independent
    populations) keeps in its variance. Degenerate columns (every difference the same):
    p = 1 (t = 0) when no model's recall of the class changed (``raw_diff`` all zero)
    or the common difference is within ``_TIE`` of zero, else p = 0 (t = +-inf).

    Args:
        comp, base: normalized recalls (..., n_pairs, n_cols), row i of each a pair
            (leading axes: independent draws, as the matched null uses).
        raw_diff: the unnormalized recall differences, same shape.
    """
    d = comp - base
    n = d.shape[-2]
    mean = d.mean(axis=-2)
    sd = d.std(axis=-2, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = mean / (sd / np.sqrt(n))
    p = 2 * stats.t.sf(np.abs(t), n - 1)
    const = np.ptp(d, axis=-2) <= _TIE
    still = const & ((np.abs(raw_diff).max(axis=-2) <= _TIE) | (np.abs(mean) <= _TIE))
    t[const] = np.where(still[const], 0.0, np.copysign(np.inf, mean[const]))
    p[const] = np.where(still[const], 1.0, 0.0)
    return t, p


#: The per-class test of :func:`population_cie`: ``welch`` for independent populations
#: (Hooker et al.), ``paired`` when compressed model i derives from dense model i.
TESTS = ("welch", "paired")


# --------------------------------------------------------------------------------------
# Power: what chance alone flags
# --------------------------------------------------------------------------------------


def bh_complete_null_pmf(m: int, alpha: float) -> np.ndarray:
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
      uniform p-values from the distribution in :func:`bh_complete_null_pmf`; it is
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
    alpha = check_alpha(alpha)
    correction = check_correction(correction)
    m = int(n_classes)
    if correction is None:
        return alpha * m
    pmf = bh_complete_null_pmf(m, alpha)
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
        test: "welch" (independent populations) or "paired" (row i of each side a pair).
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
    test: str
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
    test="welch",
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
        test: ``"welch"`` (default, Hooker et al.'s unpaired test, for independently
            trained populations) or ``"paired"`` (a paired t-test on the within-pair
            differences of normalized recall, :func:`paired_t`; row i of
            ``comp_preds`` must derive from row i of ``base_preds``, e.g. its
            quantized version, so both need the same number of rows).
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
    normalize = check_normalize(normalize)
    alpha = check_alpha(alpha)
    correction = check_correction(correction)
    y = check_y_true(y_true)
    n = y.size
    base = check_population(base_preds, "base_preds", n)
    comp = check_population(comp_preds, "comp_preds", n)
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(map(repr, TESTS))}; got {test!r}")
    if test == "paired" and base.shape[0] != comp.shape[0]:
        raise ValueError(f"test='paired' pairs rows, but base_preds has {base.shape[0]} rows and "
                         f"comp_preds has {comp.shape[0]}")
    k = resolve_n_classes(
        {"y_true": y, "base_preds": base, "comp_preds": comp}, check_n_classes(n_classes)
    )

    rec_b, top_b = recall_matrix(y, base, k)
    rec_c, top_c = recall_matrix(y, comp, k)
    if normalize == "population":
        norm_b = rec_b - top_b.mean()
        norm_c = rec_c - top_c.mean()
    else:
        norm_b = rec_b - top_b[:, None]
        norm_c = rec_c - top_c[:, None]
    n_c = class_counts(y, k)
    has = n_c > 0

    t = np.full(k, np.nan)
    p = np.full(k, np.nan)
    if test == "paired":
        t[has], p[has] = paired_t(norm_c[:, has], norm_b[:, has], (rec_c - rec_b)[:, has])
    else:
        t[has], p[has] = welch_t(norm_c[:, has], norm_b[:, has])
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
    table.attrs.update(normalize=normalize, test=test, alpha=alpha, correction=correction_name(correction),
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
        test=test,
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
    "n_models_base", "n_models_comp", "top1_base", "top1_comp", "normalize", "test", "alpha",
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
        ``normalize``, ``test`` ("welch" or "paired"), ``alpha``, ``correction``
        ("none" or "fdr_bh"),
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
            "test": r.test,
            "alpha": r.alpha, "correction": correction_name(r.correction),
            "significant_classes": len(r.impacted_classes),
            "classes": " ".join(map(str, r.impacted_classes)),
            "expected_false_flags": r.expected_false_flags, "low_power": r.low_power,
            "cie_images": int(r.cie_images.size), "power_note": r.power_note,
        })
    return pd.DataFrame(rows, columns=["setting", *POPULATION_SUMMARY_COLUMNS]).set_index("setting")
