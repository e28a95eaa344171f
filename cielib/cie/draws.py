"""Both schemas' counts for many draws at once: the engine behind the matched nulls.

A *draw* names which models stand on each side of one comparison, as row indices into
one stacked array of models (dense and compressed together). Per-model quantities
(class recalls, top-1, the single-model boundary) are computed once; each draw then
costs a gather and a few reductions, so thousands of draws take seconds. The per-class
tests are :func:`cielib.cie.population.welch_t` and
:func:`cielib.cie.population.paired_t` themselves, so a draw equal to the observed
comparison gives exactly the counts of :func:`cielib.cie.population_cie` and
:func:`cielib.cie.single_model_cie` (``tests/test_cie_null.py`` checks this).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cielib.cie._checks import class_counts, recall_matrix
from cielib.cie.population import paired_t, welch_t

#: The statistics each schema reports per comparison, in display order.
POPULATION_STATISTICS = ("classes", "classes, BH", "CIE images")
SINGLE_STATISTICS = ("classes", "images")
_CHUNK = 64  # draws per vectorized block: bounds memory at (chunk, models, classes)
_CELLS = 2 ** 24  # at most this many label counts (draws x images x classes) at once


@dataclass(frozen=True, eq=False)
class Models:
    """Per-model quantities every draw reuses.

    Attributes:
        y: labels (n_images,).
        preds: predictions (n_models, n_images).
        recall: class recalls (n_models, k); NaN for classes without images.
        top1: top-1 per model (n_models,).
        n_c: images per class (k,).
        k: number of classes.
    """

    y: np.ndarray
    preds: np.ndarray
    recall: np.ndarray
    top1: np.ndarray
    n_c: np.ndarray
    k: int

    @property
    def has(self) -> np.ndarray:
        return self.n_c > 0


def models(y: np.ndarray, preds: np.ndarray, k: int) -> Models:
    """Stack once: recalls and top-1 of every model (checked inputs)."""
    recall, top1 = recall_matrix(y, preds, k)
    return Models(y=y, preds=preds, recall=recall, top1=top1, n_c=class_counts(y, k), k=k)


def onehot(preds: np.ndarray, k: int) -> np.ndarray:
    """float32 one-hot predictions (n_models, n_images * k): row i of ``S @ onehot`` is
    the per-image label counts of the models row i of S selects (exact: counts < 2**24).
    Images on which every model agrees are left out by the caller: they can never
    change their modal label."""
    m, n = preds.shape
    out = np.zeros((m, n * k), dtype=np.float32)
    out[np.arange(m)[:, None], np.arange(n)[None, :] * k + preds] = 1.0
    return out


def _modal_many(hot: np.ndarray, sides: np.ndarray, k: int) -> np.ndarray:
    """Modal label per image for each draw (ties to the highest class id, as
    :func:`cielib.cie.modal_labels`): sides (d, m) model indices -> (d, n_images)."""
    d = sides.shape[0]
    select = np.zeros((d, hot.shape[0]), dtype=np.float32)
    np.add.at(select, (np.repeat(np.arange(d), sides.shape[1]), sides.ravel()), 1.0)
    counts = (select @ hot).reshape(d, -1, k)
    counts += np.arange(k, dtype=np.float32) / (k + 1)  # a tie goes to the highest class id
    return np.argmax(counts, axis=2)


def _bh_count(p: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini-Hochberg rejections per row of p (rows: draws; no NaN): the largest r
    with p_(r) * m / r < alpha, the same rule as :func:`cielib.cie.benjamini_hochberg`
    followed by ``adjusted < alpha``."""
    m = p.shape[1]
    below = np.sort(p, axis=1) * m / np.arange(1, m + 1) < alpha
    last = m - np.argmax(below[:, ::-1], axis=1)
    return np.where(below.any(axis=1), last, 0)


