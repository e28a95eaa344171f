"""Traces after sampling: :func:`save` into a run directory, :func:`smooth` for plots."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from cielib.hardware.sampler import Sampler


def save(sampler: Sampler, directory: str | os.PathLike) -> dict[str, Any]:
    """Write ``utilization.csv`` (the tidy trace) into ``directory``; return the summary.

    The caller stores the summary in the run's ``metrics.json``. The sampler should be
    stopped; a running one is saved as it stands.
    """
    if not isinstance(sampler, Sampler):
        raise TypeError(f"expected a Sampler, got {type(sampler).__name__}")
    if sampler.backend is None:
        raise ValueError("the sampler was never started: nothing to save")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    sampler.samples.to_csv(out / "utilization.csv", index=False)
    return sampler.summary()


def smooth(df: pd.DataFrame, *, column: str, window_s: float) -> pd.DataFrame:
    """Centred rolling mean of ``column`` over ``window_s`` seconds, per device.

    Utilization traces are spiky (the paper smoothed its Figures 22 and 30 for this
    reason). Returns a copy of ``df`` sorted by device and time with a
    ``<column>_smooth`` column; NaNs are skipped within the window.
    """
    for col in ("t", column):
        if col not in df.columns:
            raise ValueError(f"column {col!r} not in the frame; columns: {', '.join(map(str, df.columns))}")
    if isinstance(window_s, bool) or not isinstance(window_s, (int, float)) or not (
        math.isfinite(window_s) and window_s > 0
    ):
        raise ValueError(f"window_s must be a finite number of seconds > 0, got {window_s!r}")
    keys = ["device"] if "device" in df.columns else []
    out = df.sort_values([*keys, "t"], kind="stable").reset_index(drop=True)
    window = pd.Timedelta(seconds=float(window_s))

    def roll(s: pd.DataFrame) -> pd.Series:
        series = pd.Series(s[column].to_numpy(dtype=float), index=pd.to_timedelta(s["t"].to_numpy(), unit="s"))
        return pd.Series(series.rolling(window, center=True, min_periods=1).mean().to_numpy(), index=s.index)

    name = f"{column}_smooth"
    if keys:
        out[name] = pd.concat([roll(g) for _, g in out.groupby("device", sort=False)]).sort_index()
    else:
        out[name] = roll(out)
    return out
