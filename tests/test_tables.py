"""Table presentation: readable headers, numbers written as the paper writes them, captions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cielib import tables

ROOT = Path(__file__).resolve().parent.parent


def test_headers_known_and_generic():
    assert tables.header("val_accuracy_mean") == "Validation accuracy (mean)"
    assert tables.header("n_cie_images_population") == "CIE images (population)"
    assert tables.header("top1") == "Top-1" and tables.header("macro_f1") == "Macro F1"
    assert tables.header("recall_delta") == "Recall change"
    # a column nobody mapped still reads as words, its statistic in brackets
    assert tables.header("widget_accuracy_mean") == "Widget accuracy (mean)"
    assert tables.header("latency_b8_ms") == "Latency b8 (ms)"
    # already words, or not a string: unchanged
    assert tables.header("T-shirt/top") == "T-shirt/top" and tables.header(3) == 3


def test_every_project_column_reads_as_words():
    """No snake_case survives for the column names the notebooks and cielib produce."""
    names = ["val_accuracy_mean", "val_accuracy_std", "n_cie_images_single", "n_cie_images_population",
             "top1", "top5", "micro_precision", "micro_recall", "micro_f1", "macro_f1", "top1_std",
             "measured_sparsity", "model_bytes", "gzip_bytes", "gzip_ratio_vs_dense", "agreement_with_keras",
             "tflite_bytes", "tflite_gzip_bytes", "size_ratio", "gzip_ratio", "latency_b1_ms",
             "throughput_ips", "speedup_b1", "speedup_throughput", "speedup_low", "speedup_high",
             "train_seconds", "images_per_s", "step_ms_median", "time_vs_dense", "throughput_vs_dense",
             "hw_utilization_mean_pct", "hw_energy_j", "impacted_classes_mean", "impacted_images_std",
             "significant_classes", "cie_images", "mean_precision", "mean_recall", "mean_f1",
             "mean_n_single", "n_population", "mean_impacted_images_single", "p_adjusted",
             "mean_norm_recall_base", "precision_before", "f1_after", "recall_delta"]
    for name in names:
        assert "_" not in tables.header(name), name


@pytest.mark.parametrize("name,value,text", [
    ("top1", 0.85874, "85.87%"),
    ("val_accuracy_mean", 0.5, "50.00%"),
    ("macro_f1", float("nan"), ""),
    ("recall_delta", -0.0523, "-5.23 pp"),
    ("impacted_images", 12345, "12,345"),
    ("impacted_images_mean", 12.25, "12.2"),  # a mean of counts keeps one decimal
    ("n_cie_images_population", 1500.0, "1,500"),
    ("tflite_bytes", 1_234_567, "1.23 MB"),
    ("gzip_bytes", 950, "950 B"),
    ("size_ratio", 3.99, "3.99×"),
    ("hw_utilization_mean_pct", 87.25, "87.2%"),
    ("p", 0.0001234, "0.00012"),
    ("images_per_s", 1234.5, "1,234.50"),
])
def test_numbers_written_by_kind(name, value, text):
    assert tables.formatter(tables.kind_of(name))(value) == text


def test_present_renders_headers_numbers_and_caption():
    df = pd.DataFrame({"val_accuracy_mean": [0.9123, 0.8], "val_accuracy_std": [0.01, 0.02],
                       "seeds": [3, 3], "gzip_bytes": [2_000_000, 500_000]},
                      index=pd.Index([0.0, 0.9], name="sparsity"))
    html = tables.present(df, caption="Final validation accuracy per sparsity", kind="val",
                          paper_task="VGG-19 on CIFAR-10").to_html()
    assert "Validation accuracy (mean)" in html and "val_accuracy_mean" not in html
    assert "91.23%" in html and "2.00 MB" in html and ">0.90<" in html
    caption = re.search(r"<caption>(.*?)</caption>", html, re.S).group(1)
    assert caption == "Final validation accuracy per sparsity. Corresponds to the paper's Table 2."
    assert df.loc[0.0, "val_accuracy_mean"] == 0.9123  # the data is not touched


def test_present_multiindex_columns_and_overrides():
    cols = pd.MultiIndex.from_tuples([("top1", "paper"), ("top1", "this run"), ("impacted_images", "paper")])
    df = pd.DataFrame([[0.8587, 0.91, 1234.0]], columns=cols, index=pd.Index(["dense"], name="setting"))
    html = tables.present(df, kinds={"impacted_images": "number"}).to_html()
    assert "Top-1" in html and "85.87%" in html and "91.00%" in html and "1,234.00" in html
    assert "Setting" in html


def test_present_marks_wide_tables_and_refuses_bad_options():
    wide = pd.DataFrame(np.zeros((2, 9)), columns=[f"metric_{i}" for i in range(9)])
    assert 'class="cielib-table cielib-wide"' in tables.present(wide).to_html()
    with pytest.raises(ValueError, match="unknown kind.*'pie'"):
        tables.present(wide, kinds={"metric_0": "pie"})
    with pytest.raises(ValueError, match="unknown kind 'tabel'"):
        tables.present(wide, kind="tabel")
    with pytest.raises(ValueError, match="DataFrame or Series"):
        tables.present([1, 2])


def test_paper_refs():
    assert tables.paper_ref("test", paper_task="resnet50_cifar100") == "Corresponds to the paper's Table 8."
    assert tables.paper_ref("val") == "Corresponds to the paper's Table 2 and Table 7."
    assert tables.paper_ref("size", paper_task="ResNet-50 on CIFAR-100") == "No counterpart in the paper for this task."
    assert "extension" in tables.paper_ref("agreement")
    with pytest.raises(ValueError, match="unknown paper_task 'MNIST'"):
        tables.paper_ref("val", paper_task="MNIST")


@pytest.mark.slow
def test_show_figure_caption_survives_a_kernel_run(tmp_path):
    """In a real kernel, the caption lands in the figure output's metadata (what report reads)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import sys; sys.path.insert(0, %r)\n"
        "import matplotlib.pyplot as plt\n"
        "from cielib import tables\n"
        "fig, ax = plt.subplots(); ax.plot([0, 1], [1, 0])\n"
        "tables.show_figure(fig, caption='Validation accuracy per epoch', kind='training_curves',\n"
        "                   paper_task='vgg19_cifar10')\n"
        "plt.show()" % str(ROOT))]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = [o for o in nb.cells[0].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # closed after display: plt.show() does not repeat it
    assert images[0]["metadata"]["caption"] == (
        "Validation accuracy per epoch. Corresponds to the paper's Figures 20 and 21.")


def test_present_refuses_tables_wider_than_the_report_shows():
    from cielib.tables import MAX_COLUMNS

    ok = pd.DataFrame([range(MAX_COLUMNS - 1)], columns=[f"c{i}" for i in range(MAX_COLUMNS - 1)])
    tables.present(ok)  # 11 columns + the index = 12
    tables.present(ok.assign(extra=1), index=False)  # 12 without the index
    with pytest.raises(ValueError, match="at most 12.*CSV"):
        tables.present(ok.assign(extra=1))


def test_verdict_table_has_at_most_eight_columns_and_names_its_null():
    import numpy as np

    from cielib import cie

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 20)
    base = {s: np.where(rng.random(80) < 0.8, y, (y + 1) % 4) for s in range(3)}
    comp = {1000 + s: np.where(rng.random(80) < 0.7, y, (y + 1) % 4) for s in range(3)}
    a = cie.analyse(y, base, {"sparsity 0.9": comp}, {"sparsity 0.9": "independent"}, n_null=50)
    shown = cie.verdict_table(a.verdicts)
    assert shown.shape[1] <= 8 and len(shown) == len(a.verdicts)
    assert shown["null_kind"].str.contains(r"^permutation( pairs)?, 3 vs 3, ").all()
    assert shown["null_range"].str.fullmatch(r"[\d.,]+ \[[\d.,]+–[\d.,]+\]").all()
    html = tables.present(shown, index=False).to_html()
    assert "Null median [95% range]" in html and "Null percentile" in html
