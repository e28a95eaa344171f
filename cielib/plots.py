"""Figures. Compute lives elsewhere; these take DataFrames and return Figures.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: notebooks and the report render to files

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

_CURVES = (("accuracy", "Accuracy"), ("loss", "Cross-entropy loss"))


def training_curves(history: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """Accuracy and cross-entropy loss per epoch, train vs validation (two panels)."""
    missing = {"epoch", "accuracy", "val_accuracy", "loss", "val_loss"} - set(history.columns)
    if missing:
        raise ValueError(f"history lacks column(s) {sorted(missing)}")
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
    for ax, (key, name) in zip(axes, _CURVES):
        ax.plot(history["epoch"], history[key], marker="o", label="train")
        ax.plot(history["epoch"], history[f"val_{key}"], marker="s", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def curves_by(
    histories: pd.DataFrame, *, hue: str, metric: str = "val_accuracy", title: str = ""
) -> plt.Figure:
    """One line per value of ``hue`` (e.g. seed or sparsity) for one metric per epoch.

    ``histories`` is the concatenation of per-run histories with a ``hue`` column;
    runs sharing a hue value (e.g. seeds of one sparsity) are averaged, with their
    range shaded.
    """
    if hue not in histories.columns or metric not in histories.columns:
        raise ValueError(f"histories need columns {hue!r} and {metric!r}")
    fig, ax = plt.subplots(figsize=(5, 3.2), constrained_layout=True)
    for value, grp in histories.groupby(hue, sort=True):
        stats = grp.groupby("epoch")[metric].agg(["mean", "min", "max"])
        ax.plot(stats.index, stats["mean"], marker="o", label=f"{hue}={value}")
        if grp.groupby("epoch").size().max() > 1:
            ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig
