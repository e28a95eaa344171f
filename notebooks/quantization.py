# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quantization results for one task
#
# The quantized models' test metrics, file sizes and speeds, read from the quantize
# runs in the store, beside the float32 TFLite reference made from the same trained
# model and beside TensorFlow's documented benefits (the paper's Table 5, extended to
# full-integer int8, which the paper could not get to work).

# %% tags=["parameters"]
task = None  # None (opened by hand): the first task found in the store
task_label = ""
stand_in_for = ""
paper_task = ""
inputs = None  # run ids of the task's quantize runs; None: the newest in the store
runs_dir = None  # None: the project's runs/ ($CIELIB_ROOT honoured)
run_dir = "."

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from cielib import compression, evaluate, paths, quantize, runs, runsets, tables

runs_dir = runs_dir or str(paths.runs_dir())
if inputs is None:  # opened by hand: the newest finished runs of one task in the store
    inputs, task = runsets.latest_inputs(runs_dir, stages=["quantize"], task=task)
out = Path(run_dir)
table = runsets.with_settings(runs.table(runs_dir, inputs))  # one row per quantized model (run x technique)
class_names = runs.read_json(Path(table["path"].iloc[0]) / runs.METRICS)["class_names"]
title = task_label or task
order = list(compression.names())  # the registry's order: reference first, then by strength
reference = compression.reference().name  # float32
table["technique"] = pd.Categorical(table["technique"], categories=order, ordered=True)
intro = (f"**{title}**: {len(table)} quantized model(s): "
         f"techniques {', '.join(sorted(set(map(str, table['technique'])), key=order.index))}, "
         f"seeds {', '.join(map(str, sorted(table['seed'].unique())))}.")
display(Markdown(intro + runsets.stand_in_note(stand_in_for)))

# %% [markdown]
# ### Test metrics per technique
#
# Mean over seeds. `agreement_with_keras` is the share of test images on which the
# TFLite model predicts the same class as the Keras model it was converted from.

# %%
cols = ["top1", "top5", "micro_f1", "macro_f1", "agreement_with_keras"]
metric_table = table.groupby(["sparsity", "technique"], observed=True)[cols].mean()
tables.present(metric_table, caption="Test metrics per quantization technique, mean over seeds", kind="test")

# %% [markdown]
# ### Size: measured against documented
#
# The compression ratio is the float32 TFLite file's size over the quantized file's
# size, for the same trained model; gzip shows what zeros (pruning) add on top.

# %%
ref = table[table["technique"] == reference].set_index(["sparsity", "seed"])
sized = table.merge(ref[["tflite_bytes", "tflite_gzip_bytes"]].add_suffix("_float32"),
                    left_on=["sparsity", "seed"], right_index=True, how="left")
sized["size_ratio"] = sized["tflite_bytes_float32"] / sized["tflite_bytes"]
sized["gzip_ratio"] = sized["tflite_bytes_float32"] / sized["tflite_gzip_bytes"]
size_table = sized.groupby(["sparsity", "technique"], observed=True)[
    ["tflite_bytes", "tflite_gzip_bytes", "size_ratio", "gzip_ratio"]].mean()
documented = pd.DataFrame.from_dict(quantize.DOCUMENTED, orient="index")
documented.index.name = "technique"
size_table = size_table.join(documented[["benefits", "size_factor"]], on="technique")
tables.present(size_table, caption="File sizes per technique beside TensorFlow's documented size factors", kind="size", paper_task=paper_task)

# %%
smallest = sized.loc[sized["tflite_gzip_bytes"].idxmin()]
display(Markdown(
    f"The smallest artefact is **{smallest['setting']}** at {int(smallest['tflite_gzip_bytes']):,} "
    f"bytes gzipped, {smallest['gzip_ratio']:.1f}x smaller than the float32 TFLite file of "
    f"the dense model it came from." if smallest["sparsity"] == 0 else
    f"The smallest artefact is **{smallest['setting']}** (pruned, quantized and gzipped) at "
    f"{int(smallest['tflite_gzip_bytes']):,} bytes, {smallest['gzip_ratio']:.1f}x smaller "
    f"than the float32 TFLite file of the same pruned model."))

# %% [markdown]
# ### Speed on this CPU
#
# Batch-1 latency and batch-256 throughput, medians after warm-up, one interpreter
# thread, measured once per technique (first seed); speed-up is float32 latency over
# the technique's. TensorFlow documents float16's benefit as *GPU* acceleration: on a
# CPU, float16 weights are expanded to float32 before use.

# %%
speed = table.dropna(subset=["latency_b1_ms"]) if "latency_b1_ms" in table else table.iloc[:0]
if len(speed):
    ref_speed = speed[speed["technique"] == reference].set_index("sparsity")
    speed = speed.assign(
        speedup_b1=lambda d: d["sparsity"].map(ref_speed["latency_b1_ms"]) / d["latency_b1_ms"],
        speedup_throughput=lambda d: d["throughput_ips"] / d["sparsity"].map(ref_speed["throughput_ips"]),
    )
    speed_table = speed.set_index(["sparsity", "technique"])[
        ["latency_b1_ms", "throughput_ips", "speedup_b1", "speedup_throughput"]].sort_index()
    speed_table = speed_table.join(documented[["speedup_low", "speedup_high"]], on="technique")
    display(tables.present(speed_table, caption="Latency and throughput per technique on this CPU", kind="speed", paper_task=paper_task))

# %% [markdown]
# ### Which classes move under the strongest quantization?
#
# Per-class precision, recall and F1 of the strongest technique that ran (full-integer
# int8, when it did) against the float32 TFLite model of the same seed, most harmed first.

# %%
first = int(table["seed"].min())
present = set(table.loc[(table["seed"] == first) & (table["sparsity"] == 0), "technique"].astype(str))
strongest = next((t for t in reversed(order) if t in present and t != reference), None)
if strongest and reference in present:
    reps = []
    for tech in (reference, strongest):
        pred = runs.load_predictions(runs.lookup(table, technique=tech, seed=first, sparsity=0.0).path)
        reps.append(evaluate.classification_report(pred["y_true"], pred["y_pred"],
                                                   class_names=class_names))
    change = evaluate.per_class_change(*reps)
    display(Markdown(f"`{strongest}` against `float32`, seed {first}:"))
    display(tables.present(change.head(20), caption="Per-class change of the strongest technique against float32, most harmed first", kind="quantized_report", paper_task=paper_task))

# %% tags=["assert"]
assert set(table["run_id"]) == set(inputs), "a quantize run is missing from the store"
assert not table.duplicated(["sparsity", "seed", "technique"]).any()
assert table["top1"].between(0, 1).all()
assert (sized["size_ratio"] > 0).all()
