"""Writing the run store safely: claims, atomic commits, integrity checks, the index.

The protocol, for one run id:

1. **Claim** it: ``runs/<stage>/.claim-<id>`` is created with ``O_EXCL`` and holds the
   owner's host, pid and process start time; the owner refreshes its mtime while it
   works. Another invocation (or Dask worker) that meets a claim waits for it and then
   uses the run as cached, or, when the owner is dead (same host: no such process;
   any host: no heartbeat for :data:`STALE_AFTER_S`), takes the claim over. So a run is
   never executed twice at once, and nobody fails because another process finished
   first.
2. **Write** into a private ``.tmp-<id>-<pid>`` directory; on success write ``DONE``
   last inside it, recording every output file's size and sha256.
3. **Commit**: rename the directory into place. A finished run being replaced
   (``--force``, or damaged outputs) is moved aside first and removed only once the
   new one is in place; if anything fails, it is put back. A failed run goes to
   ``failed-<id>`` and the last good run stays.

A run counts as done only when ``DONE`` exists and its recorded files are all there
with their recorded sizes (a cheap check made on every start); :func:`verify` also
compares their hashes.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from cielib import hashing
from cielib.runs import DONE, INDEX, PARAMS, TMP_PREFIX, RunSpec, done_runs, read_json, run_path, table

CLAIM_PREFIX = ".claim-"
#: A claim whose owner has not refreshed it for this long is stale (owner on another host).
STALE_AFTER_S = 120.0
HEARTBEAT_S = 10.0
#: Refuse to start with less free space than this in the store.
MIN_FREE_BYTES = 200 * 1024 * 1024
_HOST = socket.gethostname()


class StoreError(OSError):
    """The run store cannot be used (not writable, full); nothing was started."""


# --- integrity ------------------------------------------------------------------------


def manifest(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file in a run directory (``DONE`` itself excluded)."""
    out = {}
    for p in sorted(Path(run_dir).rglob("*")):
        if p.is_file() and p.name != DONE:
            out[p.relative_to(run_dir).as_posix()] = {"bytes": p.stat().st_size,
                                                      "sha256": hashing.file_sha256(p)}
    return out


def problems(run_dir: Path, *, full: bool = False) -> list[str]:
    """What is wrong with a finished run: missing or resized outputs (hashes if ``full``).

    An empty list means the run is intact. A directory without ``DONE`` is incomplete.
    """
    marker = Path(run_dir) / DONE
    if not marker.is_file():
        return ["incomplete: no DONE marker"]
    try:
        files = json.loads(marker.read_text()).get("files", {})
    except (OSError, ValueError, AttributeError) as exc:
        return [f"DONE is unreadable ({type(exc).__name__})"]
    out = []
    for name, rec in files.items():
        p = Path(run_dir) / name
        try:
            size = p.stat().st_size
        except OSError:
            out.append(f"missing: {name}")
            continue
        if size != rec.get("bytes"):
            out.append(f"size changed: {name} ({rec.get('bytes')} -> {size} bytes)")
        elif full and hashing.file_sha256(p) != rec.get("sha256"):
            out.append(f"content changed: {name}")
    return out


def is_done(run_dir: Path) -> bool:
    """Finished and intact by the cheap check (every recorded file there, same size)."""
    return not problems(run_dir)


def is_spec_done(spec: RunSpec, runs_dir: Path) -> bool:
    """Whether a planned run is finished and intact in the store: the one place a
    planner, the pipeline and the report ask it."""
    return is_done(spec.path(runs_dir))


def will_run(spec: RunSpec, runs_dir: Path) -> bool:
    """Whether executing ``spec`` runs its notebook: forced, or not done."""
    return spec.force or not is_spec_done(spec, runs_dir)


