"""Both CIE schemas where nothing was compressed, and observed counts beside that null.

:func:`single_model_null` and :func:`population_null` run each schema on dense models
that differ only in their seed; :func:`beyond_null` and :func:`schemas_vs_null` say
whether a compressed setting flags more than that.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from cielib.cie._checks import (
    nanmean,
    as_labels,
    check_alpha,
    check_boundary,
    check_correction,
    check_n_classes,
    check_normalize,
    check_y_true,
    class_counts,
    correction_name,
    recall_matrix,
    resolve_n_classes,
)
from cielib.cie.population import population_cie
from cielib.cie.single import single_core, single_row


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
            a = as_labels(v, f"{name}[{seed!r}]", 1)
            if a.size != y.size:
                raise ValueError(f"{name}[{seed!r}] has {a.size} labels, but y_true has {y.size}")
            out[int(seed)] = a
        return dict(sorted(out.items()))
    arr = as_labels(dense, name, 2)
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
    mode = check_boundary(boundary)
    y = check_y_true(y_true)
    by_seed = _dense_by_seed(y, dense)
    if len(by_seed) < 2:
        raise ValueError(f"dense has {len(by_seed)} model(s); the null needs at least 2 seeds")
    k = resolve_n_classes({"y_true": y, **{f"dense[{s}]": p for s, p in by_seed.items()}},
                           check_n_classes(n_classes))
    seeds = list(by_seed)
    recall, top1 = recall_matrix(y, np.stack([by_seed[s] for s in seeds]), k)  # once per model
    n_c = class_counts(y, k)
    rows = []
    for i, j in itertools.permutations(range(len(seeds)), 2):
        res = single_core(recall[[i, j]], top1[[i, j]], n_c, mode)
        rows.append({"seed_before": seeds[i], "seed_after": seeds[j], **single_row(res)})
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
    check_alpha(alpha)
    check_correction(correction)
    check_normalize(normalize)
    if isinstance(max_splits, bool) or not isinstance(max_splits, numbers.Integral) or max_splits < 1:
        raise ValueError(f"max_splits must be a positive integer; got {max_splits!r}")
    y = check_y_true(y_true)
    by_seed = _dense_by_seed(y, dense)
    if len(by_seed) < 4:
        raise ValueError(
            f"dense has {len(by_seed)} model(s); the population null needs at least 4 seeds "
            "(two disjoint halves of >= 2 models)"
        )
    k = resolve_n_classes({"y_true": y, **{f"dense[{s}]": p for s, p in by_seed.items()}},
                           check_n_classes(n_classes))
    splits, total = _splits(list(by_seed), int(max_splits), seed)
    rows = []
    for i, (a, b) in enumerate(splits):
        pop = population_cie(y, np.stack([by_seed[s] for s in a]), np.stack([by_seed[s] for s in b]),
                             alpha=alpha, correction=correction, normalize=normalize, n_classes=k)
        rows.append({
            "split": i, "seeds_a": " ".join(map(str, a)), "seeds_b": " ".join(map(str, b)),
            "n_models_a": len(a), "n_models_b": len(b), "normalize": normalize,
            "alpha": pop.alpha, "correction": correction_name(correction),
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
            row[f"single_{what}_share_null_ge"] = nanmean([p["share_null_ge"] for p in placed])
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
