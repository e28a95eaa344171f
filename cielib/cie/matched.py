"""Nulls with the observed design: which draws each design compares, and the p-values.

Every observed count (classes flagged, CIE or impacted images; both schemas) is set
against the same count where nothing was compressed, drawn with the observed design and
population sizes. The samplers are registries keyed by design, so a new design is a new
entry, not a new branch (keyed by null; :func:`null_for` names a design's):

Population schema (:data:`POPULATION_NULLS`):

* ``independent`` (compressed models trained with their own seeds): observed = the
  first n dense models against the n compressed ones (Welch's test, as Hooker et al.).
  Default null ("permutation"): the observed 2n models pooled and relabelled n vs n
  (every relabelling when there are few: an exact test; else a sample). Exact by
  exchangeability: when compression changes nothing, every relabelling is as likely
  as the observed one. The alternative ("dense splits", option
  ``independent_null``): two disjoint groups of n dense models, when there are at
  least 2n (else the permutation). It keeps compressed models out of the null, but
  every split reuses the same few dense models, so the null is narrower than the
  observed count's own spread: on planted populations with no effect (8 dense, 4 vs
  4) it gives too many small p-values (``tests/test_cie_null.py``).
* ``paired`` (compressed model i derives from dense model i: quantization, fine-tuning
  from a baseline): a paired t-test on the within-pair differences of normalized
  recall; the null swaps which model of each pair is called compressed ("sign flips",
  every pattern when there are few, else a sample). Hooker et al. used Welch's unpaired
  test, which treats the pairs as independent and keeps the seed-to-seed variation the
  pairing removes.

Single-model schema (:data:`SINGLE_NULLS`), statistic = the mean over the setting's
pairs:

* ``independent``: the same number of ordered (before, after) pairs drawn from the
  pooled observed models ("permutation pairs"), or of disjoint dense models ("dense
  pairs", with ``independent_null="dense splits"`` and enough dense models).
* ``paired``: swapping a pair's two models cannot serve: the impacted-image count is
  symmetric in them (|deviation after - deviation before|), so every swap gives the
  observed count back. The reference instead replaces each compressed model by another
  dense model ("reseeded dense"): is the compression's change beyond what retraining
  with another seed does? A large p-value then says "no larger than reseeding", not
  "harmless".

p-values are one-sided (more flags or images than chance): (1 + draws at least as
large) / (1 + draws); the null percentile counts ties as half.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from cielib.cie.draws import Models, population_counts, single_counts


@dataclass(frozen=True)
class Draws:
    """Which models each draw compares, and how the draws were made.

    Attributes:
        kind: the null's name ("dense splits", "permutation", "sign flips", ...).
        base, comp: model indices (n_draws, n_per_side) (single schema: before, after).
        exact: True when every distinct draw was enumerated (an exact test).
    """

    kind: str
    base: np.ndarray
    comp: np.ndarray
    exact: bool


def _perm_rows(rng: np.random.Generator, n_draws: int, n: int) -> np.ndarray:
    """n_draws independent random permutations of range(n), one per row."""
    return np.argsort(rng.random((n_draws, n)), axis=1)


def _permutation_population(obs_base, obs_comp, n_dense, n_null, rng) -> Draws:
    n = len(obs_comp)
    pool = np.concatenate([obs_base, obs_comp])
    total = math.comb(2 * n, n)
    if total - 1 <= n_null:  # every relabelling but the observed one
        a = [c for c in itertools.combinations(range(2 * n), n) if c != tuple(range(n))]
        a = np.array(a, dtype=np.int64).reshape(-1, n)
        b = np.array([[i for i in range(2 * n) if i not in row] for row in a], dtype=np.int64)
        return Draws("permutation", pool[a], pool[b.reshape(-1, n)], True)
    perm = _perm_rows(rng, n_null, 2 * n)
    return Draws("permutation", pool[perm[:, :n]], pool[perm[:, n:]], False)


def _dense_split_population(obs_base, obs_comp, n_dense, n_null, rng) -> Draws:
    n = len(obs_comp)
    if n_dense < 2 * n:
        return _permutation_population(obs_base, obs_comp, n_dense, n_null, rng)
    perm = _perm_rows(rng, n_null, n_dense)[:, :2 * n]
    return Draws("dense splits", perm[:, :n], perm[:, n:], False)


def _flip_patterns(n: int, n_null: int, rng) -> tuple[np.ndarray, bool]:
    if 2 ** n - 1 <= n_null:  # every pattern but the observed (no flip)
        bits = (np.arange(1, 2 ** n)[:, None] >> np.arange(n)[None, :]) & 1
        return bits.astype(bool), True
    return rng.random((n_null, n)) < 0.5, False


def _paired_population(obs_base, obs_comp, n_dense, n_null, rng) -> Draws:
    flip, exact = _flip_patterns(len(obs_base), n_null, rng)
    base = np.where(flip, obs_comp[None, :], obs_base[None, :])
    comp = np.where(flip, obs_base[None, :], obs_comp[None, :])
    return Draws("sign flips", base, comp, exact)


def _permutation_single(obs_base, obs_comp, n_dense, n_null, rng) -> Draws:
    m = len(obs_comp)
    pool = np.concatenate([obs_base, obs_comp])
    perm = pool[_perm_rows(rng, n_null, 2 * m)]
    return Draws("permutation pairs", perm[:, :m], perm[:, m:], False)


def _dense_pair_single(obs_base, obs_comp, n_dense, n_null, rng) -> Draws:
    m = len(obs_comp)
    if n_dense < 2 * m:
        return _permutation_single(obs_base, obs_comp, n_dense, n_null, rng)
    perm = _perm_rows(rng, n_null, n_dense)[:, :2 * m]
    return Draws("dense pairs", perm[:, :m], perm[:, m:], False)


def _paired_single(obs_base, obs_comp, n_dense, n_null, rng) -> Draws:
    base = np.broadcast_to(obs_base, (n_null, len(obs_base)))
    other = rng.integers(0, n_dense - 1, size=base.shape)  # any dense model but its own
    return Draws("reseeded dense", base.copy(), other + (other >= base), False)


#: null name -> sampler(obs_base, obs_comp, n_dense, n_null, rng) -> Draws. Dense models
#: are rows 0..n_dense-1 of the stacked models; obs_base/obs_comp index the observed pairs.
POPULATION_NULLS: dict[str, Callable[..., Draws]] = {
    "permutation": _permutation_population,
    "dense splits": _dense_split_population,
    "sign flips": _paired_population,
}
SINGLE_NULLS: dict[str, Callable[..., Draws]] = {
    "permutation": _permutation_single,
    "dense splits": _dense_pair_single,
    "sign flips": _paired_single,
}
#: Which null each design uses, by the ``independent_null`` option: an independent
#: setting's null is the permutation test (default) or dense splits; a paired one's
#: always flips within pairs.
INDEPENDENT_NULLS = ("permutation", "dense splits")


def null_for(design: str, independent_null: str) -> str:
    """The registry key of a design's null."""
    return "sign flips" if design == "paired" else independent_null


