"""Executing a plan: one small executor interface, a local process-pool backend.

``run_spec`` is the unit of work: it executes one RunSpec's notebook into a private
temporary directory and, only if the notebook (including its ``assert`` cell)
succeeded, renames it into the store and writes ``DONE``. A failed run keeps its
executed notebook with the traceback under ``runs/<stage>/failed-<run_id>/``.

``Executor`` is the interface the scheduler talks to (submit a spec, get a future of
its result); ``LocalExecutor`` runs specs in worker processes (papermill is not
thread-safe). Another backend (a cluster engine) only has to implement ``submit``.

Backends are found by name in :data:`executors` (papermill's ``engines.py`` pattern: a
registry plus a small base class, :class:`ExecutorKind`); ``dask`` is registered by
module path, so its module (and Dask) is imported only when a Dask executor is asked for.

Importing this module does not import TensorFlow or Dask.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from cielib import notebook_source, runs, store
from cielib.cluster_file import ClusterConfigError


#: Environment variable: the address of a kernel server that someone else started and
#: owns (:func:`cielib.kernel_server.start`). The local executor then forks its kernels
#: from it instead of starting a server of its own, and leaves it running. The test
#: suite shares one per test process this way (each ``run_all.py`` would otherwise spend
#: seconds of CPU importing TensorFlow into a new server); a user has no reason to set
#: it: a server keeps the code it imported, so kernels forked after an edit of cielib
#: would run the old code.
KERNEL_SERVER_ENV = "CIELIB_KERNEL_SERVER"


@dataclass(frozen=True)
class RunResult:
    run_id: str
    stage: str
    label: str
    status: str  # "ran", "cached", "failed", "skipped"
    seconds: float
    path: str
    error: str = ""


def run_spec(spec: runs.RunSpec, runs_dir: str, *, kernel_server: str | None = None) -> RunResult:
    """Execute one run (in whatever process calls it) and commit it to the store.

    With ``kernel_server`` its kernel is forked from that warm kernel server
    (:mod:`cielib.kernel_server`) when the run can use it (:func:`warm_kernel_fits`).

    The run is claimed first (:mod:`cielib.store`): if another invocation or worker is
    executing it, this waits and then reports it as cached; a dead owner's claim is
    taken over. A forced or damaged run is replaced only once its rerun has succeeded.
    """
    runs_dir_p = Path(runs_dir)
    rid = spec.run_id
    final = runs.run_path(runs_dir_p, spec.stage, rid)

    def result(status: str, seconds: float = 0.0, path: Path = final, error: str = "") -> RunResult:
        return RunResult(rid, spec.stage, spec.label(), status, seconds, str(path), error)

    if not spec.force and store.is_done(final):
        return result("cached")
    start = time.perf_counter()
    claim = store.wait_for_claim(runs_dir_p, spec.stage, rid)
    if claim is None:  # another process finished it while we waited
        return result("cached")
    with claim:
        if not spec.force and store.is_done(final):
            return result("cached")
        start = time.perf_counter()
        tmp = store.make_tmp_dir(runs_dir_p, spec.stage, rid)
        runs.write_json(tmp / runs.PARAMS, spec.identity())
        try:
            with _stderr_to(tmp / "kernel.log"):
                notebook_source.execute(
                    notebook_source.notebook_path(spec.notebook),
                    output=tmp / runs.EXECUTED,
                    parameters=spec.notebook_parameters(tmp),
                    cwd=tmp,
                    expected_hash=spec.notebook_hash or None,
                    kernel_server=kernel_server if warm_kernel_fits(spec) else None,
                )
        except BaseException as exc:  # noqa: BLE001 - record every failure, re-raise Ctrl-C
            failed = store.keep_failed(tmp, runs_dir_p, spec.stage, rid)
            if isinstance(exc, KeyboardInterrupt):
                raise
            return result("failed", time.perf_counter() - start, failed / runs.EXECUTED,
                          _short_error(exc))
        seconds = time.perf_counter() - start
        store.commit(tmp, final, summary={"seconds": seconds, "run_id": rid})
    return result("ran", seconds)


def warm_kernel_fits(spec: runs.RunSpec) -> bool:
    """Whether a kernel with TensorFlow already imported gives this run what a fresh one would.

    The server imports TensorFlow with :data:`cielib.keras.ONEDNN`; a run that asks for
    the other kernel library, or an environment that sets it otherwise, starts its own.
    """
    from cielib.keras import ONEDNN

    want = "1" if ONEDNN else "0"
    return (bool(spec.params.get("onednn", ONEDNN)) == ONEDNN
            and os.environ.get("TF_ENABLE_ONEDNN_OPTS", want) == want)


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """Send this process's (and so the kernel's) stderr file descriptor to a log file.

    TensorFlow's C++ start-up lines and Jupyter's kernel warnings are written straight
    to fd 2 by the kernel process; they belong in the run's ``kernel.log``, not on the
    user's terminal.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _short_error(exc: BaseException) -> str:
    name = getattr(exc, "ename", type(exc).__name__)
    value = getattr(exc, "evalue", str(exc))
    text = f"{name}: {value}".strip()
    if not text or text == ":":
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[0][:500] if text else type(exc).__name__


