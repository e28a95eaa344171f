"""Cluster files: the ``[cluster]`` table that says where Dask runs (SLURM or a scheduler).

Validation only, plus building a ``dask_jobqueue.SLURMCluster`` from a valid table;
the executor that uses it is :mod:`cielib.dask_executor`. Importing this module does
not import Dask.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cielib import paths

CLUSTER_KINDS = ("slurm", "scheduler")
# The scheduler retries a run whose worker died once, then reports it (KilledWorker).
ALLOWED_FAILURES = 1
# Dask resource name that GPU training runs ask for and GPU workers offer.
GPU_RESOURCE = "GPU"


class ClusterConfigError(ValueError):
    """A cluster file or executor option is invalid (the message names key, value, allowed)."""


@dataclass(frozen=True)
class TLSFiles:
    """Certificate paths for Dask's TLS (``distributed.security.Security``)."""

    ca_file: str
    cert: str
    key: str

    def security(self) -> Any:
        from distributed.security import Security

        return Security(
            tls_ca_file=self.ca_file,
            tls_client_cert=self.cert, tls_client_key=self.key,
            tls_scheduler_cert=self.cert, tls_scheduler_key=self.key,
            tls_worker_cert=self.cert, tls_worker_key=self.key,
            require_encryption=True,
        )


@dataclass(frozen=True)
class ClusterSpec:
    """The validated ``[cluster]`` table of a cluster file."""

    kind: str  # "slurm" or "scheduler"
    source: str = "<dict>"
    address: str | None = None  # kind = "scheduler"
    queue: str | None = None
    account: str | None = None
    cores: int = 1  # CPU cores per SLURM job
    memory: str | None = None  # per job, e.g. "16GB"
    walltime: str | None = None  # "HH:MM:SS" or "D-HH:MM:SS"
    processes: int = 1  # Dask worker processes per job; each runs one run at a time
    gpus: int = 0  # GPUs per job (--gres=gpu:N)
    jobs: int | None = None  # a fixed number of jobs ...
    adaptive: tuple[int, int] | None = None  # ... or (minimum, maximum) jobs
    job_extra_directives: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    python: str | None = None
    interface: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    dashboard: str = "127.0.0.1:0"
    wait_timeout: float | None = None
    tls: TLSFiles | None = None

    @property
    def workers(self) -> int:
        """How many worker processes the cluster has at most (the executor's capacity)."""
        jobs = self.adaptive[1] if self.adaptive else (self.jobs or 0)
        return jobs * self.processes


_SLURM_KEYS = {
    "kind", "queue", "partition", "account", "cores", "memory", "walltime", "processes",
    "gpus", "jobs", "adaptive", "job_extra_directives", "prologue", "env", "python",
    "interface", "local_directory", "log_directory", "dashboard", "wait_timeout", "tls",
}
_SCHEDULER_KEYS = {"kind", "address", "wait_timeout", "tls"}


def load_cluster_file(path: str | Path) -> ClusterSpec:
    """Read and validate a cluster file (a TOML file with a ``[cluster]`` table).

    Raises:
        ClusterConfigError: missing file, bad TOML, no ``[cluster]`` table or a bad value.
    """
    path = Path(path)
    if not path.is_file():
        raise ClusterConfigError(f"cluster file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ClusterConfigError(f"cluster file {str(path)!r} is not valid TOML: {exc}") from exc
    if not isinstance(raw.get("cluster"), dict):
        raise ClusterConfigError(
            f"cluster file {str(path)!r} has no [cluster] table; see configs/clusters/slurm.example.toml")
    return parse_cluster(raw["cluster"], source=str(path), base=path.parent)


def parse_cluster(table: dict[str, Any], *, source: str = "<dict>", base: Path | None = None) -> ClusterSpec:
    """Validate a ``[cluster]`` table (as TOML parses it) into a ClusterSpec."""
    where = f"{source} [cluster]"

    def bad(key: str, value: Any, allowed: str) -> ClusterConfigError:
        return ClusterConfigError(f"{where}: {key} = {value!r} is invalid; allowed: {allowed}")

    kind = table.get("kind")
    if kind not in CLUSTER_KINDS:
        raise bad("kind", kind, " or ".join(repr(k) for k in CLUSTER_KINDS))
    allowed_keys = _SLURM_KEYS if kind == "slurm" else _SCHEDULER_KEYS
    unknown = sorted(set(table) - allowed_keys)
    if unknown:
        raise ClusterConfigError(
            f"{where}: unknown key(s) {unknown} for kind = {kind!r}; allowed: {sorted(allowed_keys)}")

    def text(key: str, *, required: bool = False) -> str | None:
        value = table.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value.strip():
            raise bad(key, value, "a non-empty string")
        return value

    def integer(key: str, default: int | None, *, minimum: int) -> int | None:
        value = table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise bad(key, value, f"an integer >= {minimum}")
        return value

    def strings(key: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(key, value, "a list of strings")
        return tuple(value)

    wait = table.get("wait_timeout")
    if wait is not None and (isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait <= 0):
        raise bad("wait_timeout", wait, "a number of seconds > 0")
    tls = _parse_tls(table.get("tls"), where=where, base=base)

    if kind == "scheduler":
        address = text("address", required=True)
        check_address(address, where=f"{where}: address")
        if address.startswith("tls://") and tls is None:
            raise ClusterConfigError(
                f"{where}: address {address!r} is tls:// but there is no [cluster.tls] table "
                "with ca_file, cert and key")
        return ClusterSpec(kind=kind, source=source, address=address, tls=tls,
                           wait_timeout=None if wait is None else float(wait))

    if "queue" in table and "partition" in table:
        raise ClusterConfigError(f"{where}: give queue or partition (the same thing), not both")
    queue = text("partition") if "partition" in table else text("queue")
    cores = integer("cores", None, minimum=1)
    if cores is None:
        raise bad("cores", None, "an integer >= 1 (CPU cores per job)")
    memory = text("memory", required=True)
    try:
        from dask.utils import parse_bytes

        parse_bytes(memory)
    except (ValueError, TypeError):
        raise bad("memory", memory, 'a size such as "16GB" or "4000MB"') from None
    walltime = text("walltime")
    if walltime is not None and not _is_walltime(walltime):
        raise bad("walltime", walltime, '"HH:MM:SS", "MM:SS" or "D-HH:MM:SS"')
    processes = integer("processes", 1, minimum=1)
    if processes > cores:
        raise bad("processes", processes, f"at most cores = {cores} (each worker process needs a core)")
    gpus = integer("gpus", 0, minimum=0)
    if gpus > 0 and processes != 1:
        raise ClusterConfigError(
            f"{where}: gpus = {gpus} with processes = {processes} is not supported: every worker "
            "process of a job would see every GPU of it; use processes = 1 and gpus = 1 "
            "(one GPU worker per job) and scale with jobs or adaptive")
    if gpus > 1:
        raise bad("gpus", gpus, "0 or 1 (one GPU per job and worker; scale with jobs or adaptive)")
    jobs = integer("jobs", None, minimum=1)
    adaptive = table.get("adaptive")
    if (jobs is None) == (adaptive is None):
        raise ClusterConfigError(
            f"{where}: give exactly one of jobs = N (a fixed number of SLURM jobs) or "
            "adaptive = { minimum = M, maximum = N }")
    adapt: tuple[int, int] | None = None
    if adaptive is not None:
        ok = (isinstance(adaptive, dict) and set(adaptive) == {"minimum", "maximum"}
              and all(isinstance(v, int) and not isinstance(v, bool) for v in adaptive.values()))
        if not ok or not 0 <= adaptive["minimum"] <= adaptive["maximum"] or adaptive["maximum"] < 1:
            raise bad("adaptive", adaptive, "{ minimum = M, maximum = N } with 0 <= M <= N and N >= 1")
        adapt = (adaptive["minimum"], adaptive["maximum"])
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(
            isinstance(k, str) and k.isidentifier() and isinstance(v, (str, int, float)) for k, v in env.items()):
        raise bad("env", env, "a table of NAME = value (names are shell identifiers)")
    directives = strings("job_extra_directives")
    for d in directives:
        if not d.startswith("-"):
            raise bad("job_extra_directives", d, 'sbatch options such as "--constraint=a100" (no #SBATCH)')
        if gpus and d.startswith("--gres"):
            raise bad("job_extra_directives", d, "no --gres line when gpus is set (it writes --gres=gpu:N)")
    return ClusterSpec(
        kind=kind, source=source, queue=queue, account=text("account"), cores=cores,
        memory=memory, walltime=walltime, processes=processes, gpus=gpus, jobs=jobs,
        adaptive=adapt, job_extra_directives=directives, prologue=strings("prologue"),
        env={k: str(v) for k, v in env.items()}, python=text("python"),
        interface=text("interface"), local_directory=text("local_directory"),
        log_directory=text("log_directory"), dashboard=text("dashboard") or "127.0.0.1:0",
        wait_timeout=None if wait is None else float(wait), tls=tls,
    )


def _parse_tls(value: Any, *, where: str, base: Path | None) -> TLSFiles | None:
    if value is None:
        return None
    keys = {"ca_file", "cert", "key"}
    if not isinstance(value, dict) or set(value) != keys or not all(isinstance(v, str) for v in value.values()):
        raise ClusterConfigError(f"{where}: tls = {value!r} is invalid; allowed: a table with "
                                 "exactly ca_file, cert and key (paths to PEM files)")
    resolved = {}
    for k, v in value.items():
        p = Path(os.path.expanduser(v))
        p = p if p.is_absolute() or base is None else base / p
        if not p.is_file():
            raise ClusterConfigError(f"{where}: tls.{k} = {v!r}: no such file ({p})")
        resolved[k] = str(p)
    return TLSFiles(**resolved)


_WALLTIME = re.compile(r"^(\d+|\d+:\d\d|\d+:\d\d:\d\d|\d+-\d+(:\d\d){0,2})$")


def _is_walltime(text: str) -> bool:
    """SLURM's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    return bool(_WALLTIME.match(text))


def check_address(address: str | None, *, where: str) -> None:
    """Refuse anything but ``tcp://HOST:PORT`` or ``tls://HOST:PORT`` (``where`` names the
    option or file entry in the message)."""
    if not isinstance(address, str) or not address.startswith(("tcp://", "tls://")) \
            or ":" not in address.split("://", 1)[1]:
        raise ClusterConfigError(f"{where}: {address!r} is not a scheduler address; allowed: "
                                 "tcp://HOST:PORT or tls://HOST:PORT")



def slurm_cluster(spec: ClusterSpec) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` from a validated spec (no job is submitted yet).

    Dask is told ``cores = processes`` so that every worker process has one thread (one
    run at a time, papermill is not thread-safe); SLURM is asked for ``cores`` CPUs per
    job (``--cpus-per-task``), which the runs' TensorFlow threads use.
    """
    if spec.kind != "slurm":
        raise ClusterConfigError(f"{spec.source}: kind = {spec.kind!r} does not start a cluster")
    from dask_jobqueue import SLURMCluster

    prologue = [f"cd {_shell_quote(str(paths.PACKAGE_DIR.parent))}"]  # `python -m` imports cielib from here
    if os.environ.get("CIELIB_ROOT"):
        prologue.append(f"export CIELIB_ROOT={_shell_quote(os.environ['CIELIB_ROOT'])}")
    prologue += [f"export {k}={_shell_quote(v)}" for k, v in spec.env.items()]
    prologue += list(spec.prologue)
    directives = list(spec.job_extra_directives)
    extra_args: list[str] = []
    if spec.gpus:
        directives.append(f"--gres=gpu:{spec.gpus}")
        extra_args += ["--resources", f"{GPU_RESOURCE}={spec.gpus}"]
    kwargs: dict[str, Any] = dict(
        queue=spec.queue, account=spec.account, cores=spec.processes, processes=spec.processes,
        job_cpu=spec.cores, memory=spec.memory, walltime=spec.walltime,
        job_extra_directives=directives, job_script_prologue=prologue,
        worker_extra_args=extra_args, python=spec.python or sys.executable,
        interface=spec.interface, local_directory=spec.local_directory,
        log_directory=spec.log_directory, job_name="cielib-dask",
        scheduler_options={"allowed_failures": ALLOWED_FAILURES, "dashboard_address": spec.dashboard},
    )
    if spec.tls is not None:
        kwargs.update(security=spec.tls.security(), protocol="tls://")
    return SLURMCluster(**kwargs)


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def local_cluster(*, jobs: int, gpus: int = 0) -> Any:
    """A LocalCluster of ``jobs`` one-thread worker processes listening on 127.0.0.1 only.

    With ``gpus`` > 0 the first ``gpus`` workers each get one GPU (``CUDA_VISIBLE_DEVICES``)
    and the ``GPU`` resource; the others see no GPU.
    """
    from distributed import LocalCluster

    common = dict(threads_per_worker=1, processes=True, host="127.0.0.1",
                  dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR,
                  scheduler_kwargs={"allowed_failures": ALLOWED_FAILURES})
    if not gpus:
        return LocalCluster(n_workers=jobs, **common)
    devices = (visible_devices() or [str(i) for i in range(gpus)])[:min(gpus, jobs)]
    if len(devices) < min(gpus, jobs):
        raise ClusterConfigError(f"gpus = {gpus} but CUDA_VISIBLE_DEVICES lists only {devices}")
    cluster = LocalCluster(n_workers=0, **common)
    template = cluster.new_spec
    for i in range(jobs):
        options = dict(template["options"])
        if i < len(devices):
            options.update(resources={GPU_RESOURCE: 1}, env={"CUDA_VISIBLE_DEVICES": devices[i]})
        else:
            options.update(env={"CUDA_VISIBLE_DEVICES": ""})
        cluster.worker_spec[f"worker-{i}"] = {"cls": template["cls"], "options": options}
    cluster.scale(jobs)
    return cluster


def visible_devices() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [d.strip() for d in env.split(",") if d.strip()] if env else []
