"""run_all.py as an experiment runner: resume after kill -9, failures isolated,
--only / --force / --clean, and the executor's dependency order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, TINY_PROFILE, run_all

BROKEN = TINY_PROFILE.replace("seeds = [0, 1]", "seeds = [0]") + """
[tasks.broken]
dataset = "digits"
model = "vgg_small"
optimizer = "sgd"
learning_rate = 0.05
epochs = 1
batch_size = 64
model_options = { width = 0 }
"""


def _left_running(root: Path) -> list[str]:
    """Processes still working for the run_all.py whose CIELIB_ROOT is ``root``."""
    import psutil

    left = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("CIELIB_ROOT") == str(root):
                left.append(" ".join(p.cmdline()))
        except (psutil.Error, OSError):
            pass
    return left


def _gone_within(seconds: float, *, root: Path) -> bool:
    """Whether every process of that invocation (kernels included: they run in sessions of
    their own, so killpg does not reach them) ends within ``seconds``."""
    deadline = time.time() + seconds
    while _left_running(root):
        if time.time() > deadline:
            return False
        time.sleep(0.5)
    return True


def _done(root: Path) -> list[Path]:
    return sorted(p.parent for p in (root / "runs").glob("*/*/DONE"))


@pytest.mark.slow
def test_failing_run_others_finish_exit_1(tmp_path, project):
    prof = tmp_path / "broken.toml"
    prof.write_text(BROKEN)
    res = run_all("--profile", str(prof), "--jobs", "1", root=project)
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "[failed] train broken" in out and "width" in out
    assert "[skipped] results broken" in out and "[skipped] cie broken" in out
    assert "[skipped] discussion" in out  # it reads every task
    assert "[ran] train digits_vgg" in out and "[ran] cie digits_vgg" in out
    failed = list((project / "runs" / "train").glob("failed-*/executed.ipynb"))
    assert len(failed) == 1 and "Traceback" in failed[0].read_text() or "ValueError" in failed[0].read_text()
    assert str(failed[0]) in out  # the path of the traceback is printed
    assert len(_done(project)) == 4  # the good train run + its results, profiling and cie runs
    # --fail-fast stops starting runs after the failure
    res2 = run_all("--profile", str(prof), "--fail-fast", "--force", "--jobs", "1", root=project)
    assert res2.returncode == 1 and "--fail-fast" in res2.stdout + res2.stderr


@pytest.mark.slow
def test_kill_9_midway_then_resume_reuses_finished_runs(tiny_profile, project):
    env = {**os.environ, "CIELIB_ROOT": str(project), "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, str(ROOT / "run_all.py"), "--profile", str(tiny_profile),
            "--sparsities", "0", "0.5", "--jobs", "1"]
    proc = subprocess.Popen(args, env=env, cwd=project, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not _done(project):
        time.sleep(0.2)
    time.sleep(1.0)  # let the next run get going, so something is half-written
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _gone_within(30, root=project), "a kernel (or the kernel server) outlived the kill"
    finished = _done(project)
    assert finished, "no run finished before the kill"
    stamps = {p: (p / "DONE").stat().st_mtime for p in finished}
    res = run_all("--profile", str(tiny_profile), "--sparsities", "0", "0.5", "--jobs", "1",
                  "--no-report", root=project)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("[cached]") >= len(finished)
    assert {p: (p / "DONE").stat().st_mtime for p in finished} == stamps  # reused, not redone
    assert len(_done(project)) == 4 + 3 + 1  # every train run, 3 analyses, the discussion
    leftovers = [p for p in (project / "runs").glob("*/.tmp-*")]
    assert all(not (p / "DONE").exists() for p in leftovers)


@pytest.mark.slow
def test_only_force_clean(tiny_profile, project):
    # --only an analysis stage before its inputs exist is refused up front
    res = run_all("--profile", str(tiny_profile), "--only", "cie", root=project)
    assert res.returncode == 2 and "not done" in res.stderr
    assert not (project / "runs").exists()
    res = run_all("--profile", str(tiny_profile), "--only", "nope", root=project)
    assert res.returncode == 2 and "unknown stage" in res.stderr
    assert run_all("--profile", str(tiny_profile), "--only", "train", "--no-report",
                   root=project).returncode == 0
    assert not (project / "runs" / "cie").exists()
    res = run_all("--profile", str(tiny_profile), "--only", "cie", "--no-report", root=project)
    assert res.returncode == 0 and "[ran] cie" in res.stdout
    (cie_dir,) = [p.parent for p in (project / "runs" / "cie").glob("*/DONE")]
    before = (cie_dir / "DONE").stat().st_mtime
    dry = run_all("--profile", str(tiny_profile), "--only", "cie", "--force", "--dry-run", root=project)
    assert "will run: --force" in dry.stdout
    assert run_all("--profile", str(tiny_profile), "--only", "cie", "--force", "--no-report",
                   root=project).returncode == 0
    assert (cie_dir / "DONE").stat().st_mtime > before
    # --clean removes what the current plan does not use, only with --yes
    stray = project / "runs" / "train" / "0123456789ab"
    stray.mkdir()
    res = run_all("--profile", str(tiny_profile), "--clean", root=project)
    assert res.returncode == 2 and stray.exists() and "--yes" in res.stderr
    res = run_all("--profile", str(tiny_profile), "--clean", "--yes", root=project)
    assert res.returncode == 0 and not stray.exists()
    assert len(_done(project)) == 2 + 1  # the plan's runs survive (2 train, the cie run)
