"""Predictions brought from outside (``run_all.py --predictions DIR``): the format's
checks (every bad input exits 2 naming the file, nothing written), the run's identity,
and planted populations found (or not) through the whole command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import run_all as run_all_script
from cielib import predictions
from cielib.predictions import PredictionsError
from tests.conftest import run_all

K = 10  # classes
M = 60  # test images per class
P = 0.9  # every model's chance of getting a test image right
NAMES = [f"kind-{c}" for c in "abcdefghij"]


def model_predictions(rng: np.random.Generator, y_true: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """One model: each image right with its class's recall, else a uniformly wrong class."""
    right = rng.random(y_true.size) < recall[y_true]
    wrong = (y_true + rng.integers(1, K, y_true.size)) % K
    return np.where(right, y_true, wrong)


def write_directory(root: Path, *, n_dense: int = 4, n_comp: int = 2, planted: int | None = None,
                    drop: float = 0.0, seed: int = 0, paired: bool = False) -> Path:
    """A predictions directory: ``dense/`` (seeds 0..), ``pruned/`` (independent seeds
    1000..; class ``planted``'s recall lowered by ``drop``), optionally ``int8/`` (each
    dense model with 1% of its predictions changed, declared paired), classes.txt."""
    rng = np.random.default_rng(seed)
    y_true = np.repeat(np.arange(K), M)
    recall = np.full(K, P)
    lowered = recall.copy()
    if planted is not None:
        lowered[planted] -= drop
    (root / "dense").mkdir(parents=True)
    (root / "pruned").mkdir()
    dense = {}
    for s in range(n_dense):
        dense[s] = model_predictions(rng, y_true, recall)
        np.savez(root / "dense" / f"{s}.npz", y_pred=dense[s], y_true=y_true)
    for s in range(1000, 1000 + n_comp):
        np.savez(root / "pruned" / f"{s}.npz", y_pred=model_predictions(rng, y_true, lowered), y_true=y_true)
    if paired:
        (root / "int8").mkdir()
        for s, y in dense.items():
            flip = rng.random(y.size) < 0.01
            np.savez(root / "int8" / f"{s}.npz", y_pred=np.where(flip, (y + 1) % K, y), y_true=y_true)
        (root / "design.toml").write_text('paired = ["int8"]\n')
    (root / "classes.txt").write_text("\n".join(NAMES) + "\n")
    return root


def welch_power(*, n: int, drop: float, alpha: float = 0.05) -> float:
    """Power of the population schema's two-sided Welch test, n models per side, for one
    class whose recall drops by ``drop`` (per-model recall ~ Binomial(M, p) / M; the
    "population" normalization subtracts the top-1 drop, drop / K, from the shift)."""
    v1, v2 = P * (1 - P) / M, (P - drop) * (1 - P + drop) / M
    se = np.sqrt(v1 / n + v2 / n)
    df = (v1 / n + v2 / n) ** 2 / ((v1 / n) ** 2 / (n - 1) + (v2 / n) ** 2 / (n - 1))
    t, ncp = stats.t.ppf(1 - alpha / 2, df), drop * (1 - 1 / K) / se
    return float(stats.nct.sf(t, df, ncp) + stats.nct.cdf(-t, df, ncp))


# --- the format: a good directory, and its identity -----------------------------------


def test_load_returns_the_notebook_variables(tmp_path):
    root = write_directory(tmp_path / "mine", paired=True)
    pred = predictions.load(root)
    assert sorted(pred.base) == [0, 1, 2, 3]
    assert pred.designs == {"int8": "paired", "pruned": "independent"}
    assert sorted(pred.settings["pruned"]) == [1000, 1001]
    assert pred.class_names == NAMES and pred.images is None and pred.name == "mine"
    assert pred.y_true.shape == (K * M,)


def test_content_hash_ignores_the_path_and_hidden_files_but_not_content(tmp_path):
    a = write_directory(tmp_path / "a" / "mine")
    b = write_directory(tmp_path / "b" / "mine")
    assert predictions.content_hash(a) == predictions.content_hash(b)
    (b / ".ipynb_checkpoints").mkdir()
    (b / ".ipynb_checkpoints" / "x.txt").write_text("x")
    assert predictions.content_hash(a) == predictions.content_hash(b)
    np.savez(b / "pruned" / "1000.npz", y_pred=np.zeros(K * M, int), y_true=np.repeat(np.arange(K), M))
    assert predictions.content_hash(a) != predictions.content_hash(b)