#: The per-class test each design uses in the population schema.
POPULATION_TEST = {"independent": "welch", "paired": "paired"}


def place(observed: float, null: np.ndarray) -> dict:
    """Where an observed count stands in its null draws.

    Returns:
        ``p`` = (1 + draws >= observed) / (1 + draws), ``percentile`` (share of draws
        below, ties counting half, in percent), ``null_median``, ``null_low`` and
        ``null_high`` (2.5th and 97.5th percentiles), ``n_null``. NaN without draws.
    """
    v = np.asarray(null, dtype=float)
    if v.size == 0:
        nan = float("nan")
        return {"p": nan, "percentile": nan, "null_median": nan, "null_low": nan,
                "null_high": nan, "n_null": 0}
    tol = 1e-9 * max(1.0, abs(observed))  # image counts are sums of floats
    ge = v >= observed - tol
    eq = np.abs(v - observed) <= tol
    return {
        "p": float((1 + ge.sum()) / (1 + v.size)),
        "percentile": float(100 * (np.mean(v < observed - tol) + 0.5 * np.mean(eq))),
        "null_median": float(np.median(v)),
        "null_low": float(np.quantile(v, 0.025)),
        "null_high": float(np.quantile(v, 0.975)),
        "n_null": int(v.size),
    }


def population_matched(mdl: Models, obs_base, obs_comp, *, design: str, n_dense: int,
                       n_null: int, rng: np.random.Generator, alpha: float, normalize: str,
                       independent_null: str = "permutation") -> tuple[dict, dict, Draws]:
    """Observed population counts and their null draws for one setting.

    Returns:
        (observed {statistic: count}, null {statistic: array}, the Draws).
    """
    test = POPULATION_TEST[design]
    opts = dict(alpha=alpha, normalize=normalize, test=test)
    obs = population_counts(mdl, obs_base[None, :], obs_comp[None, :], **opts)
    draws = POPULATION_NULLS[null_for(design, independent_null)](obs_base, obs_comp, n_dense,
                                                                 n_null, rng)
    null = population_counts(mdl, draws.base, draws.comp, **opts)
    return {s: float(v[0]) for s, v in obs.items()}, null, draws


def single_matched(mdl: Models, obs_base, obs_comp, *, design: str, n_dense: int,
                   n_null: int, rng: np.random.Generator, boundary: str,
                   independent_null: str = "permutation") -> tuple[dict, dict, Draws | None]:
    """Observed single-model means and their null draws for one setting (no null
    when there is only one dense model to draw from)."""
    obs = single_counts(mdl, obs_base[None, :], obs_comp[None, :], boundary=boundary)
    observed = {s: float(v[0]) for s, v in obs.items()}
    if design == "paired" and n_dense < 2:  # no other dense model to reseed with
        return observed, {s: np.empty(0) for s in obs}, None
    draws = SINGLE_NULLS[null_for(design, independent_null)](obs_base, obs_comp, n_dense,
                                                             n_null, rng)
    return observed, single_counts(mdl, draws.base, draws.comp, boundary=boundary), draws
