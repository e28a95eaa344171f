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
# # Pruning results for one task
#
# This notebook reads the finished training runs of one task (every sparsity and seed)
# from the run store and lays out what the paper reports per task: training curves with
# every sparsity overlaid, final validation accuracy per sparsity, test metrics per
# sparsity, the class balance of the test set, normalized confusion matrices and
# classification reports of the dense and the most pruned model, and model sizes. It
# computes nothing new: every number comes from the runs' own files.

# %% tags=["parameters"]
task = None  # None (opened by hand): the first task found in the store
task_label = ""
stand_in_for = ""  # the paper's task this one stands in for (quick profile)
paper_task = ""  # the paper's task it reproduces or stands in for (vgg19_cifar10, ...)
profile = "quick"
inputs = None  # run ids of the task's training runs; None: the newest in the store
runs_dir = None  # None: the project's runs/ ($CIELIB_ROOT honoured)
run_dir = "."  # this analysis run's own output directory

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from cielib import evaluate, figures, paths, runs, runsets, tables

runs_dir = runs_dir or str(paths.runs_dir())
if inputs is None:  # opened by hand: the newest finished runs of one task in the store
    inputs, task = runsets.latest_inputs(runs_dir, stages=["train"], task=task)
out = Path(run_dir)
table = runs.table(runs_dir, inputs)  # one row per training run: key, path, metrics
hist = runsets.histories(table)
title = task_label or task
class_names = runs.read_json(Path(table["path"].iloc[0]) / runs.METRICS)["class_names"]
many = len(class_names) > 20
intro = (f"**{title}**, profile `{profile}`: {len(table)} training runs, sparsities "
         f"{', '.join(f'{s:g}' for s in sorted(table['sparsity'].unique()))}, seeds "
         f"{', '.join(str(s) for s in sorted(table['seed'].unique()))}.")
display(Markdown(intro + runsets.stand_in_note(stand_in_for)))

# %% [markdown]
# ### Training with pruning
#
# Validation accuracy and cross-entropy loss per epoch, one line per sparsity (mean over
# seeds, the band spans the seeds), as in the paper's Figures 20/21 (VGG-19) and 28/29
# (ResNet-50). Pruned runs ramp their sparsity up during training, so their curves show
# the cost of each step of the ramp.

# %%
for metric in ("val_accuracy", "val_loss"):
    fig = figures.overlay_by(hist, hue="sparsity", metric=metric,
                             title=f"{title}: {metric.replace('_', ' ')} per epoch")
    fig.savefig(out / f"{metric}_by_sparsity.png", dpi=110)
plt.show()

# %% [markdown]
# **Final validation accuracy per sparsity** (the paper's Tables 2 and 7): mean and
# standard deviation over seeds.

# %%
final_val = (table.groupby("sparsity")["final_val_accuracy"].agg(["mean", "std", "count"])
             .rename(columns={"mean": "val_accuracy_mean", "std": "val_accuracy_std",
                              "count": "seeds"}))
tables.present(final_val, caption="Final validation accuracy per sparsity: mean and standard deviation over seeds", kind="val", paper_task=paper_task)

# %% [markdown]
# ### Test metrics per sparsity
#
# Top-1, top-5 and micro-averaged precision, recall and F1 (the paper's Tables 3 and 8),
# plus macro F1, mean over seeds. Micro-averaged precision, recall and F1 equal top-1
# in every single-label multiclass problem, balanced or not (each wrong prediction is
# one false positive and one false negative); macro F1 is where classes differ.

# %%
metric_cols = ["top1", "top5", "micro_precision", "micro_recall", "micro_f1", "macro_f1"]
test_table = table.groupby("sparsity")[metric_cols].mean()
test_table["top1_std"] = table.groupby("sparsity")["top1"].std()
tables.present(test_table, caption="Test metrics per sparsity, mean over seeds", kind="test", paper_task=paper_task)

# %%
fig = figures.metric_by_sparsity(table.assign(task=title), metric="top1",
                                 title=f"{title}: test top-1 per sparsity", ylabel="top-1")
fig.savefig(out / "top1_by_sparsity.png", dpi=110)
plt.show()

# %% [markdown]
# ### Size and measured sparsity
#
# The stripped model's measured sparsity (every prunable kernel; a run that misses its
# target by more than 0.01 fails), the saved `.keras` file size, and its gzip size.
# Zeros are stored like any other number, so pruning only shrinks the file once it is
# compressed.

# %%
size_table = table.groupby("sparsity")[["measured_sparsity", "model_bytes", "gzip_bytes"]].mean()
size_table["gzip_ratio_vs_dense"] = size_table["gzip_bytes"].iloc[0] / size_table["gzip_bytes"]
tables.present(size_table, caption="Measured sparsity and saved model size per sparsity", kind="size")

# %% [markdown]
# ### The test set's class balance
#
# The paper's Figure 17 shows its test set's class sizes; ours are below. (The
# micro-averaged precision, recall and F1 above equal top-1 whatever the balance: in a
# single-label multiclass problem every wrong prediction is one false positive and one
# false negative.)

# %%
seed0 = int(table["seed"].min())
pred_any = runs.load_predictions(runs.lookup(table, sparsity=0.0, seed=seed0).path)
balance = evaluate.class_balance(pred_any["y_true"], class_names=class_names)
tables.present(balance.T if not many else balance.describe().T, caption="Test images per class", kind="class_balance", paper_task=paper_task)

# %% [markdown]
# ### The dense model and the most pruned model, class by class
#
# Normalized confusion matrices (rows: true class, each row sums to 1; the paper's
# Figures 18 and 23) and classification reports (Figures 19 and 24), for the first seed.

# %%
most = float(table["sparsity"].max())
chosen = [(0.0, "dense"), (most, f"sparsity {most:g}")] if most > 0 else [(0.0, "dense")]
reports = {}
for sparsity, name in chosen:
    row = runsets.first_seed_per_setting(table[table["sparsity"] == sparsity]).iloc[0]
    pred = runs.load_predictions(row["path"])
    cm = evaluate.confusion_matrix(pred["y_true"], pred["y_pred"], class_names=class_names,
                                   normalize="true")
    fig = figures.confusion_heatmap(cm, title=f"{title}, {name}, seed {row['seed']}: "
                                              "normalized confusion")
    fig.savefig(out / f"confusion_{sparsity:g}.png", dpi=110)
    reports[name] = evaluate.classification_report(pred["y_true"], pred["y_pred"],
                                                   class_names=class_names)
plt.show()

# %%
for name, rep in reports.items():
    if many:
        continue
    fig = figures.classification_report_table(rep, title=f"{title}, {name}: classification report")
plt.show()

# %% [markdown]
# **Per-class change from the dense model to the most pruned one**, most harmed first:
# the classes the headline accuracy hides.

# %%
if len(reports) == 2:
    change = evaluate.per_class_change(*reports.values())
    display(tables.present(change.head(20) if many else change, caption="Per-class change from the dense to the most pruned model, most harmed first", kind="per_class_change"))

# %% tags=["assert"]
assert len(table) == len(inputs), "a training run is missing from the store"
assert set(table["run_id"]) == set(inputs)
assert table["top1"].between(0, 1).all()
assert (table["measured_sparsity"] - table["sparsity"]).abs().max() <= 0.01
