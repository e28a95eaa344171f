"""cielib.figures: each figure builds for 10 and 100 classes, has the expected parts, saves."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer

from cielib import evaluate as ev
from cielib import figures as fg


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labels(n_classes: int, n: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, n_classes, n))
    return y_true, y_pred


def _save(fig, tmp_path: Path, name: str) -> Path:
    out = tmp_path / f"{name}.png"
    fig.savefig(out, dpi=40)
    assert out.stat().st_size > 0
    return out


def _visible_ticklabels(labels) -> list[str]:
    return [t.get_text() for t in labels if t.get_text()]


@pytest.mark.parametrize("n_classes", [10, 100])
@pytest.mark.parametrize("normalize", [None, "true"])
def test_confusion_heatmap(tmp_path, n_classes, normalize):
    y_true, y_pred = _labels(n_classes)
    cm = ev.confusion_matrix(y_true, y_pred, n_classes=n_classes, normalize=normalize)
    fig = fg.confusion_heatmap(cm, title="cm")
    assert len(fig.axes) == 2  # heatmap + colour bar
    ax = fig.axes[0]
    if n_classes == 10:
        assert len(ax.texts) == 100
        first = ax.texts[0].get_text()
        if normalize:
            assert first == f"{cm.iloc[0, 0]:.2f}"
        else:
            assert first == str(cm.iloc[0, 0])
        assert len(_visible_ticklabels(ax.get_xticklabels())) == 10
    else:
        assert len(ax.texts) == 0
        assert 2 <= len(_visible_ticklabels(ax.get_xticklabels())) <= 20
        assert 2 <= len(_visible_ticklabels(ax.get_yticklabels())) <= 20
    assert ax.get_title() == "cm"
    _save(fig, tmp_path, f"cm{n_classes}{normalize}")


def test_confusion_heatmap_annotate_override():
    y_true, y_pred = _labels(10)
    cm = ev.confusion_matrix(y_true, y_pred, normalize="true")
    assert len(fg.confusion_heatmap(cm, annotate=False).axes[0].texts) == 0
    small = cm.iloc[:3, :3]
    assert len(fg.confusion_heatmap(small, annotate=True).axes[0].texts) == 9
    with pytest.raises(ValueError, match=r"\(10, 3\)"):
        fg.confusion_heatmap(cm.iloc[:, :3])


def test_confusion_heatmap_with_names_and_deterministic(tmp_path):
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    y_true, y_pred = _labels(10)
    cm = ev.confusion_matrix(y_true, y_pred, class_names=names, normalize="true")
    fig = fg.confusion_heatmap(cm)
    assert _visible_ticklabels(fig.axes[0].get_yticklabels()) == names
    a = _save(fig, tmp_path, "a").read_bytes()
    b = _save(fg.confusion_heatmap(cm), tmp_path, "b").read_bytes()
    assert a == b


@pytest.mark.parametrize("n_classes", [10, 100])
def test_classification_report_table(tmp_path, n_classes):
    y_true, y_pred = _labels(n_classes)
    rep = ev.classification_report(y_true, y_pred, n_classes=n_classes)
    subset = rep if n_classes == 10 else rep.iloc[list(range(15)) + [-3, -2, -1]]
    fig = fg.classification_report_table(subset, title="report")
    assert len(fig.axes) == 2  # table + colour bar
    ax = fig.axes[0]
    rows = len(subset)
    assert len(ax.texts) == 4 * rows  # 3 metric annotations + support per row
    texts = [t.get_text() for t in ax.texts]
    assert str(int(subset["support"].iloc[0])) in texts
    assert f"{subset['recall'].iloc[0]:.2f}" in texts
    assert [t.get_text() for t in ax.get_xticklabels()] == ["precision", "recall", "f1", "support"]
    assert len(ax.get_yticklabels()) == rows
    assert len(ax.lines) == 1  # separator above the average rows
    _save(fig, tmp_path, f"rep{n_classes}")


def test_classification_report_table_full_100_and_bad_input(tmp_path):
    y_true, y_pred = _labels(100)
    rep = ev.classification_report(y_true, y_pred, n_classes=100)
    fig = fg.classification_report_table(rep)  # draws whatever it is given
    assert len(fig.axes[0].texts) == 4 * 103
    _save(fig, tmp_path, "rep_full")
    with pytest.raises(ValueError, match="support"):
        fg.classification_report_table(rep.drop(columns="support"))


def _runs(tasks: bool) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for task in (["cifar10_vgg", "cifar100_resnet"] if tasks else [None]):
        for s in (0.0, 0.3, 0.5, 0.7, 0.9):
            for seed in range(3):
                row = {"sparsity": s, "seed": seed, "val_accuracy": 0.86 - 0.05 * s**4 + rng.normal(0, 0.003)}
                if task:
                    row["task"] = task
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("tasks", [False, True])
def test_metric_by_sparsity(tmp_path, tasks):
    df = _runs(tasks)
    fig = fg.metric_by_sparsity(df, metric="val_accuracy", title="final", ylabel="accuracy")
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == (2 if tasks else 1)
    x, y = containers[0].lines[0].get_data()
    np.testing.assert_allclose(x, [0.0, 0.3, 0.5, 0.7, 0.9])
    first = df if not tasks else df[df["task"] == "cifar100_resnet"]  # groups sorted by name
    np.testing.assert_allclose(y, first.groupby("sparsity")["val_accuracy"].mean().to_numpy())
    assert ax.get_ylabel() == "accuracy"
    assert (ax.get_legend() is not None) == tasks
    _save(fig, tmp_path, f"sp{tasks}")


def test_metric_by_sparsity_single_seed_and_missing_column():
    df = _runs(False).query("seed == 0")
    fig = fg.metric_by_sparsity(df, metric="val_accuracy")
    assert fig.axes[0].get_ylabel() == "val accuracy"
    with pytest.raises(ValueError, match="impacted"):
        fg.metric_by_sparsity(df, metric="impacted")


def _histories(n_seeds: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for s in (0.0, 0.3, 0.5, 0.7, 0.9):
        for seed in range(n_seeds):
            for epoch in range(1, 11):
                rows.append({"epoch": epoch, "sparsity": s, "seed": seed,
                             "val_accuracy": 1 - 1 / (epoch + 1) - 0.1 * s + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n_seeds", [1, 3])
def test_overlay_by(tmp_path, n_seeds):
    h = _histories(n_seeds)
    fig = fg.overlay_by(h, hue="sparsity", metric="val_accuracy", title="validation accuracy")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 5
    shaded = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(shaded) == (5 if n_seeds > 1 else 0)
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "sparsity"
    assert [t.get_text() for t in legend.get_texts()] == ["0.0", "0.3", "0.5", "0.7", "0.9"]
    np.testing.assert_allclose(
        ax.get_lines()[0].get_ydata(),
        h[h["sparsity"] == 0.0].groupby("epoch")["val_accuracy"].mean().to_numpy(),
    )
    _save(fig, tmp_path, f"ov{n_seeds}")
    with pytest.raises(ValueError, match="val_loss"):
        fg.overlay_by(h, hue="sparsity", metric="val_loss")


def test_figures_close_nothing():
    y_true, y_pred = _labels(10)
    cm = ev.confusion_matrix(y_true, y_pred, normalize="true")
    before = plt.figure()
    fig = fg.confusion_heatmap(cm)
    assert plt.fignum_exists(before.number) and plt.fignum_exists(fig.number)


def test_training_curves_two_panels_train_and_validation():
    import pandas as pd

    from cielib import figures

    hist = pd.DataFrame({"epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.5], "val_loss": [1.1, 0.8, 0.7],
                         "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.45, 0.6, 0.7]})
    fig = figures.training_curves(hist, title="t")
    assert len(fig.axes) == 2 and all(len(ax.lines) == 2 for ax in fig.axes)
    import pytest
    with pytest.raises(ValueError, match="val_loss"):
        figures.training_curves(hist.drop(columns="val_loss"))


def test_null_verdicts_draws_one_panel_per_count_with_the_observed_marker():
    import numpy as np

    from cielib import cie

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 20)
    base = {s: np.where(rng.random(80) < 0.8, y, (y + 1) % 4) for s in range(4)}
    comp = {1000 + s: np.where(rng.random(80) < 0.7, y, (y + 1) % 4) for s in range(4)}
    quant = {s: p.copy() for s, p in base.items()}
    a = cie.analyse(y, base, {"sparsity 0.9": comp, "int8": quant},
                    {"sparsity 0.9": "independent", "int8": "paired"}, n_null=30)
    rows = a.verdicts[a.verdicts["schema"] == "population"]
    fig = fg.null_verdicts(rows, a.population_null, title="T")
    assert len(fig.axes) == 3  # classes, classes after BH, CIE images
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum(t.startswith("p=") for t in texts) == 6  # one p-value per setting and count
    observed = fig.axes[2].collections[-1].get_offsets()  # the last setting's red diamond
    assert observed[0][1] == rows[rows["statistic"] == "CIE images"]["observed"].iloc[-1]
    plt.close(fig)
    with pytest.raises(ValueError, match="mixes schemas"):
        fg.null_verdicts(a.verdicts, a.population_null)
