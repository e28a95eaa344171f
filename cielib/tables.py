"""Tables and figures as a reader sees them: readable headers, formatted numbers, captions.

The analysis notebooks compute DataFrames with the project's snake_case column names
(``val_accuracy_mean``, ``n_cie_images_population``); the report shows the same numbers
the way the paper does: "Validation accuracy (mean)", percentages, counts with thousands
separators, file sizes in kB/MB, and a caption naming the paper's table or figure the
numbers correspond to. Nothing here computes a result: :func:`present` only changes how a
DataFrame is displayed, and :func:`show_figure` attaches a caption to a figure's output so
that :mod:`cielib.report` can number and print it.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import math
import numbers
import re
from typing import Any, Callable, Mapping

import pandas as pd

# Known column (and index) names -> headers. Anything else goes through :func:`header`'s
# generic rewrite, so a new column still reads as words.
HEADERS: dict[str, str] = {
    "top1": "Top-1", "top5": "Top-5", "top1_std": "Top-1 (std)",
    "top1_before": "Top-1 before", "top1_after": "Top-1 after",
    "micro_precision": "Micro precision", "micro_recall": "Micro recall", "micro_f1": "Micro F1",
    "macro_precision": "Macro precision", "macro_recall": "Macro recall", "macro_f1": "Macro F1",
    "weighted_f1": "Weighted F1",
    "final_val_accuracy": "Final validation accuracy", "final_val_loss": "Final validation loss",
    "val_accuracy": "Validation accuracy", "val_loss": "Validation loss",
    "val_accuracy_mean": "Validation accuracy (mean)", "val_accuracy_std": "Validation accuracy (std)",
    "seeds": "Seeds", "n_seeds": "Seeds", "count": "Count", "share": "Share", "support": "Support",
    "sparsity": "Sparsity", "measured_sparsity": "Measured sparsity", "technique": "Technique",
    "setting": "Setting", "seed": "Seed", "task": "Task", "stage": "Stage", "run_id": "Run",
    "class": "Class", "name": "Class name", "n_images": "Images",
    "model_bytes": "Model file", "gzip_bytes": "Model file, gzipped",
    "tflite_bytes": "TFLite file", "tflite_gzip_bytes": "TFLite file, gzipped",
    "tflite_bytes_float32": "float32 TFLite file", "weight_bytes": "Weights",
    "size_ratio": "Size ratio vs float32", "gzip_ratio": "Gzipped size ratio vs float32",
    "size_ratio_vs_float32": "Size ratio vs float32", "ratio_vs_float32": "Ratio vs float32",
    "gzip_ratio_vs_dense": "Gzipped size ratio vs dense", "size_factor": "Documented size factor",
    "benefits": "Documented benefits", "compression_ratio": "Compression ratio",
    "agreement_with_keras": "Agreement with Keras model",
    "latency_b1_ms": "Latency, batch 1 (ms)", "throughput_ips": "Throughput (images/s)",
    "speedup_b1": "Speed-up, batch 1", "speedup_throughput": "Throughput speed-up",
    "speedup_low": "Documented speed-up (low)", "speedup_high": "Documented speed-up (high)",
    "train_seconds": "Training time (s)", "images_per_s": "Images/s",
    "step_ms_median": "Median step (ms)", "epoch_seconds_median": "Median epoch (s)",
    "time_vs_dense": "Time vs dense", "throughput_vs_dense": "Throughput vs dense",
    "hw_utilization_mean_pct": "GPU utilization (mean)", "hw_process_cpu_mean_pct": "Process CPU (mean)",
    "hw_energy_j": "Energy (J)", "hw_cpu_seconds": "CPU time (s)", "hw_n_samples": "Samples",
    "impacted_classes": "Impacted classes", "impacted_images": "Impacted images",
    "impacted_classes_mean": "Impacted classes (mean)", "impacted_classes_std": "Impacted classes (std)",
    "impacted_images_mean": "Impacted images (mean)", "impacted_images_std": "Impacted images (std)",
    "classes": "Classes", "boundary": "Boundary (std of class accuracy)",
    "significant_classes": "Significant classes", "cie_images": "CIE images",
    "n_single": "Classes flagged (single model)", "n_population": "Classes flagged (population)",
    "n_both": "Classes flagged by both", "mean_n_single": "Classes flagged (single model, mean)",
    "mean_precision": "Precision (mean)", "mean_recall": "Recall (mean)", "mean_f1": "F1 (mean)",
    "mean_impacted_images_single": "Impacted images (single model, mean)",
    "n_cie_images_single": "CIE images (single model)",
    "n_cie_images_population": "CIE images (population)",
    "recall_base": "Recall, dense", "recall_comp": "Recall, compressed",
    "mean_norm_recall_base": "Normalized recall, dense", "mean_norm_recall_comp": "Normalized recall, compressed",
    "difference": "Normalized recall change", "t": "t", "p": "p", "p_adjusted": "p (adjusted)",
    "significant": "Significant",
    "accuracy_before": "Accuracy before", "accuracy_after": "Accuracy after",
    "deviation_before": "Deviation before", "deviation_after": "Deviation after",
    "outside_before": "Outside boundary before", "outside_after": "Outside boundary after",
    "impacted": "Impacted", "precision": "Precision", "recall": "Recall", "f1": "F1", "f1-score": "F1",
    "component": "Component", "version": "Version",
    "schema": "Schema", "statistic": "Count", "observed": "Observed",
    "null_range": "Null median [95% range]", "percentile": "Null percentile", "null_kind": "Null",
    "design": "Design",
    **{f"{m}_{when}": f"{label} {word}" for m, label in (("precision", "Precision"), ("recall", "Recall"),
                                                          ("f1", "F1"))
       for when, word in (("before", "before"), ("after", "after"), ("delta", "change"))},
}

_TOKENS = {"top1": "top-1", "top5": "top-5", "f1": "F1", "cie": "CIE", "val": "val", "gpu": "GPU",
           "cpu": "CPU", "tflite": "TFLite", "ms": "(ms)", "pct": "(%)", "ips": "(images/s)",
           "b1": "batch 1", "hw": "", "n": "number of", "vs": "vs"}
_STATS = ("mean", "std", "median", "min", "max", "before", "after", "delta")

# How a column's numbers are written, by kind. "percent" multiplies a 0-1 fraction by 100;
# "points" is a difference of two fractions, in percentage points; "pct" is already in
# percent (utilization); "fixed" has ``decimals`` places (sparsity 0.50); "text" as is.
KINDS = ("percent", "points", "pct", "count", "fixed", "bytes", "ratio", "seconds", "ms", "p", "number", "text")
_PERCENT = {"top1", "top5", "top1_std", "top1_before", "top1_after", "micro_precision", "micro_recall",
            "micro_f1", "macro_precision", "macro_recall", "macro_f1", "weighted_f1",
            "final_val_accuracy", "val_accuracy", "val_accuracy_mean", "val_accuracy_std",
            "agreement_with_keras", "share", "precision", "recall", "f1", "f1-score", "mean_precision",
            "mean_recall", "mean_f1", "accuracy_before", "accuracy_after", "recall_base", "recall_comp",
            "measured_sparsity"}
_COUNT = {"seeds", "n_seeds", "count", "support", "seed", "impacted_classes", "impacted_images",
          "significant_classes", "cie_images", "n_single", "n_population", "n_both", "n_images",
          "n_cie_images_single", "n_cie_images_population", "hw_n_samples", "images"}
_RATIO = {"size_ratio", "gzip_ratio", "size_ratio_vs_float32", "ratio_vs_float32", "gzip_ratio_vs_dense",
          "time_vs_dense", "throughput_vs_dense", "speedup_b1", "speedup_throughput", "speedup_low",
          "speedup_high", "size_factor", "compression_ratio"}

_NUMBER = {"images_per_s", "throughput_ips", "t", "boundary", "difference_t"}

# What each kind of table or figure corresponds to in the paper, per paper task
# (cielib.paper_tables.PAPER_TASKS); None: the project's extension with no counterpart there.
PAPER_REFS: dict[str, dict[str, str | None]] = {
    "dense": {"vgg19_cifar10": "Table 1", "resnet50_cifar100": "Table 6"},
    "val": {"vgg19_cifar10": "Table 2", "resnet50_cifar100": "Table 7"},
    "test": {"vgg19_cifar10": "Table 3", "resnet50_cifar100": "Table 8"},
    "cie": {"vgg19_cifar10": "Table 4", "resnet50_cifar100": "Table 9"},
    "size": {"vgg19_cifar10": "Table 5", "resnet50_cifar100": None},
    "speed": {"vgg19_cifar10": "Table 5", "resnet50_cifar100": None},
    "training_curves": {"vgg19_cifar10": "Figures 20 and 21", "resnet50_cifar100": "Figures 28 and 29"},
    "utilization": {"vgg19_cifar10": "Figure 22", "resnet50_cifar100": "Figure 30"},
    "efficiency": {"vgg19_cifar10": "Figure 22", "resnet50_cifar100": "Figure 30"},
    "class_balance": {"vgg19_cifar10": "Figure 17", "resnet50_cifar100": None},
    "confusion": {"vgg19_cifar10": "Figures 18 and 23", "resnet50_cifar100": None},
    "classification_report": {"vgg19_cifar10": "Figures 19 and 24", "resnet50_cifar100": None},
    "quantized_report": {"vgg19_cifar10": "Figures 26 and 27", "resnet50_cifar100": None},
    "impacted_images": {"vgg19_cifar10": "Figure 25", "resnet50_cifar100": "Figure 31"},
    "population_cie": {"vgg19_cifar10": "Figure 6", "resnet50_cifar100": "Figure 6"},
    "class_recall_change": {"vgg19_cifar10": "Figure 5", "resnet50_cifar100": "Figure 5"},
    "cie_gallery": {"vgg19_cifar10": "Figure 4", "resnet50_cifar100": "Figure 4"},
    "agreement": {"vgg19_cifar10": None, "resnet50_cifar100": None},
    "per_class_change": {"vgg19_cifar10": None, "resnet50_cifar100": None},
}
_PAPER_TASK_BY_NAME = {"VGG-19 on CIFAR-10": "vgg19_cifar10", "ResNet-50 on CIFAR-100": "resnet50_cifar100"}


def header(name: Any) -> Any:
    """A readable header for a column name: the known mapping, else words from snake_case.

    ``"val_accuracy_mean"`` -> ``"Validation accuracy (mean)"`` (known);
    ``"foo_bar_std"`` -> ``"Foo bar (std)"`` (generic). Non-strings (numbers, class ids)
    are returned unchanged.
    """
    if not isinstance(name, str):
        return name
    if name in HEADERS:
        return HEADERS[name]
    if not re.fullmatch(r"[a-z0-9]+(?:_[a-z0-9]+)+|[a-z0-9]+", name):
        return name  # already words ("this run", "T-shirt/top", "precision (seed 0)")
    words = name.split("_")
    stat = words.pop() if len(words) > 1 and words[-1] in _STATS else None
    text = " ".join(w for w in (_TOKENS.get(w, w) for w in words) if w)
    text = text[:1].upper() + text[1:]
    return f"{text} ({stat})" if stat else text


def kind_of(name: Any) -> str:
    """How a column's numbers are written (one of :data:`KINDS`), guessed from its name."""
    if not isinstance(name, str):
        return "number"
    if name in _NUMBER:
        return "number"
    if name in ("sparsity", "alpha"):
        return "fixed"
    base = re.sub(r"_(mean|median|min|max|std)$", "", name)
    if base.endswith("_delta") or base in ("difference", "abs_change"):
        return "points"
    if name in _PERCENT or base in _PERCENT or re.search(r"(^|_)(precision|recall|f1|accuracy)(_|$)", base) \
            and not base.endswith("_delta") and "norm" not in base:
        return "percent"
    if name.endswith("_pct") or base.endswith("_pct"):
        return "pct"
    if name in _COUNT or base in _COUNT or re.match(r"n_", base) or base.endswith(("_images", "_classes")):
        return "count"
    if base.endswith("_bytes") or base.startswith("bytes"):
        return "bytes"
    if name in _RATIO or base in _RATIO or "ratio" in base or "speedup" in base or base.endswith("_vs_dense"):
        return "ratio"
    if base.endswith("_ms") or "_ms_" in base:
        return "ms"
    if base.endswith(("_seconds", "_s")):
        return "seconds"
    if base in ("p", "p_adjusted") or base.startswith("p_"):
        return "p"
    return "number"


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA or x is pd.NaT


def human_bytes(n: float) -> str:
    """A byte count as a reader says it: 950 B, 12.3 kB, 4.56 MB (powers of 1000)."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "B":
                return f"{n:.0f} B"
            return f"{n:.{2 if abs(n) < 10 else 1 if abs(n) < 100 else 0}f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def formatter(kind: str, *, decimals: int = 2) -> Callable[[Any], str]:
    """The function that writes one value of a column of the given kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; allowed: {', '.join(KINDS)}")

    def fmt(x) -> str:
        if _missing(x):
            return ""
        if isinstance(x, bool) or not isinstance(x, numbers.Number):
            return str(x)
        if kind == "percent":
            return f"{100 * x:.{decimals}f}%"
        if kind == "pct":
            return f"{x:.{max(decimals - 1, 0)}f}%"
        if kind == "count":
            return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"
        if kind == "bytes":
            return human_bytes(x)
        if kind == "ratio":
            return f"{x:.2f}×"
        if kind == "seconds":
            return f"{x:,.1f}"
        if kind == "ms":
            return f"{x:.3g}" if abs(x) < 10 else f"{x:,.1f}"
        if kind == "p":
            return f"{x:.2g}" if x < 0.001 else f"{x:.3f}"
        if kind == "text":
            return str(x)
        if kind == "fixed":
            return f"{x:,.{decimals}f}"
        if kind == "points":
            return f"{100 * x:+.{decimals}f} pp"
        if isinstance(x, numbers.Integral):
            return f"{x:,}"
        if x == 0 or not math.isfinite(x):
            return f"{x:g}"
        if abs(x) < 0.01:
            return f"{x:.{max(decimals, 1)}g}"
        return f"{x:,.{decimals + 1}f}" if abs(x) < 1 else f"{x:,.{decimals}f}"

    return fmt


