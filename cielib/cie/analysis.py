"""The whole CIE analysis of one task in one call: both schemas, matched nulls, verdicts.

:func:`analyse` takes predictions only (any framework's: integer labels per model), so
the CIE notebook and a user bringing predictions from elsewhere call the same function.
Every count it reports stands beside a null drawn with the observed design and sizes
(:mod:`cielib.cie.matched`) and carries its p-value.
"""

from __future__ import annotations

import numbers
import zlib
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from cielib.cie._checks import (
    as_labels,
    check_alpha,
    check_boundary,
    check_correction,
    check_n_classes,
    check_normalize,
    check_y_true,
    correction_name,
    nanmean,
    resolve_n_classes,
)
from cielib.cie.compare import agreement
from cielib.cie.draws import POPULATION_STATISTICS, SINGLE_STATISTICS, models
from cielib.cie.matched import (
    INDEPENDENT_NULLS,
    POPULATION_TEST,
    place,
    population_matched,
    single_matched,
)
from cielib.cie.population import PopulationCIE, population_cie, population_summary
from cielib.cie.single import single_model_cie, single_row

DESIGNS = tuple(POPULATION_TEST)
#: Default null draws: p-values to about +-0.007 at 0.05, seconds on 10 classes x 30
#: models x 2,000 images.
N_NULL = 1000
VERDICT_COLUMNS = [
    "setting", "schema", "statistic", "design", "null", "n_base", "n_comp", "observed",
    "null_median", "null_low", "null_high", "p", "percentile", "n_null", "exact",
]
PAIR_COLUMNS = ["setting", "design", "dense_seed", "compressed_seed"]
SCHEMAS = {"single": "single-model", "population": "population"}


@dataclass(frozen=True, eq=False)
class CIEAnalysis:
    """Result of :func:`analyse`.

    Attributes:
        single: the paper's schema per pair: ``setting``, ``design``, ``seed`` (dense),
            ``compressed_seed``, then :data:`cielib.cie.SINGLE_TABLE_COLUMNS`' counts.
        single_null: one row per null draw and setting: ``setting``, ``null``,
            ``draw``, ``classes``, ``images`` (means over the draw's pairs).
        population: :func:`cielib.cie.population_summary` per setting, with ``design``.
        population_null: one row per null draw and setting: ``setting``, ``null``,
            ``draw``, ``classes``, ``classes, BH``, ``CIE images``.
        verdicts: one row per (setting, schema, statistic), :data:`VERDICT_COLUMNS`.
        agreement: per setting, how far the single-model flags agree with the
            population flags (counts beside rates).
        pairs: which models were compared (:data:`PAIR_COLUMNS`).
        pops: {setting: PopulationCIE} (per-class table and per-image modal labels).
        options: the options the analysis ran with.
    """

    single: pd.DataFrame
    single_null: pd.DataFrame
    population: pd.DataFrame
    population_null: pd.DataFrame
    verdicts: pd.DataFrame
    agreement: pd.DataFrame
    pairs: pd.DataFrame
    pops: dict[str, PopulationCIE] = field(repr=False)
    options: dict = field(default_factory=dict)


