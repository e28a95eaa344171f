"""Pruning plans: a tfmot schedule derived from the training steps, checked to reach its target.

Pure arithmetic on tfmot's step counting (see :mod:`cielib.prune`); only
:meth:`PruningPlan.schedule` touches tfmot, lazily.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from cielib.checks import check_choice, check_int, is_real

#: Pruning schedules: Zhu & Gupta's cubic ramp, or the target from the first update.
SCHEDULES = ("polynomial", "constant")
#: Which layers :func:`prune_model` wraps (and the reports measure).
LAYERS = ("all", "trainable")
#: Mask updates over the ramp when ``frequency`` is not given.
DEFAULT_RAMP_UPDATES = 20
#: Exponent of the polynomial ramp (Zhu & Gupta 2017; tfmot's default).
POLYNOMIAL_POWER = 3


def _check_target(value: Any) -> float:
    if not is_real(value) or not np.isfinite(value):
        raise ValueError(f"target_sparsity must be a float in (0, 1), got {value!r}")
    if value == 0:
        raise ValueError(
            "target_sparsity 0 means no pruning: train the dense baseline without "
            "plan_schedule/prune_model (allowed: 0 < target_sparsity < 1)"
        )
    if not 0 < value < 1:
        raise ValueError(f"target_sparsity must be in (0, 1), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class PruningPlan:
    """A complete, checked tfmot schedule; ``to_dict()`` goes into ``metrics.json``.

    Steps are tfmot's ``pruning_step``: the k-th training batch is step k (from 1).
    Build plans with :func:`plan_schedule`; constructing one by hand is checked the
    same way, so an unreachable plan cannot exist.

    Attributes:
        kind: One of :data:`SCHEDULES`.
        target_sparsity: Share of zeros the last mask update applies, in (0, 1).
        initial_sparsity: Sparsity of the first update: 0 for ``polynomial`` (the
            ramp starts dense), ``target_sparsity`` for ``constant``.
        begin_step: Step the schedule starts counting from.
        end_step: Last mask update; always ``begin_step + k * frequency`` and at most
            ``total_steps - 1``.
        frequency: Steps between mask updates.
        power: Exponent of the polynomial ramp (3); 0 for ``constant``.
        total_steps: Training steps the plan was made for (steps per epoch x epochs).
    """

    kind: str
    target_sparsity: float
    initial_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    power: int
    total_steps: int

    def __post_init__(self) -> None:
        check_choice(self.kind, SCHEDULES, what="kind")
        _check_target(self.target_sparsity)
        for name, minimum in (("begin_step", 0), ("end_step", 0), ("frequency", 1),
                              ("total_steps", 2), ("power", 0)):
            check_int(name, getattr(self, name), minimum=minimum)
        if self.kind == "polynomial":
            if not (is_real(self.initial_sparsity)
                    and 0 <= self.initial_sparsity < self.target_sparsity):
                raise ValueError(
                    f"initial_sparsity must be in [0, target_sparsity={self.target_sparsity}) "
                    f"for a polynomial ramp, got {self.initial_sparsity!r}"
                )
            if self.power < 1:
                raise ValueError(f"power must be >= 1 for a polynomial ramp, got {self.power}")
            if self.end_step <= self.begin_step:
                raise ValueError(
                    f"end_step {self.end_step} must be after begin_step {self.begin_step} "
                    "for a polynomial ramp"
                )
        elif self.initial_sparsity != self.target_sparsity:
            raise ValueError(
                f"a constant schedule applies target_sparsity={self.target_sparsity} at every "
                f"update, so initial_sparsity must equal it, got {self.initial_sparsity!r}"
            )
        if self.end_step < self.begin_step or (self.end_step - self.begin_step) % self.frequency:
            raise ValueError(
                f"end_step {self.end_step} must be begin_step {self.begin_step} + k * frequency "
                f"{self.frequency}, or tfmot's last update misses it and the target"
            )
        last = self.total_steps - 1
        if self.end_step > last:
            raise ValueError(
                f"end_step {self.end_step} is beyond training: {self.total_steps} steps, so "
                f"the last mask update must be at step <= {last}"
            )
        if self.n_updates < 1:
            raise ValueError(
                f"no mask update would happen: the first is at step {self.first_update_step} "
                f"but the last allowed is end_step {self.end_step} (frequency "
                f"{self.frequency}, begin_step {self.begin_step}, {self.total_steps} steps)"
            )

    @property
    def first_update_step(self) -> int:
        """Step of the first mask update (step 0 never trains, so not ``begin_step=0``)."""
        return self.begin_step if self.begin_step >= 1 else self.frequency

    @property
    def n_updates(self) -> int:
        """Number of mask updates during training."""
        first = self.first_update_step
        if first > self.end_step:
            return 0
        return (self.end_step - first) // self.frequency + 1

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``first_update_step`` and ``n_updates``, JSON-ready."""
        out = dataclasses.asdict(self)
        out["first_update_step"] = self.first_update_step
        out["n_updates"] = self.n_updates
        return out

    def schedule(self) -> Any:
        """The tfmot ``PruningSchedule`` this plan describes."""
        from cielib.keras import tfmot  # lazy: planning is arithmetic, only this needs tfmot

        sk = tfmot.sparsity.keras
        if self.kind == "polynomial":
            return sk.PolynomialDecay(
                initial_sparsity=self.initial_sparsity,
                final_sparsity=self.target_sparsity,
                begin_step=self.begin_step,
                end_step=self.end_step,
                power=self.power,
                frequency=self.frequency,
            )
        return sk.ConstantSparsity(
            target_sparsity=self.target_sparsity,
            begin_step=self.begin_step,
            end_step=self.end_step,
            frequency=self.frequency,
        )


