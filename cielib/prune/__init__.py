"""Magnitude pruning with tensorflow-model-optimization (tfmot), made hard to get wrong.

The paper prunes by weight magnitude to 30/50/70/90% sparsity with tfmot. tfmot does
the masking, but its schedule is easy to misconfigure *silently*: a run can finish
with far fewer zeros than asked for and nothing complains. This module derives the
schedule from the number of training steps, refuses one that cannot reach its
target, and measures the sparsity that was actually reached.

How tfmot counts steps (checked against tensorflow-model-optimization 0.8.1):

* Each wrapper keeps its own ``pruning_step``. ``UpdatePruningStep`` sets it to 0 at
  the start of training and every training batch increments it *before* the mask
  update, so the k-th training batch (counted from 1, across epochs and ``fit``
  calls) runs as step k. Step 0 is never a training step. Validation, ``evaluate``
  and ``predict`` do not advance it.
* A mask update happens at steps ``s`` with ``begin_step <= s <= end_step`` and
  ``(s - begin_step) % frequency == 0``. With ``begin_step=0`` (the default) the
  first update is therefore at step ``frequency``: a frequency larger than the
  number of training steps leaves every weight in place and sparsity at 0. With
  ``begin_step >= 1`` the first update is at ``begin_step`` itself.
* ``PolynomialDecay`` only applies its final sparsity at ``end_step``; if
  ``end_step`` is not ``begin_step + k * frequency`` the last update happens
  earlier, at a lower sparsity (e.g. end 8, frequency 3: updates at 3 and 6 only).
* Masked weights still receive gradient updates; they are re-masked at the next
  forward pass and at every epoch end, so weights saved after ``fit`` are sparse.

Two ways to choose the layers (``prune_model(..., layers=...)``):

* ``"all"``: tfmot's whole-model pruning; every Conv/Dense kernel is masked
  (BatchNorm, biases and depthwise kernels are not pruned). For the paper's
  frozen-base transfer models this also masks the frozen convolution kernels,
  which are never retrained to compensate: the closest match to "prune the whole
  network", but much harsher on a frozen base.
* ``"trainable"``: only layers whose prunable weights are trainable (e.g. the new
  dense head of a frozen-base model); the frozen kernels stay dense. Measure such a
  model with ``layers="trainable"`` too.

Wrapped (unstripped) models only load inside
``tfmot.sparsity.keras.prune_scope()``; :func:`strip` before saving.

Why a pruned model is slower to train, not faster (see
``benchmarks/bench_pruning.py``): the masks are dense tensors multiplied into the
weights on every step, the mask update sorts each kernel's magnitudes (``top_k``
over all weights) on update steps, and there are no sparse kernels, so zeros cost
as much compute as any other value. Pruning pays off in size only once the file is
compressed (:func:`save_model` reports both sizes).

The package has three parts: :mod:`cielib.prune.schedule` (plans: arithmetic on steps,
no TensorFlow), :mod:`cielib.prune.wrap` (tfmot's wrappers on and off) and
:mod:`cielib.prune.measure` (the sparsity actually reached, sizes on disk), with tfmot's
internals they share in :mod:`cielib.prune._tfmot`. Imports run one way: ``schedule``
imports only tfmot (lazily), ``wrap`` imports the schedule, ``measure`` the wrapper.
Importing the package does not import TensorFlow.
"""

from __future__ import annotations

from cielib.prune.measure import (
    OVERALL,
    SparsityError,
    check_sparsity,
    measured_sparsity,
    save_model,
    sparsity_report,
)
from cielib.prune.schedule import (
    DEFAULT_RAMP_UPDATES,
    LAYERS,
    POLYNOMIAL_POWER,
    SCHEDULES,
    PruningPlan,
    plan_schedule,
)
from cielib.prune.wrap import callbacks, prune_model, strip

__all__ = [
    "LAYERS",
    "SCHEDULES",
    "PruningPlan",
    "SparsityError",
    "callbacks",
    "check_sparsity",
    "measured_sparsity",
    "plan_schedule",
    "prune_model",
    "save_model",
    "sparsity_report",
    "strip",
]
