"""Running a plan on Dask: a local cluster, an existing scheduler, or SLURM (dask-jobqueue).

Each run is one Dask task that calls :func:`cielib.execute.run_spec` in a worker
process (papermill runs there), so the run store's protocol (a private temporary
directory, an atomic rename, ``DONE`` written last) holds on every machine: a worker
that dies in the middle of a run leaves a ``.tmp-`` directory that is never read as a
result. The scheduler this module starts allows one such death per run
(``allowed_failures=1``): the run is retried once and then reported failed.

The store must be one filesystem that every worker sees at the same path; the executor
checks that at start (every worker reads the client's probe file and writes its own,
which the client reads back) and refuses otherwise, naming the workers that cannot see it.

It is registered in :data:`cielib.execute.executors` as ``dask`` by module path, so a
local run never imports it; importing it does not import Dask either (only building a
Dask executor does). A run's Dask resources are its ``RunSpec.resources``, planned from
the stage table (:attr:`cielib.stages.Stage.resources`). TensorFlow is never imported here.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import platform
import secrets
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from cielib import execute, paths, runs
from cielib.cluster_file import (GPU_RESOURCE, ClusterConfigError, check_address,
                                 load_cluster_file, local_cluster, slurm_cluster)

STORE_ID = ".store-id"  # a token in runs/: a worker that reads another one sees another store
_PROBE_PREFIX = ".probe-"
DEFAULT_WAIT_S = {"local": 120.0, "scheduler": 120.0, "slurm": 1800.0}
# Packages whose versions can change a result; a worker must have the client's.
SETUP_PACKAGES = ("tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert",
                  "numpy", "scikit-learn", "papermill", "dask", "distributed")


class StoreNotSharedError(RuntimeError):
    """Some Dask worker does not see the run store the client writes to."""


class NoWorkersError(RuntimeError):
    """No Dask worker joined within the wait timeout."""


class SetupMismatchError(RuntimeError):
    """A worker runs other cielib or notebook sources, or other package versions, than the client."""


# --------------------------------------------------------------------------- worker side


_RUN_LOCK = threading.Lock()  # one run at a time per worker process, whatever its threads


def _run_on_worker(spec: runs.RunSpec, runs_dir: str, store_token: str) -> execute.RunResult:
    """The Dask task: check this worker sees the client's store, then execute the run."""
    found = _read_token(Path(runs_dir))
    if found != store_token:
        raise StoreNotSharedError(
            f"worker {_worker_name()} does not see the run store {runs_dir} the client writes to "
            f"({'no ' + STORE_ID + ' there' if found is None else 'a different store is mounted there'})")
    with _RUN_LOCK:
        undo_nanny_environ()
        return execute.run_spec(spec, runs_dir)


def undo_nanny_environ() -> dict[str, str]:
    """Take out of this worker's environment what Dask's nanny put there for itself.

    A nanny starts its worker with ``distributed.nanny.pre-spawn-environ``
    (``MALLOC_TRIM_THRESHOLD_=65536`` and one OpenMP/MKL/OpenBLAS thread), and the
    notebook kernels a worker starts inherit it. The malloc setting nearly doubled the
    training time of a quick-profile run (measured on this project's 2-core machine: 93 s
    of ``fit`` against 50 s, the same run without it), and the thread settings could
    change numpy's results against the local executor's. So a run's kernel gets the
    environment it gets from the local executor. A variable is removed only while it
    still holds the nanny's value.

    Returns:
        The variables removed, with their values (empty when Dask is not installed).
    """
    try:
        import dask
        import distributed  # noqa: F401 (registers the distributed.* configuration)
    except ImportError:
        return {}
    nanny = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {key: os.environ.pop(key) for key, value in nanny.items()
            if os.environ.get(key) == str(value)}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return f"{get_worker().address} on {socket.gethostname()}"
    except (ImportError, ValueError):
        return f"pid {os.getpid()} on {socket.gethostname()}"


def _read_token(runs_dir: Path) -> str | None:
    try:
        return (runs_dir / STORE_ID).read_text().strip()
    except OSError:
        return None


def _probe_worker(runs_dir: str, probe: str, token: str, dask_worker: Any = None) -> dict[str, str]:
    """On each worker: read the client's probe, write this worker's own (see check_store)."""
    host = socket.gethostname()
    addr = getattr(dask_worker, "address", f"pid {os.getpid()}")
    probe_dir = Path(runs_dir) / probe
    try:
        seen = (probe_dir / "client").read_text()
    except OSError as exc:
        return {"host": host, "error": f"cannot read the client's probe ({exc.strerror or exc})"}
    if seen != token:
        return {"host": host, "error": "reads a different file at the client's probe path"}
    name = "worker-" + "".join(c if c.isalnum() else "_" for c in addr)
    try:
        (probe_dir / name).write_text(f"{token} {addr} {host}")
    except OSError as exc:
        return {"host": host, "error": f"cannot write under the store ({exc.strerror or exc})"}
    return {"host": host, "file": name, **{f"setup:{k}": v for k, v in setup_fingerprint().items()}}