def verify(runs_dir: Path) -> dict[str, list[str]]:
    """Check the whole store with full hashes: ``{run path: problems}`` for every bad run.

    Covers finished runs whose outputs changed, run directories without ``DONE``, and
    leftovers of interrupted runs whose owner is gone.
    """
    runs_dir = Path(runs_dir)
    bad: dict[str, list[str]] = {}
    if not runs_dir.is_dir():
        return bad
    for d in sorted(p for p in runs_dir.glob("*/*") if p.is_dir()):
        name = d.name
        if name.startswith("failed-"):
            continue
        if name.startswith(TMP_PREFIX):
            pid = name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid), None):
                bad[str(d)] = ["leftover of an interrupted run (its process is gone)"]
            continue
        if name.startswith("."):
            continue
        found = problems(d, full=True)
        if found:
            bad[str(d)] = found
    return bad


# --- claims ---------------------------------------------------------------------------


def _proc_start(pid: int) -> float | None:
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - no such process, or no permission
        return None


def _pid_alive(pid: int, started: float | None) -> bool:
    now = _proc_start(pid)
    if now is None:
        return False
    return started is None or abs(now - started) < 1.0  # not a reused pid


def _claim_path(runs_dir: Path, stage: str, rid: str) -> Path:
    return Path(runs_dir) / stage / f"{CLAIM_PREFIX}{rid}"


def claim_owner(path: Path) -> dict[str, Any] | None:
    """The owner record of a claim file (None if it vanished or is being written)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def claim_is_stale(path: Path, *, stale_after: float = STALE_AFTER_S) -> bool:
    """A claim whose owner is dead (same host) or silent for ``stale_after`` seconds."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False  # released meanwhile: not stale, just gone
    owner = claim_owner(path)
    if owner is None:
        return age > stale_after  # unreadable for that long: a crash while writing it
    if owner.get("host") == _HOST:
        return not _pid_alive(int(owner.get("pid", -1)), owner.get("started"))
    return age > stale_after


class Claim:
    """An exclusive claim on one run id, refreshed by a heartbeat thread while held."""

    def __init__(self, path: Path):
        self.path = path
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def try_claim(runs_dir: Path, stage: str, rid: str) -> Claim | None:
    """Claim a run id atomically; take over a stale claim; None if someone holds it."""
    path = _claim_path(runs_dir, stage, rid)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"host": _HOST, "pid": os.getpid(), "started": _proc_start(os.getpid()),
          "claimed_at": time.time()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not claim_is_stale(path):
                return None
            # Take over: only one contender's rename of the stale claim succeeds.
            aside = path.with_name(f"{path.name}.stale-{os.getpid()}")
            try:
                os.replace(path, aside)
            except FileNotFoundError:
                continue
            aside.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            json.dump(me, fh)
        return Claim(path)
    return None


def wait_for_claim(runs_dir: Path, stage: str, rid: str, *, poll_s: float = 1.0,
                   timeout_s: float | None = None) -> Claim | None:
    """Claim a run id, waiting while another live owner holds it.

    Returns the claim, or None if the run became done while waiting (use it as cached).
    """
    start = time.monotonic()
    final = run_path(runs_dir, stage, rid)
    while True:
        c = try_claim(runs_dir, stage, rid)
        if c is not None:
            return c
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"run {rid} stayed claimed by {claim_owner(_claim_path(runs_dir, stage, rid))}")
        time.sleep(poll_s)
        if is_done(final) and not _claim_path(runs_dir, stage, rid).exists():
            return None


# --- writing a run --------------------------------------------------------------------


def make_tmp_dir(runs_dir: Path, stage: str, rid: str) -> Path:
    """A fresh private directory for a run in progress (same filesystem as the target)."""
    parent = Path(runs_dir) / stage
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f"{TMP_PREFIX}{rid}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def commit(tmp: Path, final: Path, *, summary: dict[str, Any] | None = None) -> Path:
    """Mark a finished run (``DONE`` last, with its files' sizes and hashes) and move it in.

    Whatever is at ``final`` (an older finished run, a damaged one, an unfinished
    leftover) is moved aside and removed only once the new run is in place; if the
    move fails, it is restored. The caller holds the run's claim.
    """
    tmp, final = Path(tmp), Path(final)
    record = {**(summary or {}), "host": _HOST, "files": manifest(tmp)}
    _atomic_write(tmp / DONE, json.dumps(record, indent=1))
    aside = None
    if final.exists():
        aside = final.with_name(f".old-{final.name}-{os.getpid()}")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(final, aside)
    try:
        os.replace(tmp, final)
    except BaseException:
        if aside is not None and not final.exists():
            os.replace(aside, final)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)
    return final


