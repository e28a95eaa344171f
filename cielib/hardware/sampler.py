"""The :class:`Sampler`: GPU (NVML) or CPU (psutil) load polled in a background thread.

See :mod:`cielib.hardware` for the backends and the choice of interval.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from cielib.checks import check_choice
from cielib.hardware._nvml import describe, is_not_supported, shutdown_quietly, visible_indices


log = logging.getLogger(__package__)  # one logger, ``cielib.hardware``, for the whole package

BACKENDS = ("auto", "nvml", "cpu")
DEFAULT_INTERVAL = 0.5
#: Metric columns of the NVML backend, in order.
GPU_METRICS = (
    "utilization_pct",
    "memory_utilization_pct",
    "memory_used_bytes",
    "power_w",
    "energy_mj",
)
#: Metric columns of the CPU backend, in order.
CPU_METRICS = ("process_cpu_pct", "system_cpu_pct", "rss_bytes")
_ID_COLUMNS = ("t", "backend", "device")
# Live child processes are re-listed this often: listing scans every process on the
# machine (~0.5 ms per 70 processes), too dear for every tick on a busy host.
_CHILDREN_RESCAN_S = 10.0


class Sampler:
    """Samples GPU or CPU load in a background thread.

    Use as a context manager (``with Sampler() as s: model.fit(...)``) or call
    :meth:`start` and :meth:`stop`; :func:`keras_callback` does that around ``fit``.
    A sampler records one span: start it once. A sample is taken at start, every
    ``interval`` seconds, and at stop, so even a short span has two points and the
    energy counter covers the whole span. Nothing the sampler does raises into the
    code being measured: a failing NVML call is logged once per kind of error, its
    value is NaN, and sampling carries on.

    Args:
        interval: Seconds between samples, > 0 (default 0.5; see the module docs).
        backend: ``"auto"``, ``"nvml"`` (fail at :meth:`start` if NVML is unusable)
            or ``"cpu"``.
        nvml: The NVML module to use instead of ``import pynvml``; for tests, which
            plant known values through a fake.
        include_children: Add the CPU % of live child processes to the process CPU %
            (children are re-listed every 10 s, not every tick, to keep it cheap).
    """

    def __init__(
        self,
        *,
        interval: float = DEFAULT_INTERVAL,
        backend: str = "auto",
        nvml: Any = None,
        include_children: bool = True,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, (int, float)):
            raise TypeError(f"interval must be a number of seconds, got {interval!r}")
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"interval must be a finite number of seconds > 0, got {interval}")
        check_choice(backend, BACKENDS, what="backend")
        self.interval = float(interval)
        self.requested_backend = backend
        self.include_children = bool(include_children)
        self._nvml_injected = nvml
        self._nvml: Any = None
        self.backend: str | None = None
        self.backend_reason: str | None = None
        self.devices: list[int] = []
        self.notes: list[str] = []
        self.errors: dict[str, int] = {}
        self._rows: list[tuple] = []
        self._state = "new"  # new -> running -> stopped
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._t0 = 0.0
        self._t_end: float | None = None
        self._busy_s = 0.0
        self._cpu_start: float | None = None
        self._cpu_end: float | None = None
        self._handles: list[Any] = []
        self._disabled: set[tuple[int, str]] = set()
        self._psutil: Any = None
        self._proc: Any = None
        self._children: dict[int, Any] = {}
        self._children_scanned = -math.inf
        self._t_prev: float | None = None

    # -- life cycle

    def __enter__(self) -> "Sampler":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._state == "running"

    def start(self) -> "Sampler":
        """Choose the backend, take the first sample and start the thread.

        Raises:
            RuntimeError: The sampler was started before, or ``backend="nvml"`` was
                asked for and NVML is unusable (the message says why).
        """
        if self._state != "new":
            raise RuntimeError("a Sampler records one span and was already started; create a new one")
        import psutil  # cheap; deferred so that merely importing cielib stays light

        self._psutil = psutil
        self._proc = psutil.Process()
        self._choose_backend()
        cpu = self._proc.cpu_times()
        self._cpu_start = _cpu_seconds(cpu)
        self._state = "running"
        self._t0 = time.perf_counter()
        self._safe_tick()
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._loop, name="cielib-hardware-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> "Sampler":
        """Stop the thread, take a last sample and release NVML. Safe to call twice."""
        if self._state != "running":
            return self
        self._stop_event.set()
        if self._thread is not None:
            # A driver call that hangs must not hang the end of training: give up
            # waiting (the thread is a daemon) and skip the closing sample.
            self._thread.join(timeout=max(5.0, 10 * self.interval))
        if self._thread is not None and self._thread.is_alive():
            self._note("sampler thread did not stop in time (a hung query?); left behind")
        else:
            self._safe_tick()
        self._t_end = time.perf_counter() - self._t0
        try:
            self._cpu_end = _cpu_seconds(self._proc.cpu_times())
        except Exception as exc:  # pragma: no cover - psutil on a vanished /proc
            self._error("cpu_times", exc)
        if self.backend == "nvml":
            try:
                self._nvml.nvmlShutdown()
            except Exception as exc:
                self._error("nvmlShutdown", exc)
        self._state = "stopped"
        return self

    # -- results

    @property
    def samples(self) -> pd.DataFrame:
        """The trace, one row per device and tick.

        Columns: ``t`` (seconds since start), ``backend``, ``device`` (NVML index, or
        ``"cpu"``), then :data:`GPU_METRICS` or :data:`CPU_METRICS`. Missing values
        (unsupported metric, failed call) are NaN.
        """
        metrics = GPU_METRICS if self.backend == "nvml" else CPU_METRICS
        with self._lock:
            rows = list(self._rows)
        df = pd.DataFrame(rows, columns=[*_ID_COLUMNS, *metrics])
        for col in metrics:
            df[col] = df[col].astype(float)
        df["t"] = df["t"].astype(float)
        return df

    def summary(self) -> dict[str, Any]:
        """Headline numbers of the span, JSON-ready (``None`` where unknown).

        Always: ``backend``, ``backend_reason``, ``n_samples`` (ticks), ``interval``,
        ``duration_s``, ``cpu_seconds`` (user + system CPU time this process used
        during the span, from ``cpu_times`` differences, not integrated percentages),
        ``sampler_cpu_s`` (CPU time the sampling itself used: its direct cost),
        ``devices``, ``notes`` and ``errors`` (count per kind).

        NVML adds ``utilization_mean_pct``/``utilization_max_pct``,
        ``memory_utilization_mean_pct``, ``memory_used_mean_bytes``/``..._max_bytes``,
        ``power_mean_w`` and ``energy_j`` summed over devices, from the energy counter
        where every device has one (``energy_source="counter"``), else power
        integrated over time (``"integrated_power"``). CPU adds
        ``process_cpu_mean_pct``/``process_cpu_max_pct`` (100 = one core busy),
        ``system_cpu_mean_pct`` and ``rss_max_bytes``.
        """
        df = self.samples
        duration = self._t_end if self._t_end is not None else (
            time.perf_counter() - self._t0 if self.running else None
        )
        cpu_now = self._cpu_end
        if cpu_now is None and self.running:
            cpu_now = _cpu_seconds(self._proc.cpu_times())
        out: dict[str, Any] = {
            "backend": self.backend,
            "backend_reason": self.backend_reason,
            "n_samples": int(df["t"].nunique()),
            "interval": self.interval,
            "duration_s": _num(duration),
            "cpu_seconds": _num(None if self._cpu_start is None or cpu_now is None else cpu_now - self._cpu_start),
            "sampler_cpu_s": _num(self._busy_s),
            "devices": list(self.devices) if self.backend == "nvml" else ["cpu"] if self.backend else [],
        }
        if self.backend == "nvml":
            energy, source = _energy_j(df)
            out.update(
                utilization_mean_pct=_num(df["utilization_pct"].mean()),
                utilization_max_pct=_num(df["utilization_pct"].max()),
                memory_utilization_mean_pct=_num(df["memory_utilization_pct"].mean()),
                memory_used_mean_bytes=_num(df["memory_used_bytes"].mean()),
                memory_used_max_bytes=_num(df["memory_used_bytes"].max()),
                power_mean_w=_num(df["power_w"].mean()),
                energy_j=_num(energy),
                energy_source=source,
            )
        elif self.backend == "cpu":
            out.update(
                process_cpu_mean_pct=_num(df["process_cpu_pct"].mean()),
                process_cpu_max_pct=_num(df["process_cpu_pct"].max()),
                system_cpu_mean_pct=_num(df["system_cpu_pct"].mean()),
                rss_max_bytes=_num(df["rss_bytes"].max()),
            )
        out["notes"] = list(self.notes)
        out["errors"] = dict(self.errors)
        return out

    # -- backend choice

    def _choose_backend(self) -> None:
        if self.requested_backend == "cpu":
            self.backend, self.backend_reason = "cpu", "requested"
            return
        ok, reason = self._init_nvml()
        if ok:
            self.backend, self.backend_reason = "nvml", reason
            return
        if self.requested_backend == "nvml":
            raise RuntimeError(f"backend='nvml' was requested but NVML is unusable: {reason}")
        self.backend, self.backend_reason = "cpu", f"NVML unavailable: {reason}"
        log.info("GPU sampling unavailable (%s); sampling the CPU instead", reason)

    def _init_nvml(self) -> tuple[bool, str]:
        nvml = self._nvml_injected
        if nvml is None:
            try:
                import pynvml as nvml  # from nvidia-ml-py
            except ImportError as exc:
                return False, f"pynvml not importable ({exc}); install nvidia-ml-py"
        try:
            nvml.nvmlInit()
        except Exception as exc:
            return False, describe(exc)
        try:
            count = int(nvml.nvmlDeviceGetCount())
            indices, why = visible_indices(count, os.environ.get("CUDA_VISIBLE_DEVICES"), nvml)
            handles, devices = [], []
            for i in indices:
                try:
                    handles.append(nvml.nvmlDeviceGetHandleByIndex(i))
                    devices.append(i)
                except Exception as exc:
                    self._note(f"GPU {i} skipped: {describe(exc)}")
        except Exception as exc:
            shutdown_quietly(nvml)
            return False, f"NVML device query failed: {describe(exc)}"
        if not handles:
            shutdown_quietly(nvml)
            return False, why or f"NVML found {count} GPU(s), none usable"
        self._nvml, self._handles, self.devices = nvml, handles, devices
        return True, f"NVML: {len(devices)} GPU(s) {devices}" + (f" ({why})" if why else "")

    # -- sampling

    def _loop(self) -> None:
        k = 1
        while True:
            deadline = self._t0 + k * self.interval
            if self._stop_event.wait(max(0.0, deadline - time.perf_counter())):
                return
            self._safe_tick()
            # Skip ticks that a slow sample overran instead of bunching them up.
            k = max(k + 1, math.floor((time.perf_counter() - self._t0) / self.interval) + 1)

    def _safe_tick(self) -> None:
        try:
            self._tick()
        except Exception as exc:  # never raise into the measured code or kill the thread
            self._error("sample", exc)

    def _tick(self) -> None:
        cpu0 = time.thread_time()
        t = time.perf_counter() - self._t0
        rows = self._sample_nvml(t) if self.backend == "nvml" else [self._sample_cpu(t)]
        with self._lock:
            self._rows.extend(rows)
        # CPU time of the sampling itself (not wall time, which includes waiting for
        # the GIL while the training thread runs Python).
        self._busy_s += time.thread_time() - cpu0

    def _sample_nvml(self, t: float) -> list[tuple]:
        nvml = self._nvml
        rows = []
        for dev, h in zip(self.devices, self._handles):
            util = self._call(dev, h, "nvmlDeviceGetUtilizationRates")
            mem = self._call(dev, h, "nvmlDeviceGetMemoryInfo")
            power = self._call(dev, h, "nvmlDeviceGetPowerUsage")
            energy = self._call(dev, h, "nvmlDeviceGetTotalEnergyConsumption")
            rows.append((
                t, "nvml", dev,
                _attr(util, "gpu"), _attr(util, "memory"), _attr(mem, "used"),
                float("nan") if power is None else power / 1000.0,  # mW -> W
                float("nan") if energy is None else float(energy),
            ))
        return rows

    def _call(self, dev: int, handle: Any, name: str) -> Any:
        """One NVML query; ``None`` instead of raising. Unsupported metrics are
        noted once and not asked again for that device."""
        if (dev, name) in self._disabled:
            return None
        try:
            return getattr(self._nvml, name)(handle)
        except Exception as exc:
            if is_not_supported(exc, self._nvml):
                self._disabled.add((dev, name))
                self._note(f"GPU {dev}: {name} not supported; its column is NaN")
            else:
                self._error(name, exc)
            return None

    def _sample_cpu(self, t: float) -> tuple:
        """One CPU row. Percentages cover the time since the previous tick; the first
        tick only sets psutil's reference point, and a tick less than half an interval
        after the previous one (the closing sample) measures too short a span to mean
        anything (CPU times advance in 10 ms clock ticks), so both get NaN."""
        proc, psutil = self._proc, self._psutil
        nan = float("nan")
        meaningful = self._t_prev is not None and t - self._t_prev >= self.interval / 2
        self._t_prev = t
        try:
            pct = proc.cpu_percent(interval=None)
            if self.include_children:
                self._rescan_children(t)
                for pid, child in list(self._children.items()):
                    try:
                        pct += child.cpu_percent(interval=None)
                    except psutil.Error:
                        self._children.pop(pid, None)  # exited: its time is in cpu_times
        except Exception as exc:
            self._error("process cpu_percent", exc)
            pct = nan
        try:
            system = psutil.cpu_percent(interval=None)
        except Exception as exc:
            self._error("cpu_percent", exc)
            system = nan
        if not meaningful:
            pct = system = nan
        try:
            rss = float(proc.memory_info().rss)
        except Exception as exc:
            self._error("memory_info", exc)
            rss = nan
        return (t, "cpu", "cpu", float(pct), float(system), rss)

    def _rescan_children(self, t: float) -> None:
        if not self.include_children or t - self._children_scanned < _CHILDREN_RESCAN_S:
            return
        self._children_scanned = t
        try:
            live = {c.pid: c for c in self._proc.children(recursive=True)}
        except Exception as exc:
            self._error("children", exc)
            return
        for pid, child in live.items():
            if pid not in self._children:
                try:
                    child.cpu_percent(interval=None)  # reference point; counted from next tick
                    self._children[pid] = child
                except Exception:
                    pass
        for pid in set(self._children) - set(live):
            del self._children[pid]

    # -- bookkeeping

    def _error(self, where: str, exc: BaseException) -> None:
        kind = f"{where}: {type(exc).__name__}"
        n = self.errors.get(kind, 0)
        self.errors[kind] = n + 1
        if n == 0:
            log.warning(
                "hardware sampler: %s failed (%s); carrying on, further ones are counted", where, describe(exc)
            )

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)
            log.info("hardware sampler: %s", text)


def _attr(obj: Any, name: str) -> float:
    v = getattr(obj, name, None) if obj is not None else None
    return float("nan") if v is None else float(v)


def _cpu_seconds(times: Any) -> float:
    """User + system seconds of this process and of the children it has reaped."""
    return float(
        times.user + times.system + getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)
    )


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _energy_j(df: pd.DataFrame) -> tuple[float | None, str | None]:
    """Joules over the span, summed over devices: counter difference where every
    device has a counter (it sees all work, not only the sampled instants), else
    the trapezoidal integral of power over time."""
    if df.empty:
        return None, None
    per_counter, per_power = [], []
    for _, g in df.groupby("device", sort=True):
        e = g["energy_mj"].dropna()
        per_counter.append((e.iloc[-1] - e.iloc[0]) / 1000.0 if len(e) >= 2 else None)
        p = g[["t", "power_w"]].dropna()
        per_power.append(float(np.trapezoid(p["power_w"], p["t"])) if len(p) >= 2 else None)
    if all(v is not None for v in per_counter):
        return float(sum(per_counter)), "counter"
    if all(v is not None for v in per_power):
        return float(sum(per_power)), "integrated_power"
    return None, None