def paper_task_of(stand_in_for: str | None) -> str | None:
    """The paper task key for a task's ``stand_in_for`` text (or a key itself), else None."""
    if not stand_in_for:
        return None
    if stand_in_for in PAPER_REFS["dense"]:
        return stand_in_for
    return _PAPER_TASK_BY_NAME.get(stand_in_for)


def paper_ref(kind: str, *, paper_task: str | None = None) -> str:
    """The sentence saying which of the paper's tables or figures a kind corresponds to.

    Args:
        kind: A key of :data:`PAPER_REFS` (``"val"``, ``"test"``, ``"training_curves"`` ...).
        paper_task: ``"vgg19_cifar10"`` or ``"resnet50_cifar100"`` (or the task's
            ``stand_in_for`` text); None names both tasks' counterparts.
    """
    if kind not in PAPER_REFS:
        raise ValueError(f"unknown kind {kind!r}; allowed: {', '.join(PAPER_REFS)}")
    task = paper_task_of(paper_task)
    if paper_task and task is None:
        raise ValueError(f"unknown paper_task {paper_task!r}; allowed: {', '.join(PAPER_REFS['dense'])} "
                         f"or {', '.join(_PAPER_TASK_BY_NAME)}")
    refs = PAPER_REFS[kind]
    if task is not None:
        ref = refs[task]
        if ref is None:
            return "No counterpart in the paper for this task."
        return f"Corresponds to the paper's {ref}."
    found = list(dict.fromkeys(r for r in refs.values() if r))
    if not found:
        return "No counterpart in the paper (this project's extension)."
    return f"Corresponds to the paper's {' and '.join(found)}."