def setup_fingerprint() -> dict[str, str]:
    """What a worker must share with the client for equal results.

    The hash of cielib's and the notebooks' sources (the shared checkout), Python's
    version and the versions of the packages that compute (the shared environment).
    """
    from importlib import metadata

    h = hashlib.sha256()
    for p in sorted([*paths.PACKAGE_DIR.glob("*.py"), *paths.notebooks_dir().glob("*.py")]):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    out = {"cielib+notebooks sources": h.hexdigest()[:12], "python": platform.python_version()}
    for name in SETUP_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# --------------------------------------------------------------------------- the executor


class DaskExecutor:
    """The Executor protocol on a Dask client: one Dask task per run.

    Args:
        client: a connected ``distributed.Client``.
        gpus: > 0 when the profile asks for GPUs: some worker must then offer the ``GPU``
            resource (the runs that need it say so in their ``resources``).
        capacity: how many runs may be in flight; by default the workers' threads now.
        owned: objects (client, cluster) this executor closes at :meth:`shutdown`.
    """

    def __init__(self, client: Any, *, gpus: int = 0, capacity: int | None = None,
                 owned: tuple[Any, ...] = ()) -> None:
        if gpus < 0:
            raise ValueError(f"gpus must be >= 0, got {gpus}")
        self.client = client
        self.gpus = gpus
        self._owned = owned
        self._static_capacity = capacity
        self._capacity_cache = (0.0, 1)
        self._tokens: dict[str, str] = {}
        self._futures: dict[Any, cf.Future] = {}
        self._lock = threading.Lock()
        self._closed = False
        self.dashboard = _dashboard_link(client)

    # The Executor protocol -------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Runs in flight at once: the fixed capacity, else the workers' threads (refreshed)."""
        if self._static_capacity:
            return self._static_capacity
        stamp, value = self._capacity_cache
        if time.monotonic() - stamp > 10.0:
            value = max(1, sum(self.client.nthreads().values()))
            self._capacity_cache = (time.monotonic(), value)
        return value

    def submit(self, spec: runs.RunSpec, runs_dir: str) -> cf.Future:
        """Submit one run as a Dask task; the returned future resolves to its RunResult."""
        runs_dir = str(Path(runs_dir).absolute())
        token = self._tokens.get(runs_dir) or self.check_store(runs_dir)
        resources = dict(spec.resources) or None  # from the stage table, via the plan
        dfut = self.client.submit(
            _run_on_worker, spec, runs_dir, token,
            key=f"run-{spec.stage}-{spec.run_id}-{uuid.uuid4().hex[:8]}",
            pure=False, retries=1, resources=resources,
        )
        fut: cf.Future = cf.Future()
        fut.set_running_or_notify_cancel()
        with self._lock:
            self._futures[dfut] = fut
        dfut.add_done_callback(self._bridge)
        return fut

    def _bridge(self, dfut: Any) -> None:
        with self._lock:
            fut = self._futures.pop(dfut, None)
        if fut is None or fut.done():
            return
        try:
            if dfut.status == "cancelled":
                fut.set_exception(cf.CancelledError(f"Dask task {dfut.key} was cancelled"))
            else:
                fut.set_result(dfut.result())
        except BaseException as exc:  # noqa: BLE001 - the run's failure travels in the future
            fut.set_exception(exc)

    def shutdown(self) -> None:
        """Cancel the runs that have not finished, then close what this executor started.

        Runs already executing on a cluster this executor started die with its workers
        and leave only an unmarked ``.tmp-`` directory; on a scheduler it did not start,
        they finish (and are committed whole) or are dropped by their worker.
        """
        if self._closed:
            return
        self._closed = True
        with self._lock:
            pending = [f for f in self._futures if not f.done()]
        if pending:
            try:
                self.client.cancel(pending, reason="cielib executor shut down")
            except Exception:  # noqa: BLE001 - the scheduler may already be gone
                pass
        for obj in self._owned:
            try:
                obj.close()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # Checks at start ---------------------------------------------------------------

    def check_store(self, runs_dir: str | Path) -> str:
        """Refuse unless every worker sees ``runs_dir`` as the client does; returns its token.

        The client writes a probe under ``runs_dir``; every worker reads it back and
        writes its own probe, which the client then reads. Workers that join later are
        checked by each of their runs (the store's ``.store-id`` token). The same probe
        compares each worker's checkout and package versions with the client's
        (:func:`setup_fingerprint`).

        Raises:
            StoreNotSharedError: a worker cannot read or write the store at this path.
            SetupMismatchError: a worker runs other sources or package versions.
        """
        runs_path = Path(runs_dir).absolute()
        runs_path.mkdir(parents=True, exist_ok=True)
        token = _ensure_token(runs_path)
        probe = f"{_PROBE_PREFIX}{secrets.token_hex(6)}"
        probe_dir = runs_path / probe
        probe_dir.mkdir()
        nonce = secrets.token_hex(16)
        (probe_dir / "client").write_text(nonce)
        answers: dict[str, Any] = {}
        problems: list[str] = []
        try:
            answers = self.client.run(_probe_worker, str(runs_path), probe, nonce, on_error="return")
            for addr, ans in sorted(answers.items()):
                if isinstance(ans, BaseException):
                    problems.append(f"{addr}: the probe failed ({type(ans).__name__}: {ans})")
                elif "error" in ans:
                    problems.append(f"{addr} on {ans['host']}: {ans['error']}")
                elif not (probe_dir / ans["file"]).is_file():
                    problems.append(f"{addr} on {ans['host']}: wrote its probe, but the client "
                                    "cannot read it back")
        finally:
            shutil.rmtree(probe_dir, ignore_errors=True)
        if not answers:
            raise StoreNotSharedError(f"no Dask worker is connected; cannot check the run store {runs_path}")
        if problems:
            raise StoreNotSharedError(
                f"the run store {runs_path} is not shared with every Dask worker; "
                f"{len(problems)} of {len(answers)} cannot see it: " + "; ".join(problems)
                + ". Put runs/ on a filesystem that every worker mounts at the same path "
                "(set CIELIB_ROOT to a directory on it).")
        mine = setup_fingerprint()
        differ = []
        for addr, ans in sorted(answers.items()):
            diff = [f"{k} {ans.get('setup:' + k)} (client: {v})" for k, v in mine.items()
                    if ans.get("setup:" + k) != v]
            if diff:
                differ.append(f"{addr} on {ans['host']}: " + ", ".join(diff))
        if differ:
            raise SetupMismatchError(
                f"{len(differ)} of {len(answers)} Dask worker(s) run another checkout or environment "
                "than this one: " + "; ".join(differ) + ". Workers must share the project checkout "
                "and the Python environment (same paths, same versions).")
        self._tokens[str(runs_path)] = token
        return token

    def check_resources(self) -> None:
        """With GPUs asked for, refuse unless some worker offers the GPU resource."""
        if not self.gpus:
            return
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        if not any(w.get("resources", {}).get(GPU_RESOURCE) for w in workers.values()):
            raise ClusterConfigError(
                f"the profile asks for GPUs but none of the {len(workers)} Dask worker(s) offers "
                f"the {GPU_RESOURCE} resource; start GPU workers with --resources {GPU_RESOURCE}=1")

    def check_threads(self) -> None:
        """Refuse workers with several threads: papermill and the stderr redirection are per process."""
        many = {a: n for a, n in self.client.nthreads().items() if n != 1}
        if many:
            raise ClusterConfigError(
                f"Dask worker(s) {many} have more than one thread; a run is a whole process's "
                "work (papermill is not thread-safe): start workers with --nthreads 1")