class Executor(Protocol):
    """Submit a run spec, get a future of its RunResult."""

    capacity: int  # how many runs may be in flight at once

    def submit(self, spec: runs.RunSpec, runs_dir: str) -> cf.Future: ...

    def shutdown(self) -> None: ...


class LocalExecutor:
    """Runs specs in ``jobs`` worker processes (or inline when jobs == 1).

    With ``warm`` (the default) the notebooks' kernels are forked from one kernel server
    that has imported TensorFlow and the notebooks' modules once
    (:mod:`cielib.kernel_server`), started with the first run; results are the same as
    with kernels started from scratch (``warm=False``), only sooner.
    """

    def __init__(self, jobs: int = 1, *, warm: bool = True) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.jobs = jobs
        self.capacity = jobs
        self.warm = warm
        self._server: tuple[Any, str] | None = None
        self._pool: cf.ProcessPoolExecutor | None = None
        if jobs > 1:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn")
            )

    def _kernel_server(self) -> str | None:
        if not self.warm:
            return None
        shared = os.environ.get(KERNEL_SERVER_ENV)
        if shared:
            return shared
        if self._server is None:
            from cielib import kernel_server

            self._server = kernel_server.start()
        return self._server[1]

    def submit(self, spec: runs.RunSpec, runs_dir: str) -> cf.Future:
        server = self._kernel_server()
        if self._pool is not None:
            return self._pool.submit(run_spec, spec, runs_dir, kernel_server=server)
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(run_spec(spec, runs_dir, kernel_server=server))
        except BaseException as exc:  # noqa: BLE001
            fut.set_exception(exc)
        return fut

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._server is not None:
            from cielib import kernel_server

            kernel_server.stop(*self._server)
            self._server = None


