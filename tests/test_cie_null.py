"""cielib.cie's matched nulls: the draw engine equals the schemas, the samplers draw the
design they name, and the schemas are calibrated on planted populations.

No TensorFlow; planted data only; every test can fail.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import stats

from cielib import runsets
from cielib.cie import analyse, pair_models, population_cie, single_model_cie
from cielib.cie.draws import models, population_counts, single_counts
from cielib.cie.matched import POPULATION_NULLS, SINGLE_NULLS, place, population_matched

# --------------------------------------------------------------------------------------
# planted populations
# --------------------------------------------------------------------------------------


def task(seed=0, k=10, per=50):
    """Labels, per-image ease (logit of being right) and the label a wrong model says."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), per)
    ease = rng.normal(2.0, 1.5, y.size)
    confuse = (y + rng.integers(1, k, y.size)) % k
    return y, ease, confuse


def population(rng, y, ease, confuse, m, *, shift=None, model_sd=0.3, effects=None):
    """m models: P(right on image i) = sigmoid(model effect + ease_i), minus ``shift``
    = (class, logit drop) on one class. ``effects`` fixes the model effects (pairs)."""
    a = rng.normal(0, model_sd, size=(m, 1)) if effects is None else effects
    logit = a + ease[None, :]
    if shift is not None:
        logit = logit - shift[1] * (y == shift[0])[None, :]
    right = rng.random((m, y.size)) < 1 / (1 + np.exp(-logit))
    return np.where(right, y[None, :], confuse[None, :])


def binomial_population(rng, y, p, m):
    """m models whose class-c recall is Binomial(n_c, p[c]) / n_c, independently."""
    k = p.size
    out = np.where(rng.random((m, y.size)) < p[y][None, :], y[None, :], (y + 1) % k)
    return out


def binom_interval(n, p, level=0.95):
    lo, hi = stats.binom.interval(level, n, p)
    return lo, hi


# --------------------------------------------------------------------------------------
# the engine is the schemas
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", ["population", "model"])
@pytest.mark.parametrize("test", ["welch", "paired"])
def test_population_counts_equal_population_cie(normalize, test):
    rng = np.random.default_rng(3)
    y, ease, confuse = task(1)
    for rep in range(6):
        a = population(rng, y, ease, confuse, 5)
        b = population(rng, y, ease, confuse, 5, shift=(rep % 10, 1.0))
        mdl = models(y, np.concatenate([a, b]), 10)
        got = population_counts(mdl, np.arange(5)[None], np.arange(5, 10)[None], alpha=0.05,
                                normalize=normalize, test=test)
        for corr, stat in ((None, "classes"), ("fdr_bh", "classes, BH")):
            ref = population_cie(y, a, b, normalize=normalize, test=test, correction=corr)
            assert got[stat][0] == len(ref.impacted_classes)
        assert got["CIE images"][0] == ref.cie_images.size


@pytest.mark.parametrize("boundary", ["uncompressed", "own"])
def test_single_counts_equal_single_model_cie(boundary):
    rng = np.random.default_rng(4)
    y, ease, confuse = task(2)
    preds = population(rng, y, ease, confuse, 8)
    mdl = models(y, preds, 10)
    before, after = np.array([[0, 2, 4, 6]]), np.array([[1, 3, 5, 7]])
    got = single_counts(mdl, before, after, boundary=boundary)
    ref = [single_model_cie(y, preds[i], preds[j], boundary=boundary, n_classes=10)
           for i, j in zip(before[0], after[0])]
    assert got["classes"][0] == pytest.approx(np.mean([len(r.impacted_classes) for r in ref]))
    assert got["images"][0] == pytest.approx(np.mean([r.impacted_images for r in ref]))


# --------------------------------------------------------------------------------------
# the samplers draw the design they name
# --------------------------------------------------------------------------------------


def test_independent_with_enough_dense_models_splits_the_dense_models():
    obs_b, obs_c = np.arange(3), np.arange(10, 13)
    d = POPULATION_NULLS["dense splits"](obs_b, obs_c, 8, 50, np.random.default_rng(0))
    assert d.kind == "dense splits" and d.base.shape == (50, 3) and d.comp.shape == (50, 3)
    assert (np.concatenate([d.base, d.comp], axis=1) < 8).all()  # dense models only
    assert all(len(set(a) | set(b)) == 6 for a, b in zip(d.base, d.comp))  # disjoint


