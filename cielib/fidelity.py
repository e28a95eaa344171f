"""Does a reading reproduce the paper? Dense top-1 per task and input resolution.

The paper reports one dense model per task: 85.87% top-1 for VGG-19 on CIFAR-10
(Table 1) and 77.31% for ResNet-50 on CIFAR-100 (Table 6), and never states the input
resolution. ``configs/paper-fidelity.toml`` trains the dense model of both tasks at
CIFAR's own 32x32 and upsampled to 224x224; :func:`resolution_check` sets each
beside the paper's number (read from ``data_files/paper_results.csv``, never typed)
and says which lands within a tolerance (3 points).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import pandas as pd

from cielib import paper_tables

__all__ = ["DENSE_TABLE", "TOLERANCE", "resolution_check", "resolution_finding"]

#: The paper's table holding each task's dense model.
DENSE_TABLE = {"vgg19_cifar10": 1, "resnet50_cifar100": 6}
#: Within this many points of top-1 (as a fraction), a reading reproduces the paper.
TOLERANCE = 0.03


def resolution_check(index: pd.DataFrame, tasks: list[dict], *, tolerance: float = TOLERANCE
                     ) -> pd.DataFrame:
    """Dense top-1 of each paper task and input resolution beside the paper's.

    Args:
        index: Run table (``cielib.runs.table``) holding the tasks' training runs.
        tasks: ``[{"name", "label", "paper_task", "stand_in_for"}]`` as the discussion
            receives them; stand-in tasks are left out.
        tolerance: Largest absolute top-1 difference (fraction) that counts as a match.

    Returns:
        One row per task with a paper task and dense runs: ``task``, ``paper_task``,
        ``input resolution``, ``seeds``, ``top1`` (mean over seeds), ``paper top1``,
        ``difference (points)``, ``within`` (bool).
    """
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance must be a fraction in (0, 1), got {tolerance!r}")
    rows = []
    train = index[(index["stage"] == "train") & (index["sparsity"] == 0) & index["technique"].isna()]
    for t in tasks:
        number = DENSE_TABLE.get(t.get("paper_task") or "")
        runs = train[train["task"] == t["name"]]
        if number is None or runs.empty or t.get("stand_in_for"):  # stand-ins are not the paper
            continue
        size = int(runs["input_size"].fillna(0).iloc[0]) if "input_size" in runs else 0
        ours = float(runs["top1"].mean())
        theirs = float(paper_tables.paper_table(number).loc["dense", "top1"])
        rows.append({"task": t["label"], "paper_task": t["paper_task"],
                     "input resolution": f"{size}x{size}" if size else "images' own size",
                     "seeds": int(len(runs)), "top1": ours, "paper top1": theirs,
                     "difference (points)": 100 * (ours - theirs),
                     "within": abs(ours - theirs) <= tolerance})
    return pd.DataFrame(rows, columns=["task", "paper_task", "input resolution", "seeds", "top1",
                                       "paper top1", "difference (points)", "within"])


def resolution_finding(check: pd.DataFrame, *, tolerance: float = TOLERANCE) -> str:
    """One sentence per paper task: which readings land within ``tolerance`` of the paper."""
    out = []
    for paper_task, rows in check.groupby("paper_task", sort=False):
        hits = rows[rows["within"]]
        label = paper_tables.PAPER_TASKS.get(paper_task, paper_task)
        got = ", ".join(f"{r['input resolution']} {r['top1']:.2%}" for _, r in rows.iterrows())
        which = (" and ".join(hits["input resolution"]) + " lands within" if len(hits)
                 else "no reading lands within")
        out.append(f"{label} (paper {rows['paper top1'].iloc[0]:.2%}; here {got}): {which} "
                   f"{100 * tolerance:g} points of the paper.")
    return " ".join(out)