def run_plan(
    specs: list[runs.RunSpec],
    *,
    runs_dir: Path,
    executor: Executor,
    fail_fast: bool = False,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run specs in dependency order: a spec starts once all its upstream runs are done.

    Among the runs that are ready, the deepest in the plan's graph starts first (a
    quantize run before another training run, plan order among equals): a long
    downstream run such as quantizing VGG-19 then overlaps the remaining training runs
    instead of running alone at the end. The order changes no result (run ids and
    outputs do not depend on it). Runs whose upstream failed are reported as
    ``skipped``. With ``fail_fast`` no new run starts after the first failure.
    """
    by_id = {s.run_id: s for s in specs}
    depth: dict[str, int] = {}

    def depth_of(rid: str) -> int:
        if rid not in depth:
            ups = [u for u in by_id[rid].upstream if u in by_id]
            depth[rid] = 1 + max(map(depth_of, ups)) if ups else 0
        return depth[rid]

    priority = sorted(by_id, key=lambda rid: -depth_of(rid))  # stable: plan order among equals
    pending = dict(by_id)
    ok: set[str] = {rid for rid, s in by_id.items()
                     if not s.force and store.is_done(runs.run_path(runs_dir, s.stage, rid))}
    bad: set[str] = set()
    results: list[RunResult] = []
    running: dict[cf.Future, str] = {}
    stop = False

    def emit(res: RunResult) -> None:
        results.append(res)
        if on_result:
            on_result(res)

    for rid in sorted(ok, key=list(by_id).index):
        spec = pending.pop(rid)
        path = str(runs.run_path(runs_dir, spec.stage, rid))
        emit(RunResult(rid, spec.stage, spec.label(), "cached", 0.0, path))

    while pending or running:
        if not stop:
            for rid in [r for r in priority if r in pending]:
                spec = pending[rid]
                if len(running) >= getattr(executor, "capacity", 1):
                    break
                ups = [u for u in spec.upstream if u in by_id]
                if any(u in bad for u in ups):
                    del pending[rid]
                    bad.add(rid)
                    path = str(runs.run_path(runs_dir, spec.stage, rid))
                    emit(RunResult(rid, spec.stage, spec.label(), "skipped", 0.0, path,
                                   "an upstream run failed"))
                    continue
                if all(u in ok for u in ups):
                    del pending[rid]
                    running[executor.submit(spec, str(runs_dir))] = rid
        if not running:
            if stop or not pending:
                break
            raise RuntimeError(f"plan has runs with unknown upstream: {sorted(pending)}")
        done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
        order = list(running)
        for fut in sorted(done, key=order.index):
            rid = running.pop(fut)
            spec = by_id[rid]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker is a failed run
                res = RunResult(rid, spec.stage, spec.label(), "failed", 0.0,
                                str(runs.run_path(runs_dir, spec.stage, rid)), _short_error(exc))
            (ok if res.status in ("ran", "cached") else bad).add(rid)
            emit(res)
            if res.status == "failed" and fail_fast:
                stop = True
        if stop and not running:
            for rid, spec in pending.items():
                emit(RunResult(rid, spec.stage, spec.label(), "skipped", 0.0,
                               str(runs.run_path(runs_dir, spec.stage, rid)), "--fail-fast"))
            pending.clear()
    return results


# --------------------------------------------------------------------------- the registry


class ExecutorKind:
    """One way of running a plan, as ``run_all.py --executor NAME`` names it.

    Subclass, implement :meth:`create`, and register the class (or its
    ``"module:Class"`` path, so its module is imported only when chosen) with
    :data:`executors`. The registry has already checked ``jobs`` and ``gpus``.
    """

    help: str = ""

    @classmethod
    def create(cls, *, jobs: int, gpus: int = 0, scheduler: str | None = None,
               cluster_file: str | Path | None = None, runs_dir: str | Path | None = None,
               wait_timeout: float | None = None,
               say: Callable[[str], None] = print) -> Executor:
        """A ready executor (its workers started and checked), or a clear error."""
        raise NotImplementedError


class LocalKind(ExecutorKind):
    """A local process pool (:class:`LocalExecutor`)."""

    help = "a process pool on this machine (default)"

    @classmethod
    def create(cls, *, jobs: int, gpus: int = 0, scheduler: str | None = None,
               cluster_file: str | Path | None = None, runs_dir: str | Path | None = None,
               wait_timeout: float | None = None,
               say: Callable[[str], None] = print) -> Executor:
        if scheduler or cluster_file:
            raise ClusterConfigError("--scheduler and --cluster need --executor dask")
        return LocalExecutor(jobs=jobs, warm=cls.warm)

    warm = True


class FreshLocalKind(LocalKind):
    """The local process pool with every kernel started from scratch (to compare with)."""

    help = "the same, each kernel started from scratch: slower, same results"
    warm = False


class ExecutorRegistry:
    """Executor kinds by name; a kind given as ``"module:Class"`` is imported on first use."""

    def __init__(self) -> None:
        self._kinds: dict[str, type[ExecutorKind] | str] = {}
        self._helps: dict[str, str] = {}

    def register(self, name: str, kind: type[ExecutorKind] | str, *, help: str = "") -> None:
        """Register ``kind`` (a class, or ``"module:Class"`` to import lazily) as ``name``;
        ``help`` describes a lazily registered kind for ``--help``."""
        if not isinstance(kind, str) and not (isinstance(kind, type) and issubclass(kind, ExecutorKind)):
            raise TypeError(f"executor {name!r}: expected an ExecutorKind subclass or "
                            f"'module:Class', got {kind!r}")
        self._kinds[name] = kind
        self._helps[name] = help

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def help(self, name: str) -> str:
        """A kind's one-line description (without importing a lazily registered module)."""
        kind = self._kinds[name]
        return kind.help if not isinstance(kind, str) else self._helps.get(name, "")

    def get(self, name: str) -> type[ExecutorKind]:
        """The kind registered as ``name`` (importing its module if registered by path)."""
        if name not in self._kinds:
            raise ClusterConfigError(f"executor {name!r} is unknown; allowed: {', '.join(self._kinds)}")
        kind = self._kinds[name]
        if isinstance(kind, str):
            module, _, attr = kind.partition(":")
            kind = getattr(importlib.import_module(module), attr)
            self._kinds[name] = kind
        return kind

    def create(self, name: str, *, jobs: int, gpus: int = 0, **options: Any) -> Executor:
        """Check the common options, then build the executor ``name`` (see :class:`ExecutorKind`).

        Raises:
            ClusterConfigError: an unknown name, a bad ``jobs`` or ``gpus``, or an option
                the kind refuses (before anything starts).
        """
        if name not in self._kinds:
            raise ClusterConfigError(f"executor {name!r} is unknown; allowed: {', '.join(self._kinds)}")
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ClusterConfigError(f"jobs must be an integer >= 1, got {jobs!r}")
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
            raise ClusterConfigError(f"gpus must be an integer >= 0, got {gpus!r}")
        return self.get(name).create(jobs=jobs, gpus=gpus, **options)


#: The executors ``run_all.py --executor`` accepts.
executors = ExecutorRegistry()
executors.register("local", LocalKind)
executors.register("local-fresh", FreshLocalKind)
executors.register("dask", "cielib.dask_executor:DaskKind",
                   help="a local Dask cluster, --scheduler, or --cluster")


def make_executor(kind: str = "local", **options: Any) -> Executor:
    """``executors.create(kind, **options)``: the executor run_all.py asks for."""
    return executors.create(kind, **options)
