"""run_all.py end to end: bad input is refused before anything is written; a tiny
profile runs, builds the report, and a second invocation reuses every run."""

from __future__ import annotations

import json

import pytest

import pandas as pd

from conftest import run_all


def _written(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--profile", "nope"], "unknown profile 'nope'"),
        (["--tasks", "nope"], "unknown task 'nope'"),
        (["--sparsities", "1.5"], "sparsity 1.5 is outside [0, 1)"),
        (["--seeds", "1", "1"], "duplicate seed(s) [1]"),
        (["--seeds", "-3"], "seed -3"),
        (["--epochs", "0"], "epochs must be an integer >= 1, got 0"),
        (["--techniques", "int4"], "unknown technique 'int4'"),
        (["--jobs", "0"], "--jobs must be >= 1"),
    ],
)
def test_bad_input_exit_2_nothing_written(args, needle, tiny_profile, project):
    prof = [] if args[0] == "--profile" else ["--profile", str(tiny_profile)]
    res = run_all(*prof, *args, root=project)
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle in res.stderr
    assert _written(project) == []


def test_malformed_profile_and_missing_data(tmp_path, project):
    bad = tmp_path / "bad.toml"
    bad.write_text("[profile\n")
    res = run_all("--profile", str(bad), root=project)
    assert res.returncode == 2 and "not valid TOML" in res.stderr
    cifar = tmp_path / "cifar.toml"
    cifar.write_text(
        "[profile]\nname='c'\nsparsities=[0.0]\nseeds=[0]\n"
        "[tasks.c]\ndataset='cifar10'\nmodel='vgg_small'\noptimizer='sgd'\n"
        "learning_rate=0.1\nepochs=1\nbatch_size=8\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_all("--profile", str(cifar), "--data-dir", str(empty), root=project)
    assert res.returncode == 2, res.stderr
    assert str(empty) in res.stderr and "cifar" in res.stderr.lower()
    assert _written(project) == []


@pytest.mark.slow
def test_tiny_profile_end_to_end_then_cached(tiny_run):
    project, prof, res = tiny_run
    assert res.returncode == 0, res.stdout + res.stderr
    # 2 seeds x 2 sparsities; one quantize run (float32 + dynamic_int8) per dense model;
    # 4 analyses; discussion
    assert "11 ran" in res.stdout
    report = project / "report" / "report.html"
    html = report.read_text()
    for heading in ("Training and test performance under pruning", "Quantization", "Impacted classes and images",
                    "Does the single-model schema find what the population schema finds",
                    "Hardware use while training", "Paper vs this run", "Discussion", "Appendix"):
        assert heading in html
    assert html.count("data:image/png;base64,") >= 8  # figures are embedded
    assert "oneDNN" not in html and "Traceback" not in html
    runs = project / "runs"
    index = pd.read_csv(runs / "index.csv")
    assert sorted(index["stage"].value_counts().items()) == [
        ("cie", 1), ("discussion", 1), ("profiling", 1), ("quantization", 1), ("quantize", 4),
        ("results", 1), ("train", 4)]
    pruned = index[(index["stage"] == "train") & (index["sparsity"] == 0.5)]
    assert (pruned["measured_sparsity"] - 0.5).abs().max() <= 0.01
    assert (pruned["gzip_bytes"] < index.loc[index["sparsity"].eq(0) & index["stage"].eq("train"),
                                             "gzip_bytes"].min()).all()
    for d in [p.parent for p in (runs / "train").glob("*/DONE")]:
        for name in ("params.json", "metrics.json", "predictions.npz", "model.keras",
                     "executed.ipynb", "history.csv", "sparsity.csv"):
            assert (d / name).is_file(), f"{d.name} lacks {name}"
        metrics = json.loads((d / "metrics.json").read_text())
        # 2 epochs on digits: every model, pruned to 0.5 from scratch too, is far above
        # chance (0.1); a pruned seed lands near 0.5
        assert 0.3 < metrics["top1"] <= 1.0
    mtimes = {p: p.stat().st_mtime for p in runs.rglob("DONE")}
    built = {p: p.stat().st_mtime_ns for p in (report, report.with_suffix(".pdf")) if p.is_file()}
    assert report in built

    again = run_all("--profile", str(prof), root=project)
    assert again.returncode == 0, again.stderr
    assert "every run was already done" in again.stdout and "11 cached" in again.stdout
    assert {p: p.stat().st_mtime for p in runs.rglob("DONE")} == mtimes
    # nothing the report reads changed: it is not rebuilt
    assert "report: up to date" in again.stdout, again.stdout
    assert {p: p.stat().st_mtime_ns for p in built} == built

    dry = run_all("--profile", str(prof), "--epochs", "3", "--dry-run", root=project)
    assert dry.returncode == 0
    assert "epochs: 2 -> 3" in dry.stdout and "upstream runs changed" in dry.stdout


def test_the_report_key_follows_what_the_report_reads(tmp_path):
    from cielib import report, report_key

    run = tmp_path / "runs" / "results" / "abc123"
    run.mkdir(parents=True)
    (run / "DONE").write_text('{"seconds": 1}')
    sections = [report.Section("Setup", markdown="profile tiny"),
                report.Section("Task", notebooks=[run / "executed.ipynb"])]
    index = pd.DataFrame({"run_id": ["abc123"], "stage": ["results"]})
    key = report_key.report_key(sections, title="T", index=index)
    assert key == report_key.report_key(sections, title="T", index=index)  # stable
    changed = [
        report_key.report_key(sections, title="T", index=index.assign(run_id=["abc124"])),
        report_key.report_key([sections[0], report.Section("Task", notebooks=[])], title="T", index=index),
        report_key.report_key([report.Section("Setup", markdown="profile other"), sections[1]],
                          title="T", index=index),
    ]
    (run / "DONE").write_text('{"seconds": 2}')  # the run was redone (--force)
    changed.append(report_key.report_key(sections, title="T", index=index))
    assert key not in changed and len(set(changed)) == len(changed)

    out = tmp_path / "report" / "report.html"
    assert not report_key.is_up_to_date(out, key)
    out.parent.mkdir()
    out.write_text("<html>")
    report_key.remember_key(out, key, files=["report.html", "report.pdf"])
    assert not report_key.is_up_to_date(out, key)  # the PDF it was built with is gone
    report_key.remember_key(out, key, files=["report.html"])
    assert report_key.is_up_to_date(out, key) and not report_key.is_up_to_date(out, changed[0])


def test_declared_parameters_are_cached_by_source_hash(tmp_path, monkeypatch):
    """Planning a rerun reads the notebooks' parameters from a cache keyed by the source's
    hash (importing papermill and jupytext costs seconds); a changed source is re-read."""
    import json

    from cielib import notebook_source

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    nb = tmp_path / "x.py"
    nb.write_text('# %% tags=["parameters"]\nrun_dir = "."\nseed = 3\n\n# %%\nprint(seed)\n')
    assert notebook_source.declared_parameters(nb) == {"run_dir": ".", "seed": 3}
    cache = notebook_source.parameters_cache()
    assert cache.is_relative_to(tmp_path / "cache")
    known = json.loads(cache.read_text())
    (key,) = known
    known[key] = {"run_dir": ".", "planted": 1}  # the cache is what a rerun reads
    cache.write_text(json.dumps(known))
    assert notebook_source.declared_parameters(nb) == {"run_dir": ".", "planted": 1}
    nb.write_text('# %% tags=["parameters"]\nrun_dir = "."\nepochs = 2\n\n# %%\nprint(epochs)\n')
    assert notebook_source.declared_parameters(nb) == {"run_dir": ".", "epochs": 2}
    cache.write_text("not json")  # a damaged cache is ignored, then rewritten
    assert notebook_source.declared_parameters(nb) == {"run_dir": ".", "epochs": 2}
    assert len(json.loads(cache.read_text())) == 1