def caption_text(caption: str | None = None, *, kind: str | None = None, paper_task: str | None = None) -> str:
    """A caption: the given text, then (with ``kind``) the paper's counterpart."""
    parts = [caption.strip().rstrip(".") + "." if caption and caption.strip() else ""]
    if kind is not None:
        parts.append(paper_ref(kind, paper_task=paper_task))
    text = " ".join(p for p in parts if p)
    if not text:
        raise ValueError("a caption needs text or a kind; got neither")
    return text


#: The widest table the report shows (columns, index included); wider ones belong in a
#: CSV file written into the run directory and linked from the text.
MAX_COLUMNS = 12


def present(
    df: pd.DataFrame | pd.Series,
    *,
    caption: str | None = None,
    kind: str | None = None,
    paper_task: str | None = None,
    kinds: Mapping[str, str] | None = None,
    decimals: int = 2,
    headers: Mapping[str, str] | None = None,
    index: bool = True,
):
    """A DataFrame as the report shows it: readable headers, formatted numbers, a caption.

    The numbers are not changed, only how they are written: fractions as percentages
    (``decimals`` places), counts with thousands separators, byte counts as kB/MB, ratios
    as ``2.50×``. Which is which is guessed from each column's name (:func:`kind_of`) and
    can be overridden with ``kinds``. Columns of a MultiIndex are formatted by their
    first level (``("top1", "paper")`` is a percentage).

    Args:
        df: The table (a Series is shown as one column).
        caption: What the table shows, in words.
        kind: Which of the paper's tables or figures it corresponds to (a key of
            :data:`PAPER_REFS`); adds "Corresponds to the paper's Table 2." to the caption.
        paper_task: The task's paper task or ``stand_in_for`` text, to name one table.
        kinds: Column name -> kind, overriding the guess (see :data:`KINDS`).
        decimals: Decimal places of percentages and plain numbers.
        headers: Column name -> header, overriding :data:`HEADERS`.
        index: Whether to show the index.

    Returns:
        A pandas Styler; a notebook displays it as HTML (with the caption), which
        nbconvert keeps and :mod:`cielib.report` numbers.
    """
    if isinstance(df, pd.Series):
        df = df.to_frame()
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"present takes a DataFrame or Series, got {type(df).__name__}")
    kinds = dict(kinds or {})
    bad = {c: k for c, k in kinds.items() if k not in KINDS}
    if bad:
        raise ValueError(f"unknown kind(s) {bad}; allowed: {', '.join(KINDS)}")
    if decimals < 0:
        raise ValueError(f"decimals must be >= 0, got {decimals}")
    width = len(df.columns) + (df.index.nlevels if index else 0)
    if width > MAX_COLUMNS:
        raise ValueError(f"a table of {width} columns (index included) is too wide to read; the "
                         f"report shows at most {MAX_COLUMNS}: pick the columns a reader needs and "
                         "write the whole table to a CSV file in the run directory")
    text = caption_text(caption, kind=kind, paper_task=paper_task) if (caption or kind) else None
    names = {**HEADERS, **(headers or {})}

    def label(name):
        return names.get(name, header(name)) if isinstance(name, str) else name

    def key(col):
        return col[0] if isinstance(col, tuple) else col

    fmts = {}
    for col in df.columns:
        k = kinds.get(key(col)) or kinds.get(col) or kind_of(key(col))
        fmts[col] = formatter(k, decimals=decimals)
    shown = df.copy()
    if isinstance(shown.columns, pd.MultiIndex):
        new_cols = pd.MultiIndex.from_tuples([tuple(label(x) for x in c) for c in shown.columns],
                                             names=[label(n) for n in shown.columns.names])
    else:
        new_cols = pd.Index([label(c) for c in shown.columns], name=label(shown.columns.name))
    if new_cols.is_unique:
        shown.columns = new_cols
    fmts = {new: fmts[old] for new, old in zip(shown.columns, df.columns)}
    shown.index = shown.index.set_names([label(n) for n in shown.index.names])
    styler = shown.style.format(fmts)
    for level, name in enumerate(df.index.names):
        k = kinds.get(name) or kind_of(name)
        if k != "number" and k != "text":
            styler = styler.format_index(formatter(k, decimals=decimals), level=level)
    classes = "cielib-table" + (" cielib-wide" if width >= 8 else "")
    styler = styler.set_table_attributes(f'class="{classes}"')
    if text:
        styler = styler.set_caption(text)
    return styler if index else styler.hide(axis="index")


def show_figure(fig, *, caption: str | None = None, kind: str | None = None,
                paper_task: str | None = None) -> None:
    """Display a matplotlib figure with a caption the report prints under it.

    The caption travels in the output's metadata (``{"caption": ...}``), which
    papermill and nbconvert keep; :func:`cielib.report.clean_cells` turns it into a
    numbered ``<figcaption>``. The figure is closed afterwards, so a later
    ``plt.show()`` does not show it twice.
    """
    from IPython.display import display
    import matplotlib.pyplot as plt

    text = caption_text(caption, kind=kind, paper_task=paper_task)
    display(fig, metadata={"caption": text})
    plt.close(fig)
