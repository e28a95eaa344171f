"""The store's guarantees between real processes: one run id, one result, whatever --jobs;
two invocations at once; damage found and repaired; output piped into head."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, TINY_PROFILE, run_all

ONE = TINY_PROFILE.replace("seeds = [0, 1]", "seeds = [0]")


def _done(root):
    return sorted(p.parent for p in (root / "runs").glob("*/*/DONE"))


@pytest.mark.slow
def test_predictions_are_bit_identical_whatever_jobs(tiny_profile, tmp_path):
    """Also whatever the kernels: started from scratch (local-fresh, one job) or forked
    from the warm kernel server (local, two jobs)."""
    preds = {}
    for jobs, executor in (("1", "local-fresh"), ("2", "local")):
        root = tmp_path / f"jobs{jobs}"
        root.mkdir()
        res = run_all("--profile", str(tiny_profile), "--jobs", jobs, "--only", "train", "--no-report",
                      "--executor", executor, root=root)
        assert res.returncode == 0, res.stdout + res.stderr
        preds[jobs] = {p.parent.name: dict(np.load(p)) for p in (root / "runs" / "train").glob("*/predictions.npz")}
    assert sorted(preds["1"]) == sorted(preds["2"]) and len(preds["1"]) == 2  # same run ids
    for rid, arrays in preds["1"].items():
        for name, value in arrays.items():
            assert np.array_equal(value, preds["2"][rid][name]), (rid, name)


@pytest.fixture(scope="module")
def two_at_once(tmp_path_factory):
    """One-seed tiny profile run by two invocations at once (one store, shared by the
    tests below: the second damages and repairs it, so it runs after the first)."""
    tmp_path = tmp_path_factory.mktemp("two_at_once")
    prof = tmp_path / "one.toml"
    prof.write_text(ONE)
    root = tmp_path / "project"
    root.mkdir()
    env = {**os.environ, "CIELIB_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(ROOT / "run_all.py"), "--profile", str(prof), "--jobs", "1", "--no-report"]
    procs = [subprocess.Popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    return prof, root, procs, outs


@pytest.mark.slow
def test_two_invocations_at_once_execute_every_run_exactly_once(two_at_once):
    _, root, procs, outs = two_at_once
    assert [p.returncode for p in procs] == [0, 0], outs
    text = "".join(o for pair in outs for o in pair)
    n_runs = len(_done(root))
    assert n_runs == 5  # train, results, profiling, cie, discussion
    assert text.count("[ran]") == n_runs, text  # each run executed by exactly one of them
    assert "FileExistsError" not in text and "Traceback" not in text
    assert not list((root / "runs").glob("*/.claim-*")) and not list((root / "runs").glob("*/.tmp-*"))


@pytest.mark.slow
def test_a_truncated_output_is_found_by_verify_and_rerun(two_at_once):
    prof, root, procs, _ = two_at_once
    assert [p.returncode for p in procs] == [0, 0]
    assert run_all("--profile", str(prof), "--no-report", root=root).stdout.count("[ran]") == 0
    assert run_all("--verify", root=root).returncode == 0
    (train,) = [p.parent for p in (root / "runs" / "train").glob("*/DONE")]
    target = train / "predictions.npz"
    good = dict(np.load(target))
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    res = run_all("--verify", root=root)
    assert res.returncode == 1 and f"{train}: size changed: predictions.npz" in res.stdout
    dry = run_all("--profile", str(prof), "--dry-run", root=root)
    assert "will run: outputs changed: size changed: predictions.npz" in dry.stdout
    again = run_all("--profile", str(prof), "--no-report", root=root)
    assert again.returncode == 0 and again.stdout.count("[ran]") == 1, again.stdout
    again_arrays = dict(np.load(target))  # the rerun gives the same predictions back
    assert all(np.array_equal(good[k], again_arrays[k]) for k in good)
    assert run_all("--verify", root=root).returncode == 0


def test_output_piped_into_head_ends_quietly(tiny_profile, project):
    env = {**os.environ, "CIELIB_ROOT": str(project)}
    res = subprocess.run(f"{sys.executable} {ROOT / 'run_all.py'} --profile {tiny_profile} --dry-run | head -1",
                         shell=True, capture_output=True, text=True, env=env, cwd=project, timeout=300)
    assert res.stdout.startswith("note: seeds:")  # the plan's first line (a302227 put the note first)
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr
