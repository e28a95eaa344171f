"""What every benchmark records beside its numbers, and where it writes them.

Timings mean little without the machine they were taken on and how busy it was, so
every result file carries :func:`machine_info`; :func:`write_result` writes it to
``benchmarks/results/<name>.json``. Imported by the ``bench_*.py`` scripts, which run
as ``python benchmarks/bench_<name>.py`` (their folder is then on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"

if str(ROOT) not in sys.path:  # run from a checkout without installing cielib
    sys.path.insert(0, str(ROOT))


def _cpu(flags: tuple[str, ...]) -> dict[str, Any]:
    """The CPU's model name and which of ``flags`` it has, from /proc/cpuinfo (Linux)."""
    info: dict[str, Any] = {"model_name": platform.processor() or platform.machine()}
    if flags:
        info["flags"] = []
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name"):
            info["model_name"] = line.split(":", 1)[1].strip()
        elif line.startswith("flags") and flags:
            present = set(line.split(":", 1)[1].split())
            info["flags"] = sorted(f for f in flags if f in present)
            break
    return info


def machine_info(*, packages: tuple[str, ...] = (), cpu_flags: tuple[str, ...] = ()) -> dict[str, Any]:
    """Platform, CPU, core counts, load and package versions, for a result file.

    Call it when the measurement ends: the load average then says whether other work
    shared the cores while it ran (a 1-minute load well above the cores the benchmark
    used is a warning sign).

    Args:
        packages: Distribution names whose versions to record (Python's is always in).
        cpu_flags: CPU flags to look for, e.g. the int8 instruction sets.
    """
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in packages:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "platform": platform.platform(),
        "cpu": _cpu(cpu_flags),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "loadavg_1_5_15": list(os.getloadavg()),
        "versions": versions,
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` as ``benchmarks/results/<name>.json`` and return the path."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def run_all(root: Path, *args: str) -> tuple[float, str]:
    """Wall time and stdout of one ``run_all.py --quiet`` with its store in ``root``.

    The project's notebooks and cielib are this checkout's; ``CIELIB_ROOT`` puts the
    run store and report under ``root``. Stops the benchmark when the run fails.
    """
    env = {**os.environ, "CIELIB_ROOT": str(root)}
    start = time.perf_counter()
    res = subprocess.run([sys.executable, str(ROOT / "run_all.py"), "--quiet", *args],
                         env=env, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"run_all.py {' '.join(args)} failed ({res.returncode}):\n"
                         f"{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return wall, res.stdout
