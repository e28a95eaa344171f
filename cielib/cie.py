"""Compression identified exemplars (CIE): which classes and images compression hurts.

Two detection schemas live here, so that they can be run on the same predictions
and compared:

* :func:`single_model_cie` -- the cheap schema of "Rethinking Compression within
  Deep Neural Networks" (Section IX.vii, seven steps; Tables 4 and 9). It needs one
  uncompressed and one compressed model and flags classes that cross a
  "standard deviation boundary".
* :func:`population_cie` -- the schema of Hooker et al., "What Do Compressed Deep
  Neural Networks Forget?" (arXiv 1911.05248). It needs a *population* of
  independently trained models on each side; a class is impacted when Welch's
  t-test finds its normalized recall shifted, and an image is a CIE when the
  modal (most frequent) label across the population changes.

:func:`agreement` and :func:`agreement_table` ask how often the cheap schema finds
what the population schema finds.

Everything is plain numpy/pandas/scipy (never TensorFlow) and vectorized: per-model
per-class counts come from one ``np.bincount`` over ``model * n_classes + label``,
modal labels from one ``np.bincount`` over ``image * n_classes + label``; there is no
Python loop over images. Labels are integer class ids in ``[0, n_classes)``.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "SingleModelCIE",
    "PopulationCIE",
    "single_model_cie",
    "population_cie",
    "benjamini_hochberg",
    "modal_labels",
    "agreement",
    "agreement_table",
]

CORRECTIONS = (None, "fdr_bh")


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------


def _as_labels(values, name: str, ndim: int) -> np.ndarray:
    """``values`` as an int64 array of the given rank; clear errors otherwise.

    Booleans and floats are rejected rather than cast: a float prediction array
    usually means probabilities/logits were passed where argmax labels belong, and
    silently truncating them would give plausible-looking nonsense.
    """
    arr = np.asarray(values)
    if arr.size == 0 and arr.dtype.kind == "f":
        arr = arr.astype(np.int64)  # an empty list: report emptiness, not its dtype
    if arr.dtype.kind == "b":
        raise ValueError(
            f"{name} must hold integer class ids; got dtype bool (booleans are not "
            "class ids; pass e.g. argmax labels as an integer array)"
        )
    if arr.dtype.kind not in "iu":
        hint = " (probabilities or logits? take argmax first)" if arr.dtype.kind == "f" else ""
        raise ValueError(
            f"{name} must hold integer class ids (any integer dtype); got dtype "
            f"{arr.dtype}{hint}"
        )
    if arr.ndim != ndim:
        want = "1-D (one label per image)" if ndim == 1 else "2-D (n_models, n_images)"
        raise ValueError(f"{name} must be {want}; got shape {arr.shape}")
    if arr.size:
        lo = arr.min()
        if lo < 0:
            raise ValueError(f"{name} contains negative label {int(lo)}; class ids must be >= 0")
    return arr.astype(np.int64, copy=False)


def _check_n_classes(n_classes) -> int | None:
    if n_classes is None:
        return None
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer or None; got {n_classes!r}")
    return int(n_classes)


def _resolve_n_classes(arrays: Mapping[str, np.ndarray], n_classes: int | None) -> int:
    """The number of classes: given, or max label + 1 over all arrays."""
    maxima = {name: int(a.max()) for name, a in arrays.items() if a.size}
    if n_classes is None:
        return max(maxima.values()) + 1
    for name, hi in maxima.items():
        if hi >= n_classes:
            raise ValueError(
                f"{name} contains label {hi}, but n_classes={n_classes}; class ids "
                f"must lie in [0, {n_classes})"
            )
    return n_classes


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
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(comp, base, axis=0, equal_var=False)
    t = np.asarray(res.statistic, dtype=float).copy()
    p = np.asarray(res.pvalue, dtype=float).copy()
    const = np.all(comp == comp[:1], axis=0) & np.all(base == base[:1], axis=0)
    diff = comp[0] - base[0]
    t[const] = np.where(diff[const] == 0, 0.0, np.copysign(np.inf, diff[const]))
    p[const] = np.where(diff[const] == 0, 1.0, 0.0)
    return t, p


# --------------------------------------------------------------------------------------
# Single-model schema (the paper's seven steps)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SingleModelCIE:
    """Result of :func:`single_model_cie`.

    Attributes:
        impacted_classes: sorted class ids that crossed the boundary (either way).
        impacted_images: sum over classes of |deviation after - deviation before|
            times the class's number of test images (a count of images, fractional).
        boundary: population std (ddof=0) of the uncompressed class accuracies.
        top1_before: overall accuracy of the uncompressed model.
        top1_after: overall accuracy of the compressed model.
        table: one row per class id (see :func:`single_model_cie`).
    """

    impacted_classes: list[int]
    impacted_images: float
    boundary: float
    top1_before: float
    top1_after: float
    table: pd.DataFrame = field(repr=False)


def single_model_cie(y_true, y_pred_base, y_pred_comp, *, n_classes=None) -> SingleModelCIE:
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

    Returns:
        SingleModelCIE; ``table`` is indexed by class id with columns ``n_images``,
        ``accuracy_before``, ``accuracy_after``, ``deviation_before``,
        ``deviation_after``, ``outside_before``, ``outside_after``, ``impacted``.
    """
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
    n_c = _class_counts(y, k)
    has = n_c > 0
    boundary = float(np.std(recall[0, has], ddof=0))
    dev = recall - top1[:, None]
    with np.errstate(invalid="ignore"):
        outside = np.abs(dev) > boundary  # NaN compares False
    impacted = (outside[0] ^ outside[1]) & has
    impacted_images = float(np.sum(np.abs(dev[1, has] - dev[0, has]) * n_c[has]))

    table = pd.DataFrame(
        {
            "n_images": n_c.astype(np.int64),
            "accuracy_before": recall[0],
            "accuracy_after": recall[1],
            "deviation_before": dev[0],
            "deviation_after": dev[1],
            "outside_before": outside[0],
            "outside_after": outside[1],
            "impacted": impacted,
        },
        index=pd.RangeIndex(k, name="class"),
    )
    return SingleModelCIE(
        impacted_classes=[int(c) for c in np.flatnonzero(impacted)],
        impacted_images=impacted_images,
        boundary=boundary,
        top1_before=float(top1[0]),
        top1_after=float(top1[1]),
        table=table,
    )


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
        table: per class (see :func:`population_cie`).
        images: per image (see :func:`population_cie`).
    """

    impacted_classes: list[int]
    cie_images: np.ndarray
    alpha: float
    correction: str | None
    table: pd.DataFrame = field(repr=False)
    images: pd.DataFrame = field(repr=False)


def population_cie(
    y_true,
    base_preds,
    comp_preds,
    *,
    alpha=0.05,
    correction=None,
    n_classes=None,
) -> PopulationCIE:
    """Hooker et al.'s population schema: impacted classes and CIE images.

    Why: one model's per-class accuracy is noisy (training seed alone moves it), so
    Hooker et al. compare populations of independently trained models. Per model,
    normalized recall = class recall - that model's top-1, which removes a uniform
    accuracy drop (a class that loses exactly as much as the model overall is not
    "forgotten"). A class is impacted when Welch's two-sided t-test between the
    populations' normalized recall gives p < alpha (after ``correction``). An image
    is a CIE when its modal label (most frequent prediction across the population,
    ties to the highest class id as in the authors' code) differs between the two
    populations.

    Zero variance: when every model in BOTH populations has the same normalized
    recall for a class, scipy's t is NaN. We define p = 1.0 (t = 0) when the two
    values are equal and p = 0.0 (t = +-inf, significant) when they differ -- a
    deterministic shift. Classes without test images get NaN statistics and are
    never significant; they do not count towards the BH correction.

    Args:
        y_true: 1-D integer labels (n_images,).
        base_preds: integer predictions (n_models_base, n_images) of uncompressed
            models, one row per independently trained model (>= 2 rows).
        comp_preds: same for compressed models (n_models_comp may differ).
        alpha: significance level, in (0, 1).
        correction: None, or "fdr_bh" for Benjamini-Hochberg across classes.
        n_classes: number of classes; defaults to max label + 1 over all arrays.

    Returns:
        PopulationCIE. ``table`` (index class id): ``n_images``, ``recall_base``,
        ``recall_comp`` (mean absolute recall), ``mean_norm_recall_base``,
        ``mean_norm_recall_comp``, ``difference`` (comp - base), ``t`` (positive:
        comp higher), ``p``, ``p_adjusted`` (= p without correction),
        ``significant``. ``images`` (index image id): ``label``, ``modal_base``,
        ``modal_comp``, ``base_correct``, ``comp_correct``, ``cie``.
    """
    y = _check_y_true(y_true)
    n = y.size
    base = _check_population(base_preds, "base_preds", n)
    comp = _check_population(comp_preds, "comp_preds", n)
    alpha = _check_alpha(alpha)
    correction = _check_correction(correction)
    k = _resolve_n_classes(
        {"y_true": y, "base_preds": base, "comp_preds": comp}, _check_n_classes(n_classes)
    )

    rec_b, top_b = _recall_matrix(y, base, k)
    rec_c, top_c = _recall_matrix(y, comp, k)
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
        },
        index=pd.RangeIndex(k, name="class"),
    )

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
        table=table,
        images=images,
    )


# --------------------------------------------------------------------------------------
# Do the two schemas agree?
# --------------------------------------------------------------------------------------


def agreement(single_flags: Iterable[int], population_flags: Iterable[int]) -> dict:
    """How well the single-model flags S recover the population flags P.

    Treats P as the reference: precision = |S & P| / |S| (NaN when S is empty:
    nothing was claimed), recall = |S & P| / |P| (NaN when P is empty: nothing to
    find), f1 their harmonic mean (NaN if either is NaN, 0 if both are 0).

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


def agreement_table(
    y_true,
    settings: Mapping[str, tuple],
    *,
    alpha=0.05,
    correction=None,
    n_classes=None,
) -> pd.DataFrame:
    """Single-model vs population schema, for several compression settings at once.

    Pairing: in each setting, row i of the baseline array and row i of the
    compressed array are the same seed (the compressed model i was made from
    baseline model i), so :func:`single_model_cie` is run on each pair (i, i) -- what
    a practitioner with one trained model would do -- and :func:`population_cie`
    once on all rows. Both arrays of a setting must therefore have the same number
    of rows. Per-seed precision/recall/f1 are averaged ignoring NaN (seeds that
    flagged nothing have no precision); an all-NaN column stays NaN.

    Args:
        y_true: 1-D integer labels (n_images,).
        settings: {setting name: (base_preds, comp_preds)}, each (n_seeds, n_images).
        alpha: passed to :func:`population_cie`.
        correction: passed to :func:`population_cie`.
        n_classes: number of classes; defaults to max label + 1 over every array of
            every setting, so all settings share the same class ids.

    Returns:
        DataFrame indexed by setting: ``n_seeds``, ``mean_precision``,
        ``mean_recall``, ``mean_f1``, ``mean_n_single`` (mean number of classes the
        single-model schema flags per seed), ``n_population`` (classes flagged by
        the population schema), ``mean_impacted_images_single``,
        ``n_cie_images_population``.
    """
    y = _check_y_true(y_true)
    if not settings:
        raise ValueError("settings is empty; give at least one {name: (base_preds, comp_preds)}")
    _check_alpha(alpha)
    _check_correction(correction)
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
        pop = population_cie(y, b, c, alpha=alpha, correction=correction, n_classes=k)
        per_seed = []
        images = []
        for i in range(b.shape[0]):
            single = single_model_cie(y, b[i], c[i], n_classes=k)
            per_seed.append(agreement(single.impacted_classes, pop.impacted_classes))
            images.append(single.impacted_images)
        rows.append(
            {
                "setting": name,
                "n_seeds": b.shape[0],
                "mean_precision": _nanmean([a["precision"] for a in per_seed]),
                "mean_recall": _nanmean([a["recall"] for a in per_seed]),
                "mean_f1": _nanmean([a["f1"] for a in per_seed]),
                "mean_n_single": float(np.mean([a["n_single"] for a in per_seed])),
                "n_population": len(pop.impacted_classes),
                "mean_impacted_images_single": float(np.mean(images)),
                "n_cie_images_population": int(pop.cie_images.size),
            }
        )
    return pd.DataFrame(rows).set_index("setting")


def single_model_table(
    y_true,
    base: Mapping[int, np.ndarray],
    settings: Mapping[str, Mapping[int, np.ndarray]],
    *,
    n_classes=None,
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

    Returns:
        One row per (setting, seed): ``impacted_classes`` (count), ``classes`` (the
        ids, as text), ``impacted_images``, ``boundary``, ``top1_before``,
        ``top1_after``.
    """
    y = _check_y_true(y_true)
    rows = []
    for name, by_seed in settings.items():
        for seed, pred in sorted(by_seed.items()):
            if seed not in base:
                continue
            res = single_model_cie(y, base[seed], pred, n_classes=n_classes)
            rows.append({
                "setting": name, "seed": int(seed),
                "impacted_classes": len(res.impacted_classes),
                "classes": " ".join(map(str, res.impacted_classes)),
                "impacted_images": res.impacted_images, "boundary": res.boundary,
                "top1_before": res.top1_before, "top1_after": res.top1_after,
            })
    return pd.DataFrame(rows, columns=["setting", "seed", "impacted_classes", "classes",
                                       "impacted_images", "boundary", "top1_before", "top1_after"])
