"""Evaluation figures: DataFrames in, matplotlib Figures out.

Compute lives in :mod:`cielib.evaluate` and :mod:`cielib.runsets`; these only
draw, so the same numbers feed tables and plots. Each function creates a new
figure, closes nothing and returns it; the caller saves, shows or closes it.
Output depends only on the data (jitter, where drawn, is seeded; fixed colours and sizes).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import math

# No matplotlib.use() here: inside a notebook the inline backend must stay in charge
# (forcing Agg would silently drop every figure from the executed notebooks), and
# without a display matplotlib already falls back to Agg by itself.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

__all__ = [
    "MAX_LABELLED_CLASSES",
    "classification_report_table",
    "confusion_heatmap",
    "metric_by_sparsity",
    "overlay_by",
    "null_verdicts",
]

#: Up to this many classes every tick is labelled and cells are annotated;
#: beyond it (CIFAR-100) labels are thinned and annotations dropped.
MAX_LABELLED_CLASSES = 20

_REPORT_METRICS = ("precision", "recall", "f1")
_AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg", "accuracy")


def _tick_step(n: int) -> int:
    """Label every tick up to MAX_LABELLED_CLASSES, else about 10 evenly spaced."""
    return 1 if n <= MAX_LABELLED_CLASSES else math.ceil(n / 10)


def confusion_heatmap(cm_df: pd.DataFrame, *, title: str = "", annotate: bool | None = None) -> plt.Figure:
    """Heatmap of a confusion matrix from :func:`cielib.evaluate.confusion_matrix`.

    Normalized matrices (float values) use a fixed 0–1 colour scale so the
    baseline and compressed models' matrices (Figures 18, 23) compare by eye.

    Args:
        cm_df: Square DataFrame, index true classes, columns predicted classes.
        title: Axes title.
        annotate: Write each cell's value; defaults to True for at most
            ``MAX_LABELLED_CLASSES`` classes (100 × 100 numbers are unreadable).

    Returns:
        The Figure: one heatmap axes and one colour-bar axes.

    Raises:
        ValueError: If ``cm_df`` is not square or is empty.
    """
    n_rows, n_cols = cm_df.shape
    if n_rows != n_cols or n_rows == 0:
        raise ValueError(f"cm_df must be a non-empty square matrix, got shape {cm_df.shape}")
    n = n_rows
    if annotate is None:
        annotate = n <= MAX_LABELLED_CLASSES
    normalized = not pd.api.types.is_integer_dtype(np.asarray(cm_df.to_numpy()).dtype)
    size = min(max(4.0, 0.55 * n + 2.0), 10.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size), constrained_layout=True)
    step = _tick_step(n)
    sns.heatmap(
        cm_df.astype(float) if normalized else cm_df,
        ax=ax,
        cmap="Blues",
        vmin=0.0,
        vmax=1.0 if normalized else None,
        annot=bool(annotate),
        fmt=".2f" if normalized else "d",
        annot_kws={"fontsize": 8 if n <= 10 else 6},
        square=True,
        cbar=True,
        cbar_kws={"shrink": 0.8, "label": "share of true class" if normalized else "images"},
        xticklabels=step,
        yticklabels=step,
        linewidths=0.5 if n <= MAX_LABELLED_CLASSES else 0.0,
        linecolor="white",
    )
    ax.set_xlabel(f"{cm_df.columns.name or 'predicted'} label".capitalize())
    ax.set_ylabel(f"{cm_df.index.name or 'true'} label".capitalize())
    ax.tick_params(axis="x", labelrotation=90 if n > MAX_LABELLED_CLASSES else 45)
    ax.tick_params(axis="y", labelrotation=0)
    if n <= MAX_LABELLED_CLASSES:
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    if title:
        ax.set_title(title)
    return fig


def classification_report_table(report_df: pd.DataFrame, *, title: str = "") -> plt.Figure:
    """A classification report drawn as an annotated heatmap (Figures 19, 24).

    Precision, recall and F1 are coloured on a fixed 0–1 scale and annotated;
    support is written as a plain text column. Average rows, if present, are
    set off by a line. It draws every row it is given: for 100 classes pass a
    subset (e.g. the most changed classes from
    :func:`cielib.evaluate.per_class_change`).

    Args:
        report_df: From :func:`cielib.evaluate.classification_report` (or any
            frame with ``precision``, ``recall``, ``f1`` or ``f1-score``, and
            ``support`` columns).
        title: Axes title.

    Returns:
        The Figure: one table axes and one colour-bar axes; ``4 * rows`` texts.

    Raises:
        ValueError: If a column is missing or the frame is empty.
    """
    df = report_df.rename(columns={"f1-score": "f1"})
    missing = [c for c in (*_REPORT_METRICS, "support") if c not in df.columns]
    if missing:
        raise ValueError(f"report_df lacks column(s) {missing}")
    if df.empty:
        raise ValueError("report_df has no rows")
    values = df[list(_REPORT_METRICS)].astype(float)
    n = len(df)
    fig, ax = plt.subplots(figsize=(5.5, min(max(2.0, 0.3 * n + 1.2), 40.0)), constrained_layout=True)
    sns.heatmap(
        values,
        ax=ax,
        cmap="RdYlGn",
        vmin=0.0,
        vmax=1.0,
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 8},
        cbar=True,
        cbar_kws={"shrink": 0.8},
        linewidths=0.5,
        linecolor="white",
        yticklabels=[str(i) for i in df.index],
    )
    # Support: a text column to the right of the coloured cells.
    ax.set_xlim(0, len(_REPORT_METRICS) + 1)
    for row, support in enumerate(df["support"].to_numpy()):
        ax.text(
            len(_REPORT_METRICS) + 0.5, row + 0.5, f"{int(support):d}",
            ha="center", va="center", fontsize=8,
        )
    ax.set_xticks(np.arange(len(_REPORT_METRICS) + 1) + 0.5)
    ax.set_xticklabels([*_REPORT_METRICS, "support"], rotation=0)
    ax.xaxis.tick_top()
    ax.tick_params(axis="both", length=0)
    ax.tick_params(axis="y", labelrotation=0)
    ax.set_xlabel("")
    ax.set_ylabel("")
    first_avg = next((i for i, name in enumerate(df.index) if name in _AVERAGE_ROWS), None)
    if first_avg is not None and first_avg > 0:
        ax.axhline(first_avg, color="black", linewidth=1.0)
    if title:
        ax.set_title(title)
    return fig


def metric_by_sparsity(
    df: pd.DataFrame, *, metric: str, title: str = "", ylabel: str | None = None
) -> plt.Figure:
    """Mean ± standard deviation across seeds of ``metric`` against sparsity.

    Used for final validation accuracy per sparsity and for impacted images
    (CIEs) per sparsity. Error bars show the seed-to-seed spread so a drop can
    be told from noise; with one seed they have zero length.

    Args:
        df: One row per run with columns ``sparsity`` and ``metric``; an
            optional ``task`` column gives one line per task.
        metric: Column to plot.
        title: Axes title.
        ylabel: Y-axis label; defaults to ``metric`` with spaces.

    Returns:
        The Figure: one axes, one error-bar container per task.

    Raises:
        ValueError: If a column is missing or no value is finite.
    """
    missing = [c for c in ("sparsity", metric) if c not in df.columns]
    if missing:
        raise ValueError(f"df lacks column(s) {missing}")
    data = df.dropna(subset=[metric, "sparsity"])
    if data.empty:
        raise ValueError(f"df has no rows with a value for {metric!r}")
    groups = data.groupby("task", sort=True) if "task" in data.columns else [(None, data)]
    fig, ax = plt.subplots(figsize=(5.5, 3.5), constrained_layout=True)
    for task, grp in groups:
        stats = grp.groupby("sparsity", sort=True)[metric].agg(["mean", "std"])
        ax.errorbar(
            stats.index.to_numpy(dtype=float),
            stats["mean"].to_numpy(dtype=float),
            yerr=stats["std"].fillna(0.0).to_numpy(dtype=float),
            marker="o",
            capsize=3,
            label=None if task is None else str(task),
        )
    ax.set_xticks(np.sort(data["sparsity"].astype(float).unique()))
    ax.set_xlabel("sparsity")
    ax.set_ylabel(ylabel if ylabel is not None else metric.replace("_", " "))
    ax.grid(alpha=0.3)
    if "task" in data.columns:
        ax.legend(title="task", fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def overlay_by(histories: pd.DataFrame, *, hue: str, metric: str, title: str = "") -> plt.Figure:
    """Per-epoch curves of ``metric``, one line per value of ``hue`` (Figures 20, 21).

    Runs sharing a hue value (e.g. the seeds of one sparsity) are averaged; the
    min–max range across them is shaded when there is more than one.

    Args:
        histories: Stacked per-run histories (see
            :func:`cielib.runsets.histories`) with columns ``epoch``, ``hue``
            and ``metric``.
        hue: Column whose values get one line each (e.g. ``"sparsity"``).
        metric: Column to plot (e.g. ``"val_accuracy"``, ``"val_loss"``).
        title: Axes title.

    Returns:
        The Figure: one axes, one line per hue value, legend titled ``hue``.

    Raises:
        ValueError: If a column is missing or the frame is empty.
    """
    missing = [c for c in dict.fromkeys(("epoch", hue, metric)) if c not in histories.columns]
    if missing:
        raise ValueError(f"histories lack column(s) {missing}")
    if histories.empty:
        raise ValueError("histories has no rows")
    fig, ax = plt.subplots(figsize=(5.5, 3.5), constrained_layout=True)
    for i, (value, grp) in enumerate(histories.groupby(hue, sort=True)):
        color = f"C{i % 10}"
        stats = grp.groupby("epoch", sort=True)[metric].agg(["mean", "min", "max", "count"])
        x = stats.index.to_numpy(dtype=float)
        ax.plot(x, stats["mean"].to_numpy(dtype=float), color=color, marker="o", markersize=3, label=str(value))
        if stats["count"].max() > 1:
            ax.fill_between(
                x, stats["min"].to_numpy(dtype=float), stats["max"].to_numpy(dtype=float),
                color=color, alpha=0.2, linewidth=0,
            )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(title=hue, fontsize="small")
    if title:
        ax.set_title(title)
    return fig


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


def class_recall_change(
    table: pd.DataFrame, *, class_names=None, title: str = "", max_classes: int = 30
) -> plt.Figure:
    """Per-class recall change under compression, in the style of Hooker et al.'s Figure 5.

    Bars are the absolute change in mean recall (compressed − dense; significant classes
    highlighted), points the normalized change (each model's class recall minus its
    top-1, so a uniform drop of every class shows as zero). With many classes only the
    ``max_classes`` with the largest absolute normalized change are drawn.

    Args:
        table: ``PopulationCIE.table`` (columns recall_base, recall_comp, difference,
            significant).
    """
    need = {"recall_base", "recall_comp", "difference", "significant"}
    if need - set(table.columns):
        raise ValueError(f"table lacks column(s) {sorted(need - set(table.columns))}")
    t = table.assign(abs_change=table["recall_comp"] - table["recall_base"])
    t = t.reindex(t["difference"].abs().sort_values(ascending=False).index)
    t = t.head(max_classes).sort_values("difference")
    names = [str(class_names[i]) if class_names is not None else str(i) for i in t.index]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(t) + 1)), constrained_layout=True)
    colours = np.where(t["significant"], "#8e4585", "#c9c9c9")
    y = np.arange(len(t))
    ax.barh(y, t["abs_change"], color=colours, label="recall change (absolute)")
    ax.scatter(t["difference"], y, color="#2e8b57", zorder=3, label="normalized change")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, names)
    ax.set_xlabel("change from the dense population (compressed − dense)")
    ax.legend(fontsize="small", loc="lower right")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def cie_gallery(
    images: np.ndarray,
    images_table: pd.DataFrame,
    *,
    class_names=None,
    max_images: int = 12,
    title: str = "",
) -> plt.Figure:
    """CIE images with the true label and both populations' modal predictions.

    In the style of Hooker et al.'s Figure 4. ``images_table`` is
    ``PopulationCIE.images`` restricted to the images to show (index = image id into
    ``images``; columns label, modal_base, modal_comp).
    """
    rows = images_table.head(max_images)
    n = len(rows)
    if n == 0:
        raise ValueError("no images to show")
    cols = min(6, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.0 * cols, 2.4 * nrows), squeeze=False,
                             constrained_layout=True)
    name = (lambda i: str(class_names[int(i)])) if class_names is not None else str  # noqa: E731
    for ax in axes.flat:
        ax.axis("off")
    for ax, (idx, r) in zip(axes.flat, rows.iterrows()):
        img = images[int(idx)]
        ax.imshow(img.squeeze(), cmap="gray" if img.shape[-1] == 1 else None)
        ax.set_title(f"true: {name(r['label'])}\ndense: {name(r['modal_base'])}\n"
                     f"compressed: {name(r['modal_comp'])}", fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def utilization_traces(traces: pd.DataFrame, *, column: str, hue: str = "sparsity",
                       title: str = "", ylabel: str | None = None) -> plt.Figure:
    """Smoothed utilization over training time, one line per ``hue`` value.

    Like the paper's Figures 22 and 30. ``traces`` holds ``t``, ``column`` (already
    smoothed by the caller if wanted), ``hue`` and ``train_seconds`` (the run's total
    training time, shown in the legend: the paper's point was that pruned runs take
    longer at the same utilization).
    """
    need = {"t", column, hue, "train_seconds"}
    if need - set(traces.columns):
        raise ValueError(f"traces lack column(s) {sorted(need - set(traces.columns))}")
    fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
    for value, grp in traces.groupby(hue, sort=True):
        ax.plot(grp["t"], grp[column], lw=1.4,
                label=f"{hue} {value:g}: {grp['train_seconds'].iloc[0]:.1f} s"
                if isinstance(value, (int, float)) else f"{value}")
    ax.set_xlabel("seconds since training started")
    ax.set_ylabel(ylabel or column.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", title=f"{hue}: training time")
    if title:
        ax.set_title(title)
    return fig


def null_verdicts(verdicts: pd.DataFrame, null: pd.DataFrame, *, title: str = "",
                  max_points: int = 400) -> plt.Figure:
    """Each setting's observed count as a marker over its null draws, p-value annotated.

    One panel per statistic (classes flagged, images): the grey points are the null
    draws (jittered; at most ``max_points`` per setting are drawn, the range line uses
    all of them), the bar their 95% range, the red diamond the observed count. A reader
    sees at once whether a count stands beyond chance, and by how much.

    Args:
        verdicts: rows of :attr:`cielib.cie.CIEAnalysis.verdicts` for ONE schema
            (columns setting, statistic, observed, null_low, null_high, p, null).
        null: that schema's null draws (``single_null`` or ``population_null``): one
            row per draw with a ``setting`` column and one column per statistic.
        title: figure title.
    """
    need = {"setting", "statistic", "observed", "null_low", "null_high", "p"}
    if need - set(verdicts.columns):
        raise ValueError(f"verdicts lacks column(s) {sorted(need - set(verdicts.columns))}")
    if "schema" in verdicts.columns and verdicts["schema"].nunique() > 1:
        raise ValueError(f"verdicts mixes schemas {sorted(verdicts['schema'].unique())}; "
                         "draw one figure per schema")
    stats_ = list(dict.fromkeys(verdicts["statistic"]))
    missing = [s for s in stats_ if s not in null.columns]
    if missing or "setting" not in null.columns:
        raise ValueError(f"null lacks column(s) {missing or ['setting']}")
    settings = list(dict.fromkeys(verdicts["setting"]))
    rng = np.random.default_rng(0)
    fig, axes = plt.subplots(1, len(stats_), figsize=(3.2 * len(stats_) + 0.8, 3.4),
                             constrained_layout=True, squeeze=False)
    for ax, stat in zip(axes[0], stats_):
        rows = verdicts[verdicts["statistic"] == stat].set_index("setting")
        for i, name in enumerate(settings):
            draws = null.loc[null["setting"] == name, stat].to_numpy(dtype=float)
            if draws.size:
                shown = draws if draws.size <= max_points else rng.choice(draws, max_points, replace=False)
                ax.scatter(i + rng.uniform(-0.18, 0.18, shown.size), shown, s=6, color="#9a9a9a",
                           alpha=0.35, linewidths=0, label="null draws" if i == 0 else None)
            if name not in rows.index:
                continue
            r = rows.loc[name]
            if np.isfinite(r["null_low"]):
                ax.vlines(i + 0.27, r["null_low"], r["null_high"], color="#444444", lw=2,
                          label="null 95% range" if i == 0 else None)
            ax.scatter([i], [r["observed"]], marker="D", s=46, color="#c0392b", zorder=4,
                       label="observed" if i == 0 else None)
            p = r["p"]
            text = "p n/a" if not np.isfinite(p) else (f"p={p:.2g}" if p < 0.001 else f"p={p:.3f}")
            # vertical, so that neighbouring settings' p-values never run into each other
            ax.annotate(text, (i, r["observed"]), xytext=(0, 7), textcoords="offset points",
                        ha="center", va="bottom", rotation=90, fontsize="x-small")
        ax.set_xticks(range(len(settings)), settings, rotation=20, ha="right")
        ax.set_xlim(-0.6, len(settings) - 0.4)
        ax.set_ylabel(stat)
        ax.margins(y=0.3)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize="x-small", loc="best")
    if title:
        fig.suptitle(title)
    return fig
