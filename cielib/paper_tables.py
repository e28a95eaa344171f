"""The paper's published numbers (Tables 1-9), for side-by-side comparison only.

They are read from ``data_files/paper_results.csv`` (citation in
``paper_results.md`` beside it), never typed into code or prose, and never used as
results. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from cielib import paths

CITATION = ("S. Hooker, \"Rethinking Compression within Deep Neural Networks\", "
            "University of Warwick, 2020")
PAPER_TASKS = {"vgg19_cifar10": "VGG-19 on CIFAR-10", "resnet50_cifar100": "ResNet-50 on CIFAR-100"}
TABLES = {
    1: "uncompressed VGG-19, test metrics",
    2: "VGG-19 final validation accuracy per sparsity",
    3: "compressed VGG-19, test metrics",
    4: "VGG-19 impacted classes and images (single-model schema)",
    5: "quantized VGG-19 compression ratios",
    6: "uncompressed ResNet-50, test metrics",
    7: "ResNet-50 final validation accuracy per sparsity",
    8: "pruned ResNet-50, test metrics",
    9: "ResNet-50 impacted classes and images (single-model schema)",
}


@lru_cache(maxsize=1)
def _all() -> pd.DataFrame:
    return pd.read_csv(paths.DATA_FILES / "paper_results.csv")


def paper_results() -> pd.DataFrame:
    """Every published number: table, paper_task, setting, metric, value."""
    return _all().copy()


def paper_table(number: int) -> pd.DataFrame:
    """One table as settings x metrics."""
    if number not in TABLES:
        raise ValueError(f"the paper has tables {min(TABLES)}-{max(TABLES)}, not {number!r}")
    rows = _all()[_all()["table"] == number]
    return rows.pivot_table(index="setting", columns="metric", values="value", sort=False)


def compare(number: int, ours: pd.DataFrame, *, stand_in: bool) -> pd.DataFrame:
    """The paper's table beside ours: for each metric, ``paper`` and ``this run`` columns.

    Args:
        number: The paper's table number.
        ours: Settings x metrics, indexed by the same setting names (dense,
            sparsity 0.3, float16, ...), with the same metric names.
        stand_in: Whether our numbers come from a stand-in task (quick profile): then
            the columns say so, since the values are not comparable one to one.
    """
    theirs = paper_table(number)
    label = "this run (stand-in task)" if stand_in else "this run"
    cols = {}
    for metric in theirs.columns:
        cols[(metric, "paper")] = theirs[metric]
        cols[(metric, label)] = ours[metric] if metric in ours.columns else pd.Series(dtype=float)
    out = pd.DataFrame(cols)
    order = [*theirs.index, *[s for s in ours.index if s not in theirs.index]]
    out = out.reindex(order)  # the paper's settings first, then ours it lacks (full_int8)
    out.index.name = "setting"
    return out


TABLE_NUMBERS = {  # which of the paper's tables belong to which task, by kind
    "vgg19_cifar10": {"dense": 1, "val": 2, "test": 3, "cie": 4, "size": 5},
    "resnet50_cifar100": {"dense": 6, "val": 7, "test": 8, "cie": 9},
}


def reproduced_tables(runs: pd.DataFrame, single: pd.DataFrame | None, *, paper_task: str) -> dict[int, pd.DataFrame]:
    """Our numbers shaped like the paper's tables for one task.

    Args:
        runs: Index rows of the task's ``train`` and ``quantize`` runs, with a
            ``setting`` column (``cielib.runsets.setting_name``). Values are means over
            seeds; the paper trained one model per setting.
        single: The task's ``single_model_cie.csv`` (setting, seed, impacted_classes,
            impacted_images); the first seed stands beside the paper's one model.
        paper_task: Key of :data:`PAPER_TASKS`.

    Returns:
        ``{table number: settings x metrics}`` for the tables of that task.
    """
    if paper_task not in TABLE_NUMBERS:
        raise ValueError(f"unknown paper_task {paper_task!r}; allowed: {', '.join(TABLE_NUMBERS)}")
    nums = TABLE_NUMBERS[paper_task]
    train = runs[runs["stage"] == "train"]
    quant = runs[(runs["stage"] == "quantize") & (runs["sparsity"] == 0)]
    out: dict[int, pd.DataFrame] = {}
    dense_cols = ["top1", "micro_precision", "micro_recall", "micro_f1"]
    out[nums["dense"]] = train[train["setting"] == "dense"][dense_cols].mean().to_frame("dense").T
    out[nums["val"]] = train.groupby("setting", sort=False)[["final_val_accuracy"]].mean()
    test = pd.concat([train, quant[quant["technique"] != "float32"]])
    out[nums["test"]] = test.groupby("setting", sort=False)[["top1", "micro_f1"]].mean()
    if single is not None and len(single):
        first = single[single["seed"] == single["seed"].min()]
        out[nums["cie"]] = first.set_index("setting")[["impacted_classes", "impacted_images"]]
    if "size" in nums and len(quant):
        ref = quant[quant["technique"] == "float32"].set_index("seed")["tflite_bytes"]
        q = quant[quant["technique"] != "float32"]
        ratio = ref.reindex(q["seed"]).to_numpy() / q["tflite_bytes"].to_numpy()
        out[nums["size"]] = q.assign(size_ratio=ratio).groupby("setting", sort=False)[["size_ratio"]].mean()
    return out
