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
# # Results for one task
#
# This notebook reads the finished training runs of one task from the run store and
# shows how they trained. It computes nothing new: every number below comes from the
# runs' own `metrics.json` and `history.csv` files.

# %% tags=["parameters"]
task = "demo"
task_label = ""
stand_in_for = ""  # the paper's task this one stands in for (quick profile)
profile = "quick"
inputs = []  # run ids of the task's training runs
runs_dir = "runs"
run_dir = "."  # this analysis run's own output directory

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from cielib import plots, results

train_dirs = results.find_runs(runs_dir, "train", inputs)
table = results.run_table(train_dirs)
hist = results.histories(train_dirs)
title = task_label or task
intro = f"## {title}\n\nProfile `{profile}`: {len(train_dirs)} training run(s)."
if stand_in_for:
    intro += f" This task is a **stand-in** for the paper's *{stand_in_for}* task."
display(Markdown(intro))

# %% [markdown]
# ### Training curves
#
# Validation accuracy and cross-entropy loss per epoch. Each line is the mean over the
# seeds of one sparsity; the shaded band spans the seeds.

# %%
for metric in ("val_accuracy", "val_loss"):
    fig = plots.curves_by(hist, hue="sparsity", metric=metric, title=f"{title}: {metric}")
    fig.savefig(Path(run_dir) / f"{metric}_by_sparsity.png", dpi=110)
plt.show()

# %% [markdown]
# ### Train vs validation, per seed

# %%
for d in train_dirs:
    seed = table.loc[table["run_id"] == d.name, "seed"].item()
    fig = plots.training_curves(hist[hist["run_id"] == d.name], title=f"{title}, seed {seed}")
plt.show()

# %% [markdown]
# ### Test accuracy per run

# %%
cols = ["run_id", "sparsity", "seed", "top1", "final_val_accuracy", "train_seconds", "epochs_run"]
table[cols].sort_values(["sparsity", "seed"]).round(4)

# %%
summary = table.groupby("sparsity")["top1"].agg(["mean", "std", "min", "max", "count"])
summary.round(4)

# %% tags=["assert"]
assert len(table) == len(inputs), "a training run is missing from the store"
assert table["top1"].between(0, 1).all()