def pair_models(base_seeds, settings: Mapping[str, Mapping[int, np.ndarray]],
                designs: Mapping[str, str]) -> pd.DataFrame:
    """Which dense model each compressed model is compared with.

    Paired settings: the dense model of the same seed (the model it derives from).
    Independent settings: the i-th compressed seed (sorted) with the i-th dense seed.
    Models without a partner are left out. Same rule as
    :func:`cielib.runsets.pair_with_dense`.
    """
    dense = sorted(base_seeds)
    rows = []
    for name, by_seed in settings.items():
        design = designs[name]
        if design == "paired":
            pairs = [(s, s) for s in sorted(by_seed) if s in set(dense)]
        else:
            pairs = list(zip(dense, sorted(by_seed)))
        rows += [{"setting": name, "design": design, "dense_seed": d, "compressed_seed": c}
                 for d, c in pairs]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _check_seeded(preds: Mapping, name: str, n: int) -> dict[int, np.ndarray]:
    if not isinstance(preds, Mapping) or not preds:
        raise ValueError(f"{name} must be a non-empty mapping {{seed: predictions}}; got {preds!r:.60}")
    out = {}
    for seed, v in preds.items():
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"{name} keys must be integer seeds; got {seed!r}")
        a = as_labels(v, f"{name}[{seed!r}]", 1)
        if a.size != n:
            raise ValueError(f"{name}[{seed!r}] has {a.size} labels, but y_true has {n}")
        out[int(seed)] = a
    return out


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _rng(seed: int, setting: str, schema: str) -> np.random.Generator:
    """One generator per (setting, schema): a setting's null does not change when
    another setting is added or the order changes."""
    return np.random.default_rng([seed, zlib.crc32(setting.encode()), zlib.crc32(schema.encode())])