def keep_failed(tmp: Path, runs_dir: Path, stage: str, rid: str) -> Path:
    """Move a failed run's directory (with its executed notebook) to ``failed-<id>``."""
    failed = run_path(runs_dir, stage, f"failed-{rid}")
    shutil.rmtree(failed, ignore_errors=True)
    if Path(tmp).exists():
        os.replace(tmp, failed)
    return failed


def discard(path: Path) -> None:
    """Remove a run directory (used by --clean)."""
    shutil.rmtree(path, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- the store as a whole -------------------------------------------------------------


def check_writable(runs_dir: Path, *, min_free: int = MIN_FREE_BYTES) -> None:
    """Refuse a store that cannot be written (read-only, not a directory, full disk).

    Raises:
        StoreError: with one message naming the store and what is wrong.
    """
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        probe = runs_dir / f".probe-{_HOST}-{os.getpid()}"
        with open(probe, "wb") as fh:
            fh.write(b"cielib store probe\n")
            fh.flush()
            os.fsync(fh.fileno())
        ok = probe.read_bytes() == b"cielib store probe\n"
        probe.unlink()
        if not ok:
            raise OSError(errno.EIO, "a probe file read back differently")
        free = shutil.disk_usage(runs_dir).free
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StoreError(f"the run store {runs_dir} cannot be written ({reason}); nothing was run. "
                         "Make it writable, or set CIELIB_ROOT to a writable project root.") from None
    if free < min_free:
        raise StoreError(f"the run store {runs_dir} has only {free // 2**20} MiB free (at least "
                         f"{min_free // 2**20} MiB needed); nothing was run")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_index(runs_dir: Path) -> pd.DataFrame:
    """Rebuild ``runs/index.csv`` from the finished runs, atomically.

    Writers (several invocations, several workers) take a lock, so the last one to write
    has seen every run finished before it; each writes through its own temporary file.
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    with _locked(runs_dir / ".index.lock"):
        df = table(runs_dir, root=runs_dir.parent)
        if len(df):
            df = df.sort_values(["stage", "task", "sparsity", "technique", "seed"], na_position="first")
        _atomic_write(runs_dir / INDEX, df.to_csv(index=False))
    return df


def why_rerun(spec: RunSpec, runs_dir: Path) -> str:
    """Why a run that is not done will run: damaged, new, or what changed since the last one."""
    final = spec.path(runs_dir)
    if spec.force and is_done(final):
        return "--force"
    if (final / DONE).is_file():
        return "outputs changed: " + ", ".join(problems(final))
    ident = spec.identity()
    best = None
    for done in done_runs(runs_dir):
        if done.parent.name != spec.stage:
            continue
        old = read_json(done / PARAMS)
        if {k: old["params"].get(k) for k in spec.key} == spec.key:
            best = old
            break
    if best is None:
        return "new run"
    changes = [f"{k}: {best['params'].get(k)!r} -> {ident['params'].get(k)!r}"
               for k in sorted(set(ident["params"]) | set(best["params"]))
               if ident["params"].get(k) != best["params"].get(k)]
    if ident["upstream"] != best["upstream"]:
        changes.append("upstream runs changed")
    if ident["notebook_hash"] != best["notebook_hash"]:
        changes.append(f"notebook {spec.notebook} changed")
    if ident["version"] != best["version"]:
        changes.append(f"cielib {best['version']} -> {ident['version']}")
    return "; ".join(changes) or "previous run incomplete"


def unused(specs: Iterable[RunSpec], runs_dir: Path) -> list[Path]:
    """Run directories (and failed or interrupted leftovers) that no spec of the plan uses."""
    keep = {(s.stage, s.run_id) for s in specs}
    return sorted(p for p in Path(runs_dir).glob("*/*")
                  if p.is_dir() and (p.parent.name, p.name) not in keep
                  and not p.name.startswith(CLAIM_PREFIX))