def _ensure_token(runs_dir: Path) -> str:
    found = _read_token(runs_dir)
    if found:
        return found
    token = secrets.token_hex(16)
    tmp = runs_dir / f"{STORE_ID}.{os.getpid()}"
    tmp.write_text(token + "\n")
    try:
        os.link(tmp, runs_dir / STORE_ID)  # first writer wins, atomically
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_token(runs_dir) or token


def _rehost(link: str, bind: str) -> str:
    """The dashboard link with the host it is bound to (Dask prints the scheduler's host)."""
    host = bind.rpartition(":")[0]
    if not host or host in ("0.0.0.0", "::"):
        return link
    scheme, _, rest = link.partition("://")
    hostport, _, tail = rest.partition("/")
    port = hostport.rpartition(":")[2]
    return f"{scheme}://{host}:{port}/{tail}"


def _dashboard_link(client: Any) -> str | None:
    try:
        return client.dashboard_link
    except Exception:  # noqa: BLE001 - a scheduler without a dashboard
        return None


# --------------------------------------------------------------------------- the factory


class DaskKind(execute.ExecutorKind):
    """``--executor dask``: a local Dask cluster, a running scheduler, or SLURM."""

    @classmethod
    def create(cls, *, jobs: int, gpus: int = 0, scheduler: str | None = None,
               cluster_file: str | Path | None = None, runs_dir: str | Path | None = None,
               wait_timeout: float | None = None,
               say: Callable[[str], None] = print) -> "DaskExecutor":
        return make_dask_executor(jobs=jobs, gpus=gpus, scheduler=scheduler,
                                  cluster_file=cluster_file, runs_dir=runs_dir,
                                  wait_timeout=wait_timeout, say=say)