def analyse(
    y_true,
    base: dict[int, np.ndarray],
    settings: dict[str, dict[int, np.ndarray]],
    designs: dict[str, str],
    *,
    alpha=0.05,
    correction=None,
    normalize="population",
    boundary="uncompressed",
    n_null=N_NULL,
    rng_seed=0,
    n_classes=None,
    independent_null="permutation",
) -> CIEAnalysis:
    """Both CIE schemas on every setting, each count against a null of its own design.

    Why: a count of flagged classes or changed images means nothing without what the
    same comparison gives when nothing was compressed, drawn with the same design
    (independent or paired models) and the same number of models per side; and a
    flag/no-flag verdict near the threshold means little without its p-value.

    Per setting: the paper's single-model schema on every (dense, compressed) pair
    (statistic: the mean over pairs); Hooker et al.'s population schema (Welch's test
    for independent populations, a paired t-test for paired ones) on the pairs' models;
    the nulls of :mod:`cielib.cie.matched`; agreement of the two schemas' flags. The
    population schema reports classes flagged uncorrected (Hooker et al.'s choice),
    after Benjamini-Hochberg, and CIE images; ``correction`` chooses which class flags
    the per-class table and the agreement use.

    Args:
        y_true: 1-D integer labels (n_images,).
        base: {dense seed: predictions (n_images,)}.
        settings: {setting: {compressed model's own seed: predictions}}.
        designs: {setting: "independent" | "paired"} (every setting).
        alpha: significance level of the per-class tests, in (0, 1).
        correction: None or "fdr_bh": the flags of ``pops`` and ``agreement``.
        normalize: "population" (Hooker et al.'s code) or "model".
        boundary: "uncompressed" (the paper's step 2) or "own".
        n_null: null draws per setting and schema (fewer when every distinct draw
            can be enumerated: an exact test).
        rng_seed: seed of every random draw (results are reproducible).
        n_classes: number of classes; default max label + 1 over all arrays.
        independent_null: "permutation" (default: exact by exchangeability) or
            "dense splits" (disjoint dense models, when there are 2n; calibration
            shows it too liberal with few dense models), see :mod:`cielib.cie.matched`.

    Returns:
        CIEAnalysis.
    """
    alpha = check_alpha(alpha)
    correction = check_correction(correction)
    normalize = check_normalize(normalize)
    boundary = check_boundary(boundary)
    n_null = _check_count(n_null, "n_null", 1)
    rng_seed = _check_count(rng_seed, "rng_seed", 0)
    if independent_null not in INDEPENDENT_NULLS:
        raise ValueError(f"independent_null must be one of {', '.join(map(repr, INDEPENDENT_NULLS))}; "
                         f"got {independent_null!r}")
    y = check_y_true(y_true)
    dense = _check_seeded(base, "base", y.size)
    if not isinstance(settings, Mapping):
        raise ValueError(f"settings must be a mapping {{setting: {{seed: predictions}}}}; got {settings!r:.60}")
    comp = {name: _check_seeded(v, f"settings[{name!r}]", y.size) for name, v in settings.items()}
    for name in comp:
        if not isinstance(designs, Mapping) or designs.get(name) not in DESIGNS:
            got = designs.get(name) if isinstance(designs, Mapping) else designs
            raise ValueError(f"designs[{name!r}] must be one of {', '.join(map(repr, DESIGNS))}; "
                             f"got {got!r}")
    arrays = {"y_true": y, **{f"base[{s}]": p for s, p in dense.items()},
              **{f"settings[{n!r}][{s}]": p for n, v in comp.items() for s, p in v.items()}}
    k = resolve_n_classes(arrays, check_n_classes(n_classes))

    dense_seeds = sorted(dense)
    pairs = pair_models(dense_seeds, comp, designs)
    stacked = [dense[s] for s in dense_seeds]
    row_of = {s: i for i, s in enumerate(dense_seeds)}
    observed = {}
    for name in comp:
        mine = pairs[pairs["setting"] == name]
        b = np.array([row_of[s] for s in mine["dense_seed"]], dtype=np.int64)
        c = np.arange(len(stacked), len(stacked) + len(mine), dtype=np.int64)
        stacked += [comp[name][s] for s in mine["compressed_seed"]]
        observed[name] = (b, c)
    mdl = models(y, np.stack(stacked), k)

    single_rows, single_null, pop_null, verdicts, pops, agree = [], [], [], [], {}, []
    for name, (b, c) in observed.items():
        design = designs[name]
        mine = pairs[pairs["setting"] == name]
        per_pair = []
        for (d_seed, c_seed), bi, ci in zip(zip(mine["dense_seed"], mine["compressed_seed"]), b, c):
            res = single_model_cie(y, mdl.preds[bi], mdl.preds[ci], n_classes=k, boundary=boundary)
            per_pair.append(res)
            single_rows.append({"setting": name, "design": design, "seed": int(d_seed),
                                "compressed_seed": int(c_seed), **single_row(res)})
        if len(b) == 0:
            continue
        obs, null, draws = single_matched(mdl, b, c, design=design, n_dense=len(dense_seeds),
                                          n_null=n_null, rng=_rng(rng_seed, name, "single"),
                                          boundary=boundary, independent_null=independent_null)
        kind = draws.kind if draws is not None else "none"
        single_null.append(pd.DataFrame({"setting": name, "null": kind,
                                         "draw": np.arange(len(null["classes"])), **null}))
        for stat in SINGLE_STATISTICS:
            verdicts.append(_verdict(name, "single", stat, design, kind, len(b), obs[stat],
                                     null[stat], draws is not None and draws.exact))
        if len(b) < 2:
            continue
        pop = population_cie(y, mdl.preds[b], mdl.preds[c], alpha=alpha, correction=correction,
                             normalize=normalize, test=POPULATION_TEST[design], n_classes=k)
        pops[name] = pop
        obs, null, draws = population_matched(mdl, b, c, design=design, n_dense=len(dense_seeds),
                                              n_null=n_null, rng=_rng(rng_seed, name, "population"),
                                              alpha=alpha, normalize=normalize,
                                              independent_null=independent_null)
        pop_null.append(pd.DataFrame({"setting": name, "null": draws.kind,
                                      "draw": np.arange(len(null["classes"])), **null}))
        for stat in POPULATION_STATISTICS:
            verdicts.append(_verdict(name, "population", stat, design, draws.kind, len(b),
                                     obs[stat], null[stat], draws.exact))
        agree.append(_agreement_row(name, per_pair, pop))

    population = population_summary(pops) if pops else population_summary({})
    if len(population):
        population.insert(0, "design", [designs[n] for n in population.index])
    return CIEAnalysis(
        single=pd.DataFrame(single_rows, columns=["setting", "design", "seed", "compressed_seed",
                                                  *_SINGLE_COUNTS]),
        single_null=_concat(single_null, ["setting", "null", "draw", *SINGLE_STATISTICS]),
        population=population,
        population_null=_concat(pop_null, ["setting", "null", "draw", *POPULATION_STATISTICS]),
        verdicts=pd.DataFrame(verdicts, columns=VERDICT_COLUMNS),
        agreement=pd.DataFrame(agree, columns=["setting", *AGREEMENT_COLUMNS]).set_index("setting"),
        pairs=pairs,
        pops=pops,
        options={"alpha": alpha, "correction": correction_name(correction), "normalize": normalize,
                 "boundary": boundary, "n_null": n_null, "rng_seed": rng_seed, "n_classes": k,
                 "independent_null": independent_null},
    )