def test_independent_default_is_the_exact_permutation_test():
    obs_b, obs_c = np.arange(3), np.arange(3, 6)
    d = POPULATION_NULLS["permutation"](obs_b, obs_c, 30, 1000, np.random.default_rng(0))
    assert d.kind == "permutation" and d.exact
    assert len(d.base) == math.comb(6, 3) - 1  # every relabelling but the observed
    seen = {tuple(sorted(a)) for a in d.base}
    assert len(seen) == len(d.base) and (0, 1, 2) not in seen
    few = POPULATION_NULLS["permutation"](obs_b, obs_c, 3, 5, np.random.default_rng(0))
    assert not few.exact and len(few.base) == 5
    fallback = POPULATION_NULLS["dense splits"](obs_b, obs_c, 5, 1000, np.random.default_rng(0))
    assert fallback.kind == "permutation"  # fewer than 2n dense models


def test_paired_null_flips_within_pairs():
    obs_b, obs_c = np.arange(4), np.arange(10, 14)
    d = POPULATION_NULLS["sign flips"](obs_b, obs_c, 4, 1000, np.random.default_rng(0))
    assert d.kind == "sign flips" and d.exact and len(d.base) == 2 ** 4 - 1
    for a, b in zip(d.base, d.comp):  # column i holds pair i, either way round
        assert all({x, z} == {i, 10 + i} for i, (x, z) in enumerate(zip(a, b)))


def test_paired_single_null_reseeds_every_pair():
    obs_b, obs_c = np.arange(5), np.arange(10, 15)
    d = SINGLE_NULLS["sign flips"](obs_b, obs_c, 5, 200, np.random.default_rng(0))
    assert (d.base == obs_b).all() and (d.comp != d.base).all() and (d.comp < 5).all()
    assert set(np.unique(d.comp)) == set(range(5))


def test_place_by_hand():
    out = place(3, [1, 2, 3, 4])  # draws >= 3: two of four
    assert out["p"] == pytest.approx(3 / 5)
    assert out["percentile"] == pytest.approx(100 * (2 / 4 + 0.5 / 4))
    assert out["null_median"] == 2.5 and out["n_null"] == 4
    assert place(9, [1, 2])["p"] == pytest.approx(1 / 3)
    assert math.isnan(place(1, [])["p"])


# --------------------------------------------------------------------------------------
# analyse(): the API
# --------------------------------------------------------------------------------------


def small_grid(seed=0, n_dense=3, n_comp=3, shift=None):
    rng = np.random.default_rng(seed)
    y, ease, confuse = task(seed)
    base = dict(enumerate(population(rng, y, ease, confuse, n_dense)))
    pruned = dict(zip(range(1000, 1000 + n_comp),
                      population(rng, y, ease, confuse, n_comp, shift=shift)))
    quant = {s: np.where(rng.random(y.size) < 0.02, confuse, p) for s, p in base.items()}
    return y, base, {"sparsity 0.9": pruned, "dynamic_int8": quant}, {
        "sparsity 0.9": "independent", "dynamic_int8": "paired"}


def test_analyse_pairs_as_results_does():
    y, base, settings, designs = small_grid()
    ours = pair_models(sorted(base), settings, designs)
    _, theirs = runsets.pair_with_dense(base, settings, designs)
    assert ours.equals(theirs)


def test_analyse_quick_sized_grid_uses_exact_permutations():
    y, base, settings, designs = small_grid()
    a = analyse(y, base, settings, designs, n_null=200)
    v = a.verdicts.set_index(["setting", "schema", "statistic"])
    pruned = v.loc[("sparsity 0.9", "population", "CIE images")]
    assert pruned["null"] == "permutation" and pruned["exact"] and pruned["n_null"] == 19
    assert pruned["p"] >= 1 / 20
    quant = v.loc[("dynamic_int8", "population", "classes")]
    assert quant["null"] == "sign flips" and quant["n_null"] == 7
    assert v.loc[("dynamic_int8", "single-model", "images"), "null"] == "reseeded dense"
    assert v.loc[("sparsity 0.9", "single-model", "images"), "null"] == "permutation pairs"
    assert set(a.pops) == {"sparsity 0.9", "dynamic_int8"}
    assert a.pops["dynamic_int8"].test == "paired" and a.pops["sparsity 0.9"].test == "welch"
    assert len(a.single) == 6 and set(a.single["compressed_seed"]) >= {1000, 1001, 1002}
    # observed counts are the schemas' own
    assert pruned["observed"] == a.pops["sparsity 0.9"].cie_images.size
    mean_images = a.single[a.single["setting"] == "sparsity 0.9"]["impacted_images"].mean()
    assert v.loc[("sparsity 0.9", "single-model", "images"), "observed"] == pytest.approx(mean_images)


