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
# # Which classes and images does compression hurt? (CIE)
#
# Two ways to find *Compression Identified Exemplars* are compared here on the same
# predictions:
#
# - **The paper's single-model schema** (Section IX, "CIE detection schema"): one dense
#   and one compressed model. A class is *outside the boundary* when its accuracy
#   deviates from the model's top-1 by more than the standard deviation of the dense
#   model's class accuracies; classes that cross that boundary under compression (in
#   either direction) are impacted, and the impacted images are the summed absolute
#   changes of those deviations times the class sizes.
# - **Hooker et al.'s population schema**: several independently trained dense models
#   and their compressed versions. A class is impacted when Welch's t-test finds its
#   *normalized* recall (class recall minus the model's top-1) differs between the two
#   populations; an image is a CIE when the most common prediction of the two
#   populations differs.
#
# Then we ask what neither paper did: does the cheap schema find what the expensive one
# finds?

# %% tags=["parameters"]
task = "demo"
task_label = ""
stand_in_for = ""
inputs = []  # run ids of the task's training and quantize runs (every setting and seed)
alpha = 0.05  # significance level of the t-tests
correction = "none"  # "none" or "fdr_bh" (Benjamini-Hochberg over classes)
runs_dir = "runs"
data_dir = None
run_dir = "."

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from cielib import cie, data, figures, results, runs

out = Path(run_dir)
table = results.with_settings(runs.table(runs_dir, inputs))  # every training and quantize run
y_true, preds = results.predictions_by_setting(table)
class_names = runs.read_json(Path(table["path"].iloc[0]) / runs.METRICS)["class_names"]
corr = None if correction == "none" else correction
title = task_label or task
base = preds.pop("dense")
seeds = sorted(base)
settings = dict(sorted(preds.items(), key=lambda kv: results.setting_order(kv[0])))
intro = (f"## {title}: compression identified exemplars\n\n{len(seeds)} dense model(s) "
         f"(seeds {', '.join(map(str, seeds))}) against {len(settings)} compression setting(s); "
         f"{len(y_true)} test images. Population tests at alpha = {alpha}"
         f"{', Benjamini-Hochberg corrected' if corr else ', uncorrected'}.")
display(Markdown(intro + results.stand_in_note(stand_in_for)))

# %% [markdown]
# ### The paper's schema: impacted classes and images per setting
#
# For each setting, the first seed alone (what the paper reports in its Tables 4 and 9,
# from one model), then the mean and spread over seeds, which the paper could not show.

# %%
single = cie.single_model_table(y_true, base, settings)
single.to_csv(out / "single_model_cie.csv", index=False)
first = single[single["seed"] == seeds[0]].set_index("setting")[
    ["impacted_classes", "classes", "impacted_images"]]
spread = single.groupby("setting")[["impacted_classes", "impacted_images"]].agg(["mean", "std"])
spread.columns = [f"{a}_{b}" for a, b in spread.columns]
paper_table = first.add_suffix(f" (seed {seeds[0]})").join(spread)
paper_table.round(2)

# %%
sparsity_rows = single[single["setting"].str.fullmatch(r"sparsity [\d.]+")].assign(
    sparsity=lambda d: d["setting"].str.split(" ").str[1].astype(float), task=title)
if len(sparsity_rows):
    fig = figures.metric_by_sparsity(sparsity_rows, metric="impacted_images",
                                     title=f"{title}: impacted images (paper's schema)",
                                     ylabel="impacted images")
    fig.savefig(out / "impacted_images_by_sparsity.png", dpi=110)
    plt.show()

# %% [markdown]
# ### Hooker et al.'s schema: significant classes and CIE images
#
# Needs at least two seeds per population. Top-1 and top-5 are the means over seeds.

# %%
pops = {}
rows = []
for name, by_seed in settings.items():
    common = [s for s in seeds if s in by_seed]
    if len(common) < 2:
        continue
    pop = cie.population_cie(y_true, results.stack_seeds(base, common),
                             results.stack_seeds(by_seed, common), alpha=alpha, correction=corr)
    pops[name] = pop
    runs_of = table[table["setting"] == name]
    rows.append({"setting": name, "seeds": len(common), "top1": runs_of["top1"].mean(),
                 "top5": runs_of["top5"].mean(),
                 "significant_classes": len(pop.impacted_classes),
                 "cie_images": int(pop.cie_images.size)})
dense_runs = table[table["setting"] == "dense"]
hooker = pd.DataFrame([{"setting": "dense", "seeds": len(seeds), "top1": dense_runs["top1"].mean(),
                        "top5": dense_runs["top5"].mean(), "significant_classes": 0,
                        "cie_images": 0}] + rows).set_index("setting")
hooker.to_csv(out / "population_cie.csv")
hooker.round(4) if pops else display(Markdown("*Fewer than two seeds: the population schema cannot run.*"))

# %% [markdown]
# ### Which classes moved, for the strongest compression
#
# Bars: change in mean recall (highlighted when the population test is significant);
# points: the normalized change, which discounts a drop shared by every class.

# %%
if pops:
    pruned = [n for n in pops if n.startswith("sparsity") and "+" not in n]
    strongest = pruned[-1] if pruned else list(pops)[-1]
    pop = pops[strongest]
    fig = figures.class_recall_change(pop.table, class_names=class_names,
                                      title=f"{title}: {strongest} vs dense")
    fig.savefig(out / "class_recall_change.png", dpi=110)
    plt.show()
    display(pop.table.assign(name=[class_names[i] for i in pop.table.index])
            .sort_values("p").head(10).round(4))

# %% [markdown]
# ### A gallery of CIE images
#
# Test images on which the two populations' most common predictions differ, with the
# true label and both modal predictions. Many are hard or ambiguous images: the
# population schema points a human auditor at them.

# %%
if pops and pops[strongest].cie_images.size:
    ds = data.load_dataset(table["dataset"].iloc[0], data_dir=data_dir)
    cie_rows = pops[strongest].images.loc[pops[strongest].cie_images]
    fig = figures.cie_gallery(ds.x_test, cie_rows, class_names=class_names, max_images=12,
                              title=f"{title}: CIE images under {strongest}")
    fig.savefig(out / "cie_gallery.png", dpi=110)
    plt.show()

# %% [markdown]
# ### Does the single-model schema find what the population schema finds?
#
# For every setting with at least two seeds: each seed's single-model flags are compared
# with the population's flags. Precision: the share of single-model flags the
# population confirms; recall: the share of population flags a single model finds.

# %%
agree = None
if pops:
    pairs = {name: (results.stack_seeds(base, [s for s in seeds if s in settings[name]]),
                    results.stack_seeds(settings[name], [s for s in seeds if s in settings[name]]))
             for name in pops}
    agree = cie.agreement_table(y_true, pairs, alpha=alpha, correction=corr)
    agree.to_csv(out / "agreement.csv")
    display(agree.round(3))

# %%
if agree is not None and len(agree):
    p, r = agree["mean_precision"].mean(), agree["mean_recall"].mean()
    display(Markdown(
        f"Across settings, a single model's flags were confirmed by the population test "
        f"{p:.0%} of the time (mean precision), and a single model found {r:.0%} of the "
        f"classes the population test flagged (mean recall)."
        if pd.notna(p) and pd.notna(r) else
        "The two schemas flagged too few classes to compare here."))

# %% tags=["assert"]
assert len(single) == sum(len([s for s in v if s in base]) for v in settings.values())
assert (single["impacted_images"] >= 0).all()
assert hooker["cie_images"].between(0, len(y_true)).all()