def plan_schedule(
    *,
    target_sparsity: float,
    steps_per_epoch: int,
    epochs: int,
    kind: str = "polynomial",
    ramp_fraction: float = 0.7,
    frequency: int | None = None,
    begin_step: int = 0,
) -> PruningPlan:
    """Derive a schedule that reaches ``target_sparsity`` within the training run.

    ``polynomial``: Zhu & Gupta's cubic ramp (tfmot ``PolynomialDecay``, power 3)
    from 0 to the target over ``ramp_fraction`` of the steps after ``begin_step``,
    then held (masks frozen, weights keep training). ``end_step`` is rounded to the
    nearest ``begin_step + k * frequency`` so the last update applies exactly the
    target. ``constant``: tfmot ``ConstantSparsity``: every update, from the first,
    applies the target, re-selecting the mask each time until the last update before
    training ends; ``ramp_fraction`` is not used.

    The default ``frequency`` gives about :data:`DEFAULT_RAMP_UPDATES` (20) updates
    over the ramp (over all steps for ``constant``), and 1 when there are fewer
    steps than that, so short quick-profile runs still prune gradually instead of
    in one shot. The last update must fall at a step <= ``total_steps - 1`` (one
    step of margin: tfmot would also update at the very last step).

    Args:
        target_sparsity: Share of zeros to reach, in (0, 1). 0 is refused: dense runs
            don't prune.
        steps_per_epoch: Training batches per epoch (``ceil(n_train / batch_size)``).
        epochs: Epochs the pruned model trains.
        kind: One of :data:`SCHEDULES`.
        ramp_fraction: Share of the steps after ``begin_step`` that the polynomial
            ramp takes, in (0, 1].
        frequency: Steps between mask updates; ``None`` derives it (see above).
        begin_step: Step at which the schedule starts (0: from the start).

    Returns:
        A checked :class:`PruningPlan`.

    Raises:
        ValueError: a bad argument, or a schedule that cannot reach the target (no
            mask update within training); the message names the numbers.
    """
    target = _check_target(target_sparsity)
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    epochs = check_int("epochs", epochs, minimum=1)
    check_choice(kind, SCHEDULES, what="kind")
    if not is_real(ramp_fraction) or not 0 < ramp_fraction <= 1:
        raise ValueError(f"ramp_fraction must be in (0, 1], got {ramp_fraction!r}")
    if frequency is not None:
        frequency = check_int("frequency", frequency, minimum=1)
    begin_step = check_int("begin_step", begin_step, minimum=0)

    total = steps_per_epoch * epochs
    last = total - 1  # latest step allowed for the final mask update
    if total < 2:
        raise ValueError(
            f"{total} training step ({steps_per_epoch} per epoch x {epochs} epochs) is too "
            "few to prune: the last mask update must come before the last step"
        )
    if begin_step > last:
        raise ValueError(
            f"begin_step {begin_step} leaves no step for a mask update: training has "
            f"{total} steps ({steps_per_epoch} per epoch x {epochs} epochs), last usable "
            f"update step {last}"
        )
    span = total - begin_step
    ramp = ramp_fraction * span if kind == "polynomial" else span
    freq = frequency if frequency is not None else max(1, round(ramp / DEFAULT_RAMP_UPDATES))
    max_k = (last - begin_step) // freq
    if kind == "polynomial" or begin_step == 0:
        # A polynomial update at begin_step applies sparsity 0; step 0 never trains.
        if last - begin_step < 1:
            raise ValueError(
                f"begin_step {begin_step} leaves no step after it for a mask update: "
                f"training has {total} steps ({steps_per_epoch} per epoch x {epochs} "
                f"epochs) and the last update must be at step <= {last}"
            )
        if max_k < 1:
            raise ValueError(
                f"frequency {freq} leaves no mask update to reach target_sparsity {target}: "
                f"the first would be at step {begin_step + freq}, but training has {total} "
                f"steps ({steps_per_epoch} per epoch x {epochs} epochs) and the last update "
                f"must be at step <= {last}; use frequency <= {last - begin_step}"
            )
    if kind == "polynomial":
        k = min(max_k, max(1, round(ramp / freq)))
        return PruningPlan(
            kind=kind, target_sparsity=target, initial_sparsity=0.0,
            begin_step=begin_step, end_step=begin_step + k * freq, frequency=freq,
            power=POLYNOMIAL_POWER, total_steps=total,
        )
    return PruningPlan(
        kind=kind, target_sparsity=target, initial_sparsity=target,
        begin_step=begin_step, end_step=begin_step + max_k * freq, frequency=freq,
        power=0, total_steps=total,
    )


