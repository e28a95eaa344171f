"""The paper's numbers load as data and line up with ours by setting."""

import pandas as pd
import pytest

from cielib import paper_tables


def test_tables_load_and_match_the_text():
    t4 = paper_tables.paper_table(4)
    assert t4.loc["sparsity 0.9", "impacted_images"] == 409
    assert paper_tables.paper_table(1).loc["dense", "top1"] == pytest.approx(0.8587)
    assert set(paper_tables.paper_results()["table"]) == set(range(1, 10))
    with pytest.raises(ValueError, match="not 10"):
        paper_tables.paper_table(10)


def test_compare_labels_stand_ins_and_keeps_our_extra_settings():
    ours = pd.DataFrame({"top1": [0.9, 0.8], "micro_f1": [0.9, 0.8]}, index=["dense", "full_int8"])
    cmp = paper_tables.compare(3, ours, stand_in=True)
    assert ("top1", "this run (stand-in task)") in cmp.columns
    assert cmp.loc["dense", ("top1", "this run (stand-in task)")] == 0.9
    assert pd.isna(cmp.loc["full_int8", ("top1", "paper")])  # the paper gave up on full int8
    assert list(cmp.index[:2]) == ["dense", "sparsity 0.3"]
    assert ("top1", "this run") in paper_tables.compare(3, ours, stand_in=False).columns


def test_reproduced_tables_shapes():
    runs = pd.DataFrame([
        {"stage": "train", "setting": "dense", "sparsity": 0.0, "technique": None, "seed": s,
         "top1": 0.8 + s / 100, "micro_precision": 0.8, "micro_recall": 0.8, "micro_f1": 0.8,
         "final_val_accuracy": 0.79, "tflite_bytes": None} for s in (0, 1)] + [
        {"stage": "quantize", "setting": t, "sparsity": 0.0, "technique": t, "seed": 0, "top1": 0.8,
         "micro_f1": 0.8, "tflite_bytes": b} for t, b in (("float32", 400), ("float16", 200))])
    single = pd.DataFrame({"setting": ["float16", "float16"], "seed": [0, 1],
                           "impacted_classes": [1, 3], "impacted_images": [5.0, 9.0]})
    tabs = paper_tables.reproduced_tables(runs, single, paper_task="vgg19_cifar10")
    assert tabs[1].loc["dense", "top1"] == pytest.approx(0.805)
    assert tabs[5].loc["float16", "size_ratio"] == 2.0
    assert tabs[4].loc["float16", "impacted_images"] == 5.0  # first seed, like the paper's one model
    assert "float32" not in tabs[3].index
    with pytest.raises(ValueError, match="unknown paper_task"):
        paper_tables.reproduced_tables(runs, single, paper_task="x")
