"""Shared fixtures: tiny profiles and an isolated project root per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TINY_PROFILE = """
[profile]
name = "tiny"
description = "Tiny test profile on scikit-learn digits."
sparsities = [0.0]
techniques = []
seeds = [0, 1]

[tasks.digits_vgg]
label = "VGG-style on digits"
stand_in_for = "VGG-19 on CIFAR-10"
dataset = "digits"
model = "vgg_small"
optimizer = "sgd"
learning_rate = 0.05
momentum = 0.9
epochs = 2
batch_size = 64
"""


def _has_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def pytest_collection_modifyitems(config, items):
    if _has_gpu():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


FULL_TINY = TINY_PROFILE.replace("sparsities = [0.0]", "sparsities = [0.0, 0.5]").replace(
    "techniques = []", 'techniques = ["dynamic_int8"]')


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole pipeline once on a tiny profile (pruning, quantization, every analysis).

    Session-scoped: several slow tests read the same run store and report.
    Returns (project root, profile path, the first run_all result).
    """
    base = tmp_path_factory.mktemp("tiny_run")
    prof = base / "tiny_full.toml"
    prof.write_text(FULL_TINY)
    root = base / "project"
    root.mkdir()
    return root, prof, run_all("--profile", str(prof), root=root)


def need_tool(name: str) -> str:
    """Path of a system tool; skipped without it locally, a failure in CI (which installs it)."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed; .ci/run installs it from Debian")
    pytest.skip(f"{name} is not installed (Debian package; .ci/run installs it)")


@pytest.fixture
def tiny_profile(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PROFILE)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """An empty project root (runs/ and report/ go here) via CIELIB_ROOT."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setenv("CIELIB_ROOT", str(root))
    return root


_SHARED_SERVER: list = []  # (process, address) of this test process's kernel server


def shared_kernel_server() -> str:
    """The address of one warm kernel server per test process, started on first use.

    The tests' run_all.py invocations fork their kernels from it
    (cielib.execute.KERNEL_SERVER_ENV) instead of each starting a server of its own,
    which spends ~6 s of CPU importing TensorFlow. Tests of the server's own life
    (tests/test_execute.py, the kill -9 test) start their own.
    """
    if not _SHARED_SERVER:
        from cielib import kernel_server

        _SHARED_SERVER.append(kernel_server.start())
    return _SHARED_SERVER[0][1]


@pytest.fixture(scope="session", autouse=True)
def _stop_shared_kernel_server():
    yield
    if _SHARED_SERVER:
        from cielib import kernel_server

        kernel_server.stop(*_SHARED_SERVER.pop())


def run_all(*args: str, root: Path, timeout: int = 600, own_kernel_server: bool = False
            ) -> subprocess.CompletedProcess:
    """Run run_all.py in a subprocess with CIELIB_ROOT set (as a user would); its kernels
    come from this test process's shared kernel server unless ``own_kernel_server``."""
    from cielib.execute import KERNEL_SERVER_ENV

    env = {**os.environ, "CIELIB_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
    env.pop(KERNEL_SERVER_ENV, None)
    if not own_kernel_server:
        env[KERNEL_SERVER_ENV] = shared_kernel_server()
    return subprocess.run(
        [sys.executable, str(ROOT / "run_all.py"), *args],
        capture_output=True, text=True, env=env, timeout=timeout, cwd=root,
    )
