"""Sentences for the report's discussion, every number filled in from the run store.

The discussion states what this run found about the paper's claims; none of its
numbers is typed by hand. Each function takes the tables the analysis notebooks wrote
and returns plain sentences (markdown), so a test can plant tables and check them.
Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import pandas as pd


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def accuracy_finding(runs: pd.DataFrame, *, label: str) -> str:
    """Top-1 of the dense model against the strongest pruning (means over seeds)."""
    train = runs[runs["stage"] == "train"]
    by = train.groupby("sparsity")["top1"].mean()
    if len(by) < 2:
        return f"{label}: only the dense model was trained (top-1 {_pct(by.iloc[0])})."
    best = by.idxmax()
    return (f"{label}: top-1 went from {_pct(by.iloc[0])} dense to {_pct(by.iloc[-1])} at sparsity "
            f"{by.index[-1]:g} ({100 * (by.iloc[-1] - by.iloc[0]):+.1f} points); the best sparsity was "
            f"{best:g} at {_pct(by.max())}.")


def cie_finding(single: pd.DataFrame, *, label: str) -> str:
    """Which compression harmed the most images, and does quantization harm fewer than pruning?"""
    mean = single.groupby("setting")["impacted_images"].mean()
    pruning = mean[mean.index.str.fullmatch(r"sparsity [\d.]+")]
    quant = mean[~mean.index.str.startswith("sparsity") & (mean.index != "float32")]
    worst = mean.idxmax()
    text = (f"{label}: by the paper's single-model schema the most impacted images came from "
            f"{worst} ({mean.max():.0f} on average over seeds).")
    if len(pruning) and len(quant):
        fewer = bool(quant.max() < pruning.min())
        text += (f" Every quantization technique impacted fewer images (at most {quant.max():.0f}) than "
                 f"any pruning level (at least {pruning.min():.0f}), as the paper found."
                 if fewer else
                 f" Quantization did not uniformly impact fewer images than pruning here: its worst "
                 f"({quant.idxmax()}, {quant.max():.0f}) exceeds the mildest pruning "
                 f"({pruning.idxmin()}, {pruning.min():.0f}).")
    return text


def agreement_finding(agreement: pd.DataFrame, *, label: str) -> str:
    """How often the single-model schema's flags match the population schema's."""
    flagged = agreement[(agreement["n_population"] > 0) | (agreement["mean_n_single"] > 0)]
    if flagged.empty:
        return f"{label}: neither schema flagged any class, so their agreement cannot be judged."
    p, r = flagged["mean_precision"].mean(), flagged["mean_recall"].mean()
    parts = []
    parts.append(f"precision {_pct(p)}" if pd.notna(p) else "no single-model flags to check")
    parts.append(f"recall {_pct(r)}" if pd.notna(r) else "no population flags to find")
    return (f"{label}: against the population schema, the single-model schema's class flags had "
            f"{' and '.join(parts)} (means over settings and seeds; {int(flagged['n_population'].sum())} "
            f"population flags in all).")


def efficiency_finding(efficiency: pd.DataFrame, *, label: str) -> str:
    """Training time of pruned runs relative to dense (the paper: pruned took longer)."""
    pruned = efficiency[efficiency.index > 0]
    if pruned.empty:
        return f"{label}: no pruned run to compare training time with."
    ratio = pruned["time_vs_dense"]
    verdict = "longer than" if ratio.min() > 1 else ("no faster than" if ratio.min() >= 0.97 else "")
    return (f"{label}: pruned training took {ratio.min():.2f}x to {ratio.max():.2f}x the dense model's "
            f"time" + (f", i.e. {verdict} dense training, as the paper reported." if verdict else
                       ", so at least one pruned run was faster than dense here."))


def quantization_finding(runs: pd.DataFrame, *, label: str) -> str:
    """Measured size and batch-1 speed of int8 against the float32 TFLite model."""
    q = runs[(runs["stage"] == "quantize") & (runs["sparsity"] == 0)]
    if q.empty or "float32" not in set(q["technique"]):
        return f"{label}: no quantized models."
    size = q.groupby("technique")["tflite_bytes"].mean()
    parts = [f"{t} {size['float32'] / size[t]:.2f}x smaller" for t in size.index if t != "float32"]
    text = f"{label}: against float32 TFLite, " + ", ".join(parts)
    if "latency_b1_ms" in q and q["latency_b1_ms"].notna().any():
        lat = q.dropna(subset=["latency_b1_ms"]).groupby("technique")["latency_b1_ms"].mean()
        speed = [f"{t} {lat['float32'] / lat[t]:.2f}x" for t in lat.index if t != "float32"]
        text += "; batch-1 speed-up on this CPU: " + ", ".join(speed)
    return text + "."
