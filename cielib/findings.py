"""Sentences for the report's discussion, every number filled in from the run store.

The discussion states what this run found about the paper's claims; none of its
numbers is typed by hand. Each function takes the tables the analysis notebooks wrote
and returns plain sentences (markdown), so a test can plant tables and check them.
Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import pandas as pd

from cielib.cie import LOW_POWER_MODELS


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


#: The quantization techniques the paper ran, per paper task. Section X.iii: float16 and
#: dynamic-range int8 on VGG-19 ("I was unable to successfully apply fixed-point int8
#: quantization"); Section VIII: "the CIFAR-100 experiments do not have any quantization
#: comparatives". Anything else this project runs is an extension.
PAPER_TECHNIQUES = {"vgg19_cifar10": ("float16", "dynamic_int8"), "resnet50_cifar100": ()}


def _paper_ran(technique: str, paper_task: str | None) -> bool:
    return technique in PAPER_TECHNIQUES.get(paper_task or "", ())


def _extension(technique: str, paper_task: str | None) -> str:
    """Why a technique has no paper counterpart, in a few words."""
    if technique == "full_int8":
        return "an extension: the paper did not run full-integer int8"
    if paper_task == "resnet50_cifar100":
        return "an extension: the paper ran no quantization on its CIFAR-100 task"
    if paper_task is None:
        return "no paper task to compare with"
    return "an extension: not among the paper's techniques for this task"


def _p(p: float) -> str:
    return f"p = {p:.2g}" if p < 0.001 else f"p = {p:.3f}"


def _count(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _placed(row) -> str:
    """"3 (null median 0, 95% range 0-2; p = 0.004, 99.7th percentile)"."""
    if not row["n_null"]:
        return f"{_count(row['observed'])} (no null)"
    return (f"{_count(row['observed'])} (null median {_count(row['null_median'])}, 95% range "
            f"{_count(row['null_low'])}–{_count(row['null_high'])}; {_p(row['p'])}, "
            f"{row['percentile']:.1f}th percentile)")


def cie_finding(single: pd.DataFrame, *, label: str, paper_task: str | None = None,
                verdicts: pd.DataFrame | None = None) -> str:
    """Impacted images per setting by the paper's single-model schema, each against its null.

    The paper's Table 4 found quantization impacting fewer images than pruning. Here a
    quantized model is paired with the dense model it came from while a pruned one is
    trained independently, so the two counts differ by design as well as by
    compression: they are not compared with each other, only each with its own null
    (``verdicts``, :attr:`cielib.cie.CIEAnalysis.verdicts`), with p-value and null
    percentile. Techniques the paper did not run for ``paper_task`` are labelled as
    extensions.
    """
    if single.empty:
        return f"{label}: no compressed model was made, so there is nothing for the CIE schemas to compare."
    mean = single.groupby("setting", sort=False)["impacted_images"].mean()
    worst = mean.idxmax()
    text = (f"{label}: by the paper's single-model schema the most impacted images came from "
            f"{worst} ({mean.max():.0f} on average over its pairs).")
    quant = [t for t in mean.index if not t.startswith("sparsity") and t != "float32"]
    ext = {t: _extension(t, paper_task) for t in quant if not _paper_ran(t, paper_task)}
    if verdicts is not None and len(verdicts):
        v = verdicts[(verdicts["schema"] == "single-model") & (verdicts["statistic"] == "images")]
        parts = [f"{r['setting']}{' (' + ext[r['setting']] + ')' if r['setting'] in ext else ''} "
                 f"{_placed(r)} against {r['null']}" for r in v.to_dict("records")]
        if parts:
            text += " Mean impacted images per pair, each against its own null: " + "; ".join(parts) + "."
    elif ext:
        text += " " + "; ".join(f"{t} is {why}" for t, why in ext.items()) + "."
    if quant and any(t.startswith("sparsity") for t in mean.index):
        text += (" Quantized models are paired with their dense model and pruned ones trained "
                 "independently, so their counts are not compared with each other (the paper's "
                 "Table 4 compared one model of each).")
    return text


def agreement_finding(agreement: pd.DataFrame, *, label: str) -> str:
    """How far the single-model schema's flags agree with the population schema's.

    The population schema is a reference, not the truth: with few models it has little
    power (``low_power``), so the sentence says "agree", gives counts beside rates, and
    says when the reference is weak.
    """
    flagged = agreement[(agreement["n_population"] > 0) | (agreement["mean_n_single"] > 0)]
    if flagged.empty:
        return f"{label}: neither schema flagged any class, so their agreement cannot be judged."
    if {"n_both_total", "n_single_total", "n_population_total"} <= set(flagged.columns):
        both = int(flagged["n_both_total"].sum())
        single_total = int(flagged["n_single_total"].sum())
        pop_total = int(flagged["n_population_total"].sum())
        parts = [f"{both} of {single_total} single-model class flags ({_pct(both / single_total)}) "
                 "agree with the population schema" if single_total else
                 "the single-model schema flagged no class",
                 f"they recover {both} of {pop_total} population flags ({_pct(both / pop_total)})"
                 if pop_total else "the population schema flagged no class"]
        text = f"{label}: summed over settings and seeds, " + "; ".join(parts) + "."
    else:
        p, r = flagged["mean_precision"].mean(), flagged["mean_recall"].mean()
        parts = [f"precision {_pct(p)}" if pd.notna(p) else "no single-model flags to check",
                 f"recall {_pct(r)}" if pd.notna(r) else "no population flags to find"]
        text = (f"{label}: the single-model schema's class flags agree with the population "
                f"schema's with {' and '.join(parts)} (means over settings and seeds; "
                f"{int(flagged['n_population'].sum())} population flags in all).")
    if "low_power" in agreement.columns and agreement["low_power"].fillna(False).astype(bool).any():
        seeds = int(agreement["n_seeds"].min()) if "n_seeds" in agreement.columns else None
        text += (f" The population schema has little power here"
                 + (f" ({seeds} models per population, fewer than {LOW_POWER_MODELS})" if seeds else "")
                 + ", so its flags are a weak reference, not ground truth.")
    return text


def null_finding(verdicts: pd.DataFrame, *, label: str) -> str:
    """Every schema's counts per setting against a null of the same design and size.

    Each count is quoted with its null's median and 95% range, its p-value and its null
    percentile (never a bare flag/no-flag verdict: near the threshold those flip with
    the machine). Classes counted after Benjamini-Hochberg are named as a departure from
    Hooker et al., whose code corrects nothing.

    Args:
        verdicts: :attr:`cielib.cie.CIEAnalysis.verdicts` (or its CSV).
    """
    if verdicts.empty:
        return f"{label}: no compressed model to compare with a null."
    names = {"classes": "classes flagged", "images": "impacted images",
             "classes, BH": "classes flagged after Benjamini-Hochberg (not in Hooker et al.'s code)",
             "CIE images": "CIE images"}
    out = []
    for schema, rows in verdicts.groupby("schema", sort=False):
        for setting, r in rows.groupby("setting", sort=False):
            first = r.iloc[0]
            size = (f"{int(first['n_base'])} models per side (Hooker et al.: 30)"
                    if schema == "population" else f"{int(first['n_base'])} pairs")
            parts = [f"{names.get(x['statistic'], x['statistic'])} {_placed(x)}"
                     for x in r.to_dict("records")]
            out.append(f"{schema} schema, {setting}, {first['design']}, {size}, null by "
                       f"{first['null']}: " + "; ".join(parts))
    return f"{label}: " + ". ".join(out) + "."


def efficiency_finding(efficiency: pd.DataFrame, *, label: str) -> str:
    """Training time of pruned runs relative to dense (the paper: every pruned run took longer).

    "As the paper reported" only when every pruned setting took longer (ratio > 1);
    otherwise the sentence says how many did not.
    """
    pruned = efficiency[efficiency.index > 0]
    if pruned.empty:
        return f"{label}: no pruned run to compare training time with."
    ratio = pruned["time_vs_dense"]
    span = (f"{ratio.iloc[0]:.2f}x" if len(ratio) == 1
            else f"{ratio.min():.2f}x to {ratio.max():.2f}x")
    text = f"{label}: pruned training took {span} the dense model's time"
    not_longer = ratio[ratio <= 1]
    if not_longer.empty:
        every = ("the pruned setting" if len(ratio) == 1
                 else f"every pruned setting ({len(ratio)})")
        return text + f"; {every} took longer than dense training, as the paper reported."
    where = ", ".join(f"{s:g}" for s in not_longer.index)
    return (text + f"; {len(ratio) - len(not_longer)} of {len(ratio)} pruned settings took longer than "
            f"dense training and {len(not_longer)} did not (sparsity {where}); in the paper every "
            f"pruned run took longer.")


def quantization_finding(runs: pd.DataFrame, *, label: str, paper_task: str | None = None) -> str:
    """Measured size and batch-1 speed of each technique against the float32 TFLite model.

    Techniques the paper did not run for ``paper_task`` are labelled as extensions
    (full-integer int8 always; every technique on the ResNet-50/CIFAR-100 task).
    """
    q = runs[(runs["stage"] == "quantize") & (runs["sparsity"] == 0)]
    if q.empty or "float32" not in set(q["technique"]):
        return f"{label}: no quantized models."

    every = paper_task == "resnet50_cifar100"  # the paper quantized nothing on this task

    def name(t: str) -> str:
        flagged = t == "full_int8" or (paper_task is not None and not every and not _paper_ran(t, paper_task))
        return f"{t} ({_extension(t, paper_task)})" if flagged else t

    size = q.groupby("technique")["tflite_bytes"].mean()
    parts = [f"{name(t)} {size['float32'] / size[t]:.2f}x smaller" for t in size.index if t != "float32"]
    text = (f"{label}: quantization is an extension on this task (the paper: \"the CIFAR-100 "
            f"experiments do not have any quantization comparatives\"); " if every else f"{label}: ")
    text += "against float32 TFLite, " + ", ".join(parts)
    if "latency_b1_ms" in q and q["latency_b1_ms"].notna().any():
        lat = q.dropna(subset=["latency_b1_ms"]).groupby("technique")["latency_b1_ms"].mean()
        speed = [f"{t} {lat['float32'] / lat[t]:.2f}x" for t in lat.index if t != "float32"]
        text += "; batch-1 speed-up on this CPU: " + ", ".join(speed)
    return text + "."