def test_analyse_is_reproducible_and_a_setting_keeps_its_null():
    y, base, settings, designs = small_grid(n_dense=8, n_comp=4)
    one = analyse(y, base, settings, designs, n_null=50, rng_seed=7)
    two = analyse(y, base, {"sparsity 0.9": settings["sparsity 0.9"]}, designs, n_null=50, rng_seed=7)
    mine = one.population_null[one.population_null["setting"] == "sparsity 0.9"].reset_index(drop=True)
    assert mine.equals(two.population_null)
    assert one.verdicts.equals(analyse(y, base, settings, designs, n_null=50, rng_seed=7).verdicts)


@pytest.mark.parametrize("kwargs, message", [
    ({"designs": {"sparsity 0.9": "independent"}}, "designs\\['dynamic_int8'\\]"),
    ({"n_null": 0}, "n_null"),
    ({"alpha": 1.5}, "alpha"),
    ({"boundary": "wide"}, "boundary"),
    ({"independent_null": "bootstrap"}, "independent_null"),
])
def test_analyse_rejects_bad_input(kwargs, message):
    y, base, settings, designs = small_grid()
    args = {"designs": designs, **kwargs}
    with pytest.raises(ValueError, match=message):
        analyse(y, base, settings, args.pop("designs"), **args)


def test_analyse_finds_a_planted_shift_beyond_its_null():
    y, base, settings, designs = small_grid(seed=5, n_dense=16, n_comp=8, shift=(3, 3.0))
    for null in ("permutation", "dense splits"):
        a = analyse(y, base, settings, designs, n_null=200, independent_null=null)
        v = a.verdicts.set_index(["setting", "schema", "statistic"])
        assert v.loc[("sparsity 0.9", "population", "classes"), "p"] < 0.05
        assert v.loc[("sparsity 0.9", "population", "classes"), "null"] == null
    assert 3 in a.pops["sparsity 0.9"].impacted_classes


# --------------------------------------------------------------------------------------
# calibration on planted populations
# --------------------------------------------------------------------------------------

ALPHA, K, DRAWS = 0.05, 10, 200


def _false_flags(normalize, model_sd, test="welch"):
    rng = np.random.default_rng(11)
    y, ease, confuse = task(3)
    flags = 0
    for _ in range(DRAWS):
        if test == "paired":  # pairs share a model effect; within a pair, exchangeable
            eff = rng.normal(0, model_sd, size=(10, 1))
            a = population(rng, y, ease, confuse, 10, effects=eff)
            b = population(rng, y, ease, confuse, 10, effects=eff)
        else:
            a = population(rng, y, ease, confuse, 10, model_sd=model_sd)
            b = population(rng, y, ease, confuse, 10, model_sd=model_sd)
        flags += len(population_cie(y, a, b, alpha=ALPHA, normalize=normalize,
                                    test=test).impacted_classes)
    return flags


@pytest.mark.parametrize("test", ["welch", "paired"])
def test_false_flag_rate_is_nominal_with_per_model_normalization(test):
    """No effect, 10 vs 10 models, 10 classes, 200 draws: the flags must lie in the
    binomial 95% interval of alpha x classes x draws (100 expected)."""
    lo, hi = binom_interval(DRAWS * K, ALPHA)
    assert lo <= _false_flags("model", 0.3, test) <= hi


def test_hookers_normalization_is_conservative_when_models_differ_in_accuracy():
    """Hooker et al.'s code subtracts one constant per population (its mean top-1), so
    model-to-model variation in overall accuracy stays in each class's variance while
    the difference of means cancels it: the test flags FEWER classes than alpha says.
    With identical accuracy the rate is nominal (up to the 1/k coupling through top-1)."""
    lo, hi = binom_interval(DRAWS * K, ALPHA)
    assert _false_flags("population", 0.3) < lo
    assert _false_flags("population", 0.0) >= lo * 0.8