def test_same_files_elsewhere_same_run_id_and_a_change_is_refused(tmp_path, project):
    from cielib import plan

    a = write_directory(tmp_path / "a" / "mine")
    b = write_directory(tmp_path / "b" / "mine")
    pa, pb = (plan.predictions_plan(d, runs_dir=project / "runs") for d in (a, b))
    assert pa.specs[0].run_id == pb.specs[0].run_id
    assert pa.specs[0].runtime["predictions_dir"] == str(a.resolve())
    (a / "design.toml").write_text('[analysis]\ncorrection = "fdr_bh"\n')
    pc = plan.predictions_plan(a, runs_dir=project / "runs")
    assert pc.specs[0].run_id != pa.specs[0].run_id and pc.specs[0].params["correction"] == "fdr_bh"
    with pytest.raises(PredictionsError, match="changed since the run was planned"):
        predictions.load(a, expect_sha256=pa.specs[0].params["predictions_sha256"])


# --- bad input: exit 2, the file named, nothing written ------------------------------

def _npz(path: Path, **arrays) -> None:
    np.savez(path, **arrays)


def _y() -> np.ndarray:
    return np.repeat(np.arange(K), M)


BAD = {
    "y_true differs": (lambda r: _npz(r / "dense" / "1.npz", y_pred=_y(), y_true=np.roll(_y(), 1)),
                       "dense/1.npz", "y_true differs"),
    "lengths disagree": (lambda r: _npz(r / "pruned" / "1001.npz", y_pred=_y()[:-5], y_true=_y()[:-5]),
                         "pruned/1001.npz", "every model predicts the same test set"),
    "lengths in one file": (lambda r: _npz(r / "dense" / "2.npz", y_pred=_y()[:-1], y_true=_y()),
                            "dense/2.npz", "one prediction per test image"),
    "class id outside classes.txt": (lambda r: _npz(r / "pruned" / "1000.npz", y_pred=np.full(K * M, K),
                                                    y_true=_y()), "pruned/1000.npz", "ids 0 to 9"),
    "one model": (lambda r: (r / "pruned" / "1001.npz").unlink(), "pruned", "population schema"),
    "no baseline": (lambda r: (r / "dense").rename(r / "baseline"), "", "no baseline"),
    "probs rows": (lambda r: _npz(r / "dense" / "0.npz", y_pred=_y(), y_true=_y(),
                                  probs=np.full((K * M, K), 0.2)), "dense/0.npz", "sum to 1"),
    "unreadable npz": (lambda r: (r / "dense" / "3.npz").write_bytes(b"not a zip"), "dense/3.npz",
                       "not a readable .npz"),
    "non-npz file": (lambda r: (r / "pruned" / "notes.txt").write_text("hi"), "pruned/notes.txt",
                     "<seed>.npz"),
    "non-integer name": (lambda r: (r / "pruned" / "1000.npz").rename(r / "pruned" / "best.npz"),
                         "pruned/best.npz", "<seed>.npz"),
    "unexpected top file": (lambda r: (r / "README.md").write_text("hi"), "README.md", "allowed at the top"),
    "float class ids": (lambda r: _npz(r / "dense" / "0.npz", y_pred=_y().astype(float), y_true=_y()),
                        "dense/0.npz", "integer class ids"),
    "independent seed shared": (lambda r: (r / "pruned" / "1000.npz").rename(r / "pruned" / "0.npz"),
                                "pruned/0.npz", "declared paired"),
    "paired without partner": (lambda r: ((r / "int8").mkdir(), _npz(r / "int8" / "0.npz", y_pred=_y(), y_true=_y()),
                                          _npz(r / "int8" / "9.npz", y_pred=_y(), y_true=_y()),
                                          (r / "design.toml").write_text('paired = ["int8"]\n')),
                               "int8/9.npz", "no model 9.npz"),
    "bad analysis option": (lambda r: (r / "design.toml").write_text('[analysis]\ncorrection = "bonf"\n'),
                            "design.toml", "none, fdr_bh"),
    "bad n_null": (lambda r: (r / "design.toml").write_text('[analysis]\nn_null = 0\n'),
                   "design.toml", "positive integer"),
    "bad classes.txt": (lambda r: (r / "classes.txt").write_text("a\n\nb\n"), "classes.txt", "empty line"),
    "bad images": (lambda r: np.save(r / "images.npy", np.zeros((3, 8, 8))), "images.npy", "(600, H, W)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exit_2_names_the_file_nothing_written(case, tmp_path, project, capsys):
    spoil, file, allowed = BAD[case]
    root = write_directory(tmp_path / "mine")
    spoil(root)
    assert run_all_script.main(["--predictions", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("run_all.py: error: ")
    assert str(root / file) in err and allowed in err
    assert not any(project.iterdir())  # no runs/, no report/


def test_bad_input_exit_code_2_from_the_command(tmp_path, project):
    root = write_directory(tmp_path / "mine")
    (root / "dense" / "3.npz").write_bytes(b"garbage")
    res = run_all("--predictions", str(root), root=project)
    assert res.returncode == 2, res.stderr
    assert str(root / "dense" / "3.npz") in res.stderr
    assert not any(project.iterdir())


def test_profile_options_refused_with_predictions(tmp_path, project, capsys):
    root = write_directory(tmp_path / "mine")
    assert run_all_script.main(["--predictions", str(root), "--seeds", "1"]) == 2
    assert "--seeds cannot be combined with --predictions" in capsys.readouterr().err
    assert run_all_script.main(["--predictions", str(root), "--clean"]) == 2
    assert not any(project.iterdir())


def test_dry_run_plans_one_cie_run_writes_nothing(tmp_path, project, capsys):
    root = write_directory(tmp_path / "mine", paired=True)
    assert run_all_script.main(["--predictions", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "plan for predictions 'mine': 1 run(s)" in out and "will run: new run" in out
    assert "int8 paired" in out and "pruned independent" in out
    assert not (project / "runs").exists()


# --- planted populations through the whole command -----------------------------------

N_PLANTED = 8  # models per population side (the first 8 dense seeds beside the 8 pruned)
DROP = 0.15  # the planted class's recall drop in the pruned population


def population_flags(project: Path) -> pd.DataFrame:
    (csv,) = (project / "runs" / "cie").glob("*/population_cie.csv")
    return pd.read_csv(csv, index_col="setting", dtype={"classes": str})


def flagged(row) -> set[int]:
    return set() if pd.isna(row["classes"]) else {int(c) for c in str(row["classes"]).split()}


@pytest.mark.slow
def test_planted_class_is_flagged_and_named_then_cached(tmp_path, project):
    """Class 3's recall drops by 0.15 in the pruned population (8 vs 8 models, 60 test
    images per class, recall 0.9 elsewhere). The power of the population schema's Welch
    test at alpha 0.05 for that shift is computed below (0.9993): the planted class is
    found unless the run is very unlucky, and the fixed seed makes it deterministic."""
    assert welch_power(n=N_PLANTED, drop=DROP) > 0.99
    root = write_directory(tmp_path / "planted", n_dense=2 * N_PLANTED, n_comp=N_PLANTED, planted=3,
                           drop=DROP, paired=True)
    res = run_all("--predictions", str(root), root=project)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 3 in flagged(population_flags(project).loc["pruned"])
    report = project / "report" / "predictions-planted"
    assert (report / "report.pdf").stat().st_size > 0
    html = (report / "report.html").read_text()
    assert NAMES[3] in html and "Your models" in html
    assert not (project / "report" / "report.html").exists()  # never over the profile's report
    again = run_all("--predictions", str(root), root=project)
    assert again.returncode == 0 and "1 cached" in again.stdout and "ran" not in again.stdout.split("runs:")[1]


@pytest.mark.slow
def test_no_planted_effect_flags_no_more_than_chance(tmp_path, project):
    """Both populations drawn from one distribution: the uncorrected schema's false flags
    over 10 classes at alpha 0.05 are about Binomial(10, 0.05); the bound is its 95th
    percentile, 2 classes (P(more than 2) = 1.2%). The fixed seed makes the draw
    deterministic."""
    bound = int(stats.binom.ppf(0.95, K, 0.05))
    root = write_directory(tmp_path / "null", n_dense=2 * N_PLANTED, n_comp=N_PLANTED, seed=1)
    res = run_all("--predictions", str(root), "--no-report", root=project)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(flagged(population_flags(project).loc["pruned"])) <= bound
    assert not (project / "report").exists()


def test_content_hash_counts_arrays_not_zip_bytes(tmp_path):
    a = write_directory(tmp_path / "a" / "mine")
    b = write_directory(tmp_path / "b" / "mine")
    with np.load(b / "dense" / "0.npz") as npz:
        arrays = dict(npz)
    np.savez_compressed(b / "dense" / "0.npz", **arrays)  # other bytes, same arrays
    assert predictions.content_hash(a) == predictions.content_hash(b)


@pytest.mark.slow
def test_example_writes_a_valid_directory_and_plans_it(tmp_path, project):
    """examples/sklearn_digits.py's directory passes the checks, pruning hurts, rounding is
    paired, and run_all.py plans one run on it (the full run is the example itself)."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("sklearn_digits", ROOT / "examples" / "sklearn_digits.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = example.write_directory(tmp_path / "sklearn-digits")
    pred = predictions.load(out)
    assert pred.designs == {"int8": "paired", f"pruned-{example.SPARSITY:g}": "independent"}
    assert pred.images is not None and pred.images.shape[0] == pred.y_true.size
    top1 = {name: np.mean([np.mean(y == pred.y_true) for y in by_seed.values()])
            for name, by_seed in {"dense": pred.base, **pred.settings}.items()}
    assert top1[f"pruned-{example.SPARSITY:g}"] < top1["dense"]
    res = run_all("--predictions", str(out), "--dry-run", root=project)
    assert res.returncode == 0 and "plan for predictions 'sklearn-digits': 1 run(s)" in res.stdout