_SINGLE_COUNTS = ["boundary_mode", "impacted_classes", "classes", "impacted_images",
                  "boundary_before", "boundary_after", "top1_before", "top1_after"]
AGREEMENT_COLUMNS = [
    "n_seeds", "mean_n_single", "n_population", "mean_n_both", "n_single_total", "n_both_total",
    "n_population_total", "mean_precision", "mean_recall", "mean_f1", "low_power",
]


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _verdict(setting, schema, stat, design, kind, n, observed, null, exact) -> dict:
    return {"setting": setting, "schema": SCHEMAS[schema], "statistic": stat, "design": design,
            "null": kind, "n_base": n, "n_comp": n, "observed": observed, **_placed(observed, null),
            "exact": bool(exact)}


def _placed(observed, null) -> dict:
    out = place(observed, null)
    return {key: out[key] for key in ("null_median", "null_low", "null_high", "p", "percentile",
                                      "n_null")}


def _agreement_row(name: str, per_pair: list, pop: PopulationCIE) -> dict:
    rows = [agreement(r.impacted_classes, pop.impacted_classes) for r in per_pair]
    n_pop = len(pop.impacted_classes)
    return {
        "setting": name, "n_seeds": len(rows),
        "mean_n_single": float(np.mean([a["n_single"] for a in rows])),
        "n_population": n_pop, "mean_n_both": float(np.mean([a["n_both"] for a in rows])),
        "n_single_total": int(sum(a["n_single"] for a in rows)),
        "n_both_total": int(sum(a["n_both"] for a in rows)),
        "n_population_total": n_pop * len(rows),
        "mean_precision": nanmean([a["precision"] for a in rows]),
        "mean_recall": nanmean([a["recall"] for a in rows]),
        "mean_f1": nanmean([a["f1"] for a in rows]),
        "low_power": pop.low_power,
    }


VERDICT_TABLE_COLUMNS = ["setting", "schema", "statistic", "observed", "null_range", "p",
                         "percentile", "null_kind"]


def _count(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def verdict_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts as a reader needs them: at most 8 columns, one row per count.

    ``null_range`` is "median [2.5th-97.5th percentile]" of the null draws;
    ``null_kind`` names the null, the models per side and the number of draws (and
    "exact" when every distinct draw was used), so every row says which null it used.

    Args:
        verdicts: :attr:`CIEAnalysis.verdicts`.
    """
    missing = set(VERDICT_COLUMNS) - set(verdicts.columns)
    if missing:
        raise ValueError(f"verdicts lacks column(s) {sorted(missing)}")
    rows = []
    for r in verdicts.to_dict("records"):
        has_null = r["n_null"] > 0
        rows.append({
            "setting": r["setting"], "schema": r["schema"], "statistic": r["statistic"],
            "observed": r["observed"],
            "null_range": (f"{_count(r['null_median'])} [{_count(r['null_low'])}–"
                           f"{_count(r['null_high'])}]") if has_null else "no null",
            "p": r["p"], "percentile": r["percentile"],
            "null_kind": (f"{r['null']}, {r['n_base']} vs {r['n_comp']}, {r['n_null']:,} draws"
                          + (" (exact)" if r["exact"] else "")) if has_null else r["null"],
        })
    return pd.DataFrame(rows, columns=VERDICT_TABLE_COLUMNS)
