"""Does the cheap single-model schema agree with the population schema?

:func:`agreement` compares two sets of flagged classes; :func:`agreement_table` runs
both schemas on paired seeds for several compression settings at once.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from cielib.cie._checks import (
    nanmean,
    check_alpha,
    check_boundary,
    check_correction,
    check_n_classes,
    check_normalize,
    check_population,
    check_y_true,
    correction_name,
    resolve_n_classes,
)
from cielib.cie.population import population_cie
from cielib.cie.single import single_model_cie


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
    y = check_y_true(y_true)
    if not settings:
        raise ValueError("settings is empty; give at least one {name: (base_preds, comp_preds)}")
    check_alpha(alpha)
    check_correction(correction)
    check_normalize(normalize)
    check_boundary(boundary)
    checked = {}
    for name, pair in settings.items():
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"settings[{name!r}] must be a (base_preds, comp_preds) pair")
        b = check_population(pair[0], f"settings[{name!r}] base_preds", y.size)
        c = check_population(pair[1], f"settings[{name!r}] comp_preds", y.size)
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
    k = resolve_n_classes(arrays, check_n_classes(n_classes))

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
                "correction": correction_name(correction),
                "mean_n_single": float(np.mean([a["n_single"] for a in per_seed])),
                "n_population": len(pop.impacted_classes),
                "mean_n_both": float(np.mean([a["n_both"] for a in per_seed])),
                "n_single_total": int(sum(a["n_single"] for a in per_seed)),
                "n_both_total": int(sum(a["n_both"] for a in per_seed)),
                "n_population_total": len(pop.impacted_classes) * b.shape[0],
                "mean_precision": nanmean([a["precision"] for a in per_seed]),
                "mean_recall": nanmean([a["recall"] for a in per_seed]),
                "mean_f1": nanmean([a["f1"] for a in per_seed]),
                "mean_impacted_images_single": float(np.mean(images)),
                "n_cie_images_population": int(pop.cie_images.size),
                "expected_false_flags": pop.expected_false_flags,
                "low_power": pop.low_power,
                "power_note": pop.power_note,
            }
        )
    return pd.DataFrame(rows, columns=["setting", *AGREEMENT_COLUMNS]).set_index("setting")