def population_counts(mdl: Models, side_base: np.ndarray, side_comp: np.ndarray, *, alpha: float,
                      normalize: str, test: str) -> dict[str, np.ndarray]:
    """The population schema's counts for each draw.

    Args:
        mdl: :func:`models` of the stacked models.
        side_base, side_comp: model indices (n_draws, n_per_side); under
            ``test="paired"`` column i of the two is a pair.
        alpha: significance level.
        normalize: "population" or "model" (as :func:`cielib.cie.population_cie`).
        test: "welch" or "paired".

    Returns:
        {statistic: counts (n_draws,)} for :data:`POPULATION_STATISTICS`:
        classes flagged uncorrected, flagged after Benjamini-Hochberg, CIE images.
    """
    side_base = np.atleast_2d(side_base)
    side_comp = np.atleast_2d(side_comp)
    has = mdl.has
    rec = mdl.recall[:, has]
    out = {s: np.empty(side_base.shape[0], dtype=float) for s in POPULATION_STATISTICS}
    varying = (mdl.preds != mdl.preds[:1]).any(axis=0)
    hot = onehot(mdl.preds[:, varying], mdl.k)
    chunk = max(1, min(_CHUNK, _CELLS // max(hot.shape[1], 1)))
    for lo in range(0, side_base.shape[0], chunk):
        a, b = side_base[lo:lo + chunk], side_comp[lo:lo + chunk]
        ra, rb = rec[a], rec[b]  # (d, n, k)
        if normalize == "population":
            na = ra - mdl.top1[a].mean(axis=1)[:, None, None]
            nb = rb - mdl.top1[b].mean(axis=1)[:, None, None]
        else:
            na = ra - mdl.top1[a][:, :, None]
            nb = rb - mdl.top1[b][:, :, None]
        if test == "paired":
            _, p = paired_t(nb, na, rb - ra)
        else:
            _, p = welch_t(nb, na)
        p = np.asarray(p, dtype=float).reshape(len(a), -1)
        out["classes"][lo:lo + len(a)] = (p < alpha).sum(axis=1)
        out["classes, BH"][lo:lo + len(a)] = _bh_count(p, alpha)
        modal_a = _modal_many(hot, a, mdl.k)
        modal_b = _modal_many(hot, b, mdl.k)
        out["CIE images"][lo:lo + len(a)] = (modal_a != modal_b).sum(axis=1)
    return out


def single_counts(mdl: Models, before: np.ndarray, after: np.ndarray, *,
                  boundary: str) -> dict[str, np.ndarray]:
    """The paper's single-model schema, averaged over the pairs of each draw.

    Args:
        mdl: :func:`models` of the stacked models.
        before, after: model indices (n_draws, n_pairs): pair j of a draw compares
            ``before[:, j]`` (the "uncompressed" model) with ``after[:, j]``.
        boundary: "uncompressed" or "own" (as :func:`cielib.cie.single_model_cie`).

    Returns:
        {"classes": mean impacted classes per pair, "images": mean impacted images
        per pair}, each (n_draws,).
    """
    before = np.atleast_2d(before)
    after = np.atleast_2d(after)
    has = mdl.has
    std = np.array([float(np.std(r[has], ddof=0)) for r in mdl.recall])  # as single_core
    dev = mdl.recall - mdl.top1[:, None]
    n_c = mdl.n_c[has]
    out = {s: np.empty(before.shape[0], dtype=float) for s in SINGLE_STATISTICS}
    for lo in range(0, before.shape[0], _CHUNK):
        a, b = before[lo:lo + _CHUNK], after[lo:lo + _CHUNK]
        b_before = std[a][..., None]
        b_after = b_before if boundary == "uncompressed" else std[b][..., None]
        da, db = dev[a], dev[b]
        with np.errstate(invalid="ignore"):
            flips = ((np.abs(da) > b_before) ^ (np.abs(db) > b_after)) & has
        out["classes"][lo:lo + len(a)] = flips.sum(axis=2).mean(axis=1)
        images = np.sum(np.abs(db[..., has] - da[..., has]) * n_c, axis=2)
        out["images"][lo:lo + len(a)] = images.mean(axis=1)
    return out