@functools.lru_cache(maxsize=None)
def _count_pvalues(design, null="permutation", reps=80):
    """p-values of one count over ``reps`` planted grids with no effect: 8 dense models,
    4 compressed (independent), or 6 pairs sharing a model effect (paired)."""
    rng = np.random.default_rng(21)
    y, ease, confuse = task(4, per=40)
    out = []
    for r in range(reps):
        if design == "paired":
            eff = rng.normal(0, 0.3, size=(6, 1))
            dense = population(rng, y, ease, confuse, 6, effects=eff)
            comp = population(rng, y, ease, confuse, 6, effects=eff)
            obs_b = np.arange(6)
        else:
            dense = population(rng, y, ease, confuse, 8)
            comp = population(rng, y, ease, confuse, 4)
            obs_b = np.arange(4)
        mdl = models(y, np.concatenate([dense, comp]), 10)
        obs_c = np.arange(len(dense), len(dense) + len(comp))
        obs, draws, _ = population_matched(mdl, obs_b, obs_c, design=design, n_dense=len(dense),
                                           n_null=69, rng=rng, alpha=ALPHA,
                                           normalize="population", independent_null=null)
        out.append([place(obs[s], draws[s])["p"] for s in ("classes", "CIE images")])
    return dict(zip(("classes", "CIE images"), np.array(out).T))


@pytest.mark.parametrize("design", ["independent", "paired"])
def test_count_pvalues_are_valid_and_roughly_uniform_without_an_effect(design):
    """No effect: the share of p-values <= q must not exceed q by more than 0.12 (80
    draws: ~2.7 standard errors at q = 0.25), and must not fall far below it for the
    CIE-image count (it takes many values); the class count is discrete (mostly 0 or
    1 flags), so its p-values may only be conservative."""
    p = _count_pvalues(design)["CIE images"]
    for q in (0.1, 0.25, 0.5, 0.75):
        assert np.mean(p <= q) <= q + 0.12, (q, np.mean(p <= q))
        assert np.mean(p <= q) >= q - 0.2, (q, np.mean(p <= q))
    pc = _count_pvalues(design)["classes"]
    for q in (0.1, 0.25, 0.5):
        assert np.mean(pc <= q) <= q + 0.12, (q, np.mean(pc <= q))


def test_dense_splits_are_too_liberal_with_few_dense_models():
    """Why the permutation null is the default: splitting the same 8 dense models over
    and over gives a null narrower than the observed count's own spread, so with no
    effect more than 10% of the CIE-image p-values fall at or below 0.1."""
    p = _count_pvalues("independent", null="dense splits")["CIE images"]
    assert np.mean(p <= 0.1) > 0.1


def test_planted_class_is_found_with_the_power_computed_in_advance():
    """Binomial class recalls, 10 vs 10 models, 100 images per class, p = 0.8 in every
    class; the compressed models lose delta = 0.06 on class 3. Per-model normalization
    (recall minus the model's top-1) gives a shift of delta (1 - 1/k) with variance
    s_c^2 (1 - 1/k)^2 + sum_{j != c} s_j^2 / k^2 per model; Welch's test then finds the
    class with the noncentral-t power computed here (0.82), and the share of 300
    draws that flag it must lie in the binomial 99% interval of that power."""
    k, per, m, p0, delta = 10, 100, 10, 0.8, 0.06
    y = np.repeat(np.arange(k), per)
    p_base = np.full(k, p0)
    p_comp = p_base.copy()
    p_comp[3] -= delta

    def var_norm(p):
        s2 = p * (1 - p) / per
        return s2[3] * (1 - 1 / k) ** 2 + (s2.sum() - s2[3]) / k ** 2

    vb, vc = var_norm(p_base) / m, var_norm(p_comp) / m
    df = (vb + vc) ** 2 / (vb ** 2 / (m - 1) + vc ** 2 / (m - 1))
    nc = delta * (1 - 1 / k) / math.sqrt(vb + vc)
    crit = stats.t.ppf(1 - ALPHA / 2, df)
    power = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    assert power == pytest.approx(0.821, abs=0.001)  # stated in advance

    rng = np.random.default_rng(5)
    reps = 300
    found = sum(3 in population_cie(y, binomial_population(rng, y, p_base, m),
                                    binomial_population(rng, y, p_comp, m),
                                    normalize="model").impacted_classes for _ in range(reps))
    lo, hi = binom_interval(reps, power, 0.99)
    assert lo <= found <= hi, (found, reps * power)