def make_dask_executor(
    *,
    jobs: int,
    scheduler: str | None = None,
    cluster_file: str | Path | None = None,
    gpus: int = 0,
    runs_dir: str | Path | None = None,
    wait_timeout: float | None = None,
    say: Callable[[str], None] = print,
) -> "DaskExecutor":
    """A Dask executor (via ``cielib.execute.executors``, which checked ``jobs`` and ``gpus``).

    ``scheduler`` (``tcp://`` or ``tls://`` address) connects to a running scheduler;
    ``cluster_file`` (a ``[cluster]`` table) starts a SLURM cluster or names a scheduler
    with its TLS files; neither starts a ``LocalCluster`` of ``jobs`` one-thread worker
    processes on 127.0.0.1. The dashboard address is printed with ``say``. With
    ``runs_dir`` the shared store is checked before returning.

    Raises:
        ClusterConfigError: a bad option or cluster file (before anything starts).
        StoreNotSharedError: some worker cannot see ``runs_dir``.
    """
    spec = load_cluster_file(cluster_file) if cluster_file else None
    if scheduler is not None:
        check_address(scheduler, where="--scheduler")
        if spec is not None and spec.kind != "scheduler":
            raise ClusterConfigError(
                f"--scheduler {scheduler} and a kind = {spec.kind!r} cluster file exclude each other; "
                "a cluster file given with --scheduler may only say kind = \"scheduler\" and its tls")
    if spec is not None and spec.kind == "slurm" and gpus and not spec.gpus:
        raise ClusterConfigError(
            f"{spec.source}: the profile asks for GPUs but [cluster] gpus = 0; set gpus = 1")
    address = scheduler or (spec.address if spec is not None and spec.kind == "scheduler" else None)

    from distributed import Client

    if address is not None:
        security = spec.tls.security() if spec is not None and spec.tls else None
        if address.startswith("tls://") and security is None:
            from distributed.security import Security

            security = Security()  # Dask's own config (distributed.comm.tls.*) may name the files
            if not security.tls_ca_file or not security.tls_client_cert:
                raise ClusterConfigError(
                    f"--scheduler {address} needs TLS files: a cluster file with kind = \"scheduler\" "
                    "and [cluster.tls] ca_file, cert, key, or Dask's distributed.comm.tls config")
        client = Client(address, security=security, timeout="30s")
        owned: tuple[Any, ...] = (client,)
        capacity = None
        where = f"scheduler {address}"
        timeout = wait_timeout or (spec.wait_timeout if spec else None) or DEFAULT_WAIT_S["scheduler"]
        need = 1
    elif spec is not None:
        cluster = slurm_cluster(spec)
        if spec.adaptive:
            cluster.adapt(minimum_jobs=spec.adaptive[0], maximum_jobs=spec.adaptive[1])
        else:
            cluster.scale(jobs=spec.jobs)
        client = Client(cluster, security=spec.tls.security() if spec.tls else None)
        owned = (client, cluster)
        capacity = spec.workers
        where = f"SLURM cluster from {spec.source}"
        timeout = wait_timeout or spec.wait_timeout or DEFAULT_WAIT_S["slurm"]
        need = 1
    else:
        cluster = local_cluster(jobs=jobs, gpus=gpus)
        client = Client(cluster)
        owned = (client, cluster)
        capacity = jobs
        where = f"local cluster of {jobs} worker process(es)"
        timeout = wait_timeout or DEFAULT_WAIT_S["local"]
        need = jobs
    ex = DaskExecutor(client, gpus=gpus, capacity=capacity, owned=owned)
    if spec is not None and spec.kind == "slurm" and ex.dashboard:
        ex.dashboard = _rehost(ex.dashboard, spec.dashboard)
    try:
        say(f"dask: {where}; dashboard: {ex.dashboard or 'not available'}")
        try:
            client.wait_for_workers(need, timeout=timeout)
        except TimeoutError as exc:
            raise NoWorkersError(
                f"no Dask worker joined the {where} within {timeout:g}s; cannot check the run store") from exc
        ex.check_threads()
        ex.check_resources()
        if runs_dir is not None:
            ex.check_store(runs_dir)
    except BaseException:
        ex.shutdown()
        raise
    return ex
