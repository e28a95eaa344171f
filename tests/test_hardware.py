"""Profiling: CPU sampling around a real fit; NVML code paths against planted fakes."""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cielib import hardware
from cielib.hardware import CPU_METRICS, GPU_METRICS, Sampler


# ----------------------------------------------------------------------------- fakes


class FakeNVMLError(Exception):
    def __init__(self, value: int = 999):
        super().__init__(f"fake NVML error {value}")
        self.value = value


class FakeNotSupported(FakeNVMLError):
    def __init__(self):
        super().__init__(3)


class FakeLibraryNotFound(FakeNVMLError):
    def __init__(self):
        super().__init__(12)


class FakeGpuIsLost(FakeNVMLError):
    def __init__(self):
        super().__init__(15)


class FakeNVML:
    """Just enough of pynvml: planted values, an energy counter rising 1000 mJ per
    read, and switches to make calls unsupported or failing."""

    NVMLError = FakeNVMLError
    NVMLError_NotSupported = FakeNotSupported
    NVMLError_LibraryNotFound = FakeLibraryNotFound
    NVMLError_GpuIsLost = FakeGpuIsLost

    def __init__(self, *, count=1, util=37, mem_util=12, used=2 * 1024**3, power_mw=150_000,
                 energy=True, init_error=None, fail_after=None):
        self.count, self.util, self.mem_util, self.used, self.power_mw = count, util, mem_util, used, power_mw
        self.energy, self.init_error, self.fail_after = energy, init_error, fail_after
        self.energy_mj = {i: 5_000_000 for i in range(count)}
        self.util_calls = 0
        self.shutdowns = 0

    def nvmlInit(self):
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i):
        if not 0 <= i < self.count:
            raise FakeNVMLError(2)
        return ("handle", i)

    def nvmlDeviceGetUUID(self, h):
        return f"GPU-{h[1]:04d}-fake"

    def nvmlDeviceGetHandleByUUID(self, uuid):
        for i in range(self.count):
            if uuid == f"GPU-{i:04d}-fake":
                return ("handle", i)
            if uuid == f"MIG-{i:04d}-a":
                return ("mig", i)
        raise FakeNVMLError(6)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, h):
        return ("handle", h[1])

    def nvmlDeviceGetIndex(self, h):
        if h[0] != "handle":
            raise FakeNVMLError(2)
        return h[1]

    def nvmlDeviceGetUtilizationRates(self, h):
        self.util_calls += 1
        if self.fail_after is not None and self.util_calls > self.fail_after:
            raise FakeGpuIsLost()
        return SimpleNamespace(gpu=self.util + h[1], memory=self.mem_util)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=self.used, total=8 * 1024**3, free=6 * 1024**3)

    def nvmlDeviceGetPowerUsage(self, h):
        return self.power_mw

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.energy:
            raise FakeNotSupported()
        self.energy_mj[h[1]] += 1000
        return self.energy_mj[h[1]]


@pytest.fixture(autouse=True)
def _no_cvd(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def _run(sampler: Sampler, seconds: float = 0.25) -> Sampler:
    with sampler:
        time.sleep(seconds)
    return sampler


# ------------------------------------------------------------------------- real fit, CPU


def test_cpu_backend_samples_a_real_fit():
    from cielib import models, train

    rng = np.random.default_rng(0)
    x = rng.random((256, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    net = models.build_model("vgg_small", input_shape=(8, 8, 1), n_classes=10, width=4)
    train.compile_model(net, optimizer="sgd", learning_rate=0.01)
    sampler = Sampler(interval=0.05, backend="cpu")
    cb = hardware.keras_callback(sampler, batch_size=32)
    hist = train.fit(net, x, y, x_val=x[:32], y_val=y[:32], epochs=2, batch_size=32, callbacks=[cb])

    assert not sampler.running, "the callback stops the sampler at on_train_end"
    df = sampler.samples
    assert list(df.columns) == ["t", "backend", "device", *CPU_METRICS]
    assert (df["backend"] == "cpu").all() and (df["device"] == "cpu").all()
    assert df["t"].is_monotonic_increasing and df["rss_bytes"].min() > 0
    s = sampler.summary()
    assert s["backend"] == "cpu" and s["backend_reason"] == "requested"
    assert s["n_samples"] >= 2 and s["interval"] == 0.05
    assert s["cpu_seconds"] > 0 and s["duration_s"] > 0 and s["rss_max_bytes"] > 0
    assert s["sampler_cpu_s"] < s["duration_s"]

    table = cb.epoch_table()
    assert list(table.columns) == ["epoch", "seconds", "steps", "median_step_s", "images_per_s", "train_seconds"]
    assert list(table["epoch"]) == [1, 2] and list(table["steps"]) == [8, 8]
    assert (table["images_per_s"] > 0).all() and (table["median_step_s"] > 0).all()
    assert (table["train_seconds"] <= table["seconds"]).all()
    assert np.isclose(table["images_per_s"].iloc[1], 32 * 8 / table["seconds"].iloc[1])
    assert isinstance(cb.step_times, np.ndarray) and cb.step_times.shape == (16,)
    assert len(hist) == 2


def test_callback_without_sampler_and_reused_sampler_is_refused():
    cb = hardware.keras_callback(batch_size=4)
    assert cb.epoch_table().empty and cb.step_times.size == 0
    used = _run(Sampler(interval=0.05, backend="cpu"), 0.06)
    with pytest.raises(RuntimeError, match="already started"):
        used.start()
    with pytest.raises(TypeError, match="Sampler or None"):
        hardware.keras_callback("gpu")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        hardware.keras_callback(batch_size=0)


# ---------------------------------------------------------------------------- fake NVML


def test_nvml_backend_finds_planted_values():
    fake = FakeNVML(count=2)
    s = _run(Sampler(interval=0.05, backend="nvml", nvml=fake))
    df = s.samples
    assert list(df.columns) == ["t", "backend", "device", *GPU_METRICS]
    assert set(df["device"]) == {0, 1} and (df["backend"] == "nvml").all()
    gpu0 = df[df["device"] == 0]
    assert (gpu0["utilization_pct"] == 37).all() and (df[df["device"] == 1]["utilization_pct"] == 38).all()
    assert (df["memory_utilization_pct"] == 12).all()
    assert (df["memory_used_bytes"] == 2 * 1024**3).all() and (df["power_w"] == 150.0).all()
    assert (np.diff(gpu0["energy_mj"]) == 1000).all()

    summ = s.summary()
    n = summ["n_samples"]
    assert n >= 3 and len(df) == 2 * n and summ["devices"] == [0, 1]
    assert summ["backend"] == "nvml" and "2 GPU" in summ["backend_reason"]
    assert summ["utilization_mean_pct"] == 37.5 and summ["utilization_max_pct"] == 38
    assert summ["memory_used_max_bytes"] == 2 * 1024**3 and summ["power_mean_w"] == 150.0
    # Each device's counter rose 1000 mJ per read: (n - 1) J per device, 2 devices.
    assert summ["energy_source"] == "counter" and summ["energy_j"] == pytest.approx(2 * (n - 1))
    assert fake.shutdowns == 1 and summ["errors"] == {} and summ["notes"] == []


def test_nvml_failing_mid_run_carries_on_and_logs_once(caplog):
    fake = FakeNVML(fail_after=2)
    with caplog.at_level(logging.WARNING, logger="cielib.hardware"):
        s = _run(Sampler(interval=0.03, backend="nvml", nvml=fake), 0.3)
    df = s.samples
    assert len(df) >= 5, "sampling must carry on after the failures"
    assert df["utilization_pct"].iloc[:2].eq(37).all() and df["utilization_pct"].iloc[2:].isna().all()
    assert df["power_w"].notna().all(), "other metrics keep coming"
    summ = s.summary()
    (kind, count), = summ["errors"].items()
    assert "GpuIsLost" in kind and count == len(df) - 2
    logged = [r for r in caplog.records if "GpuIsLost" in r.getMessage()]
    assert len(logged) == 1, "logged once per kind of error, then counted"
    assert summ["utilization_mean_pct"] == 37


def test_nvml_calls_raising_anything_never_escape():
    class Broken(FakeNVML):
        def nvmlDeviceGetMemoryInfo(self, h):
            raise ZeroDivisionError("boom")

        def nvmlShutdown(self):
            raise FakeNVMLError(999)

    s = _run(Sampler(interval=0.03, backend="nvml", nvml=Broken()), 0.1)
    assert s.samples["memory_used_bytes"].isna().all() and s.samples["utilization_pct"].notna().all()
    assert any("ZeroDivisionError" in k for k in s.summary()["errors"])


def test_energy_not_supported_falls_back_to_integrated_power(caplog):
    with caplog.at_level(logging.INFO, logger="cielib.hardware"):
        s = _run(Sampler(interval=0.05, backend="nvml", nvml=FakeNVML(energy=False, power_mw=200_000)))
    df = s.samples
    assert df["energy_mj"].isna().all()
    summ = s.summary()
    assert summ["energy_source"] == "integrated_power"
    span = df["t"].iloc[-1] - df["t"].iloc[0]
    assert summ["energy_j"] == pytest.approx(200.0 * span)
    assert len(summ["notes"]) == 1 and "not supported" in summ["notes"][0]
    assert sum("not supported" in r.getMessage() for r in caplog.records) == 1, "noted once"


def test_no_nvml_falls_back_to_cpu_with_reason():
    s = _run(Sampler(interval=0.05, nvml=FakeNVML(init_error=FakeLibraryNotFound())), 0.12)
    summ = s.summary()
    assert summ["backend"] == "cpu" and "FakeLibraryNotFound" in summ["backend_reason"]
    assert list(s.samples.columns) == ["t", "backend", "device", *CPU_METRICS]
    with pytest.raises(RuntimeError, match="backend='nvml' was requested.*FakeLibraryNotFound"):
        Sampler(backend="nvml", nvml=FakeNVML(init_error=FakeLibraryNotFound())).start()
    zero = _run(Sampler(interval=0.05, nvml=FakeNVML(count=0)), 0.06)
    assert zero.backend == "cpu" and "0 GPU" in zero.backend_reason


def test_real_pynvml_without_a_gpu_falls_back_to_cpu():
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has NVML")
    s = _run(Sampler(interval=0.05), 0.06)
    assert s.backend == "cpu" and "NVMLError_LibraryNotFound" in s.backend_reason


def test_cuda_visible_devices_maps_to_nvml_indices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    s = _run(Sampler(interval=0.05, nvml=FakeNVML(count=4)), 0.06)
    assert s.devices == [2, 0] and set(s.samples["device"]) == {0, 2}
    assert s.samples.loc[s.samples["device"] == 2, "utilization_pct"].eq(39).all()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,7,0")  # CUDA stops at the bad entry
    assert _run(Sampler(interval=0.05, nvml=FakeNVML(count=2)), 0.06).devices == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-0003-fake,GPU-0001")  # full UUID, prefix
    assert _run(Sampler(interval=0.05, nvml=FakeNVML(count=4)), 0.06).devices == [3, 1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-0002-a")
    mig = _run(Sampler(interval=0.05, nvml=FakeNVML(count=4)), 0.06)
    assert mig.devices == [2] and "parent GPU" in mig.backend_reason
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    hidden = _run(Sampler(interval=0.05, nvml=FakeNVML(count=2)), 0.06)
    assert hidden.backend == "cpu" and "hides every GPU" in hidden.backend_reason


# ----------------------------------------------------------------------- validation, io


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_bad_interval(bad):
    with pytest.raises(ValueError, match="interval must be a finite number of seconds > 0"):
        Sampler(interval=bad)


def test_bad_options():
    with pytest.raises(TypeError, match="interval must be a number"):
        Sampler(interval="fast")
    with pytest.raises(ValueError, match="unknown backend 'tpu'; allowed: auto, nvml, cpu"):
        Sampler(backend="tpu")
    with pytest.raises(TypeError):
        Sampler(0.5)  # keyword-only


def test_save_writes_tidy_csv_and_returns_summary(tmp_path):
    with pytest.raises(ValueError, match="never started"):
        hardware.save(Sampler(), tmp_path)
    s = _run(Sampler(interval=0.05, backend="nvml", nvml=FakeNVML(count=2)), 0.12)
    summ = hardware.save(s, tmp_path / "run")
    back = pd.read_csv(tmp_path / "run" / "utilization.csv")
    assert list(back.columns) == list(s.samples.columns) and len(back) == len(s.samples)
    assert summ == s.summary()
    import json

    json.dumps(summ, allow_nan=False)  # metrics.json-ready


def test_smooth_rolling_mean_per_device():
    t = np.arange(10) * 0.5
    df = pd.DataFrame({
        "t": np.r_[t, t],
        "device": [0] * 10 + [1] * 10,
        "utilization_pct": np.r_[np.tile([0.0, 100.0], 5), np.full(10, 20.0)],
    })
    out = hardware.smooth(df, column="utilization_pct", window_s=2.0)
    gpu0 = out[out["device"] == 0]["utilization_pct_smooth"]
    assert gpu0.iloc[2:-2].between(40, 60).all(), "alternating 0/100 smooths to about 50"
    assert (out[out["device"] == 1]["utilization_pct_smooth"] == 20).all(), "devices are not mixed"
    assert len(out) == 20 and "utilization_pct" in out
    with pytest.raises(ValueError, match="window_s must be"):
        hardware.smooth(df, column="utilization_pct", window_s=0)
    with pytest.raises(ValueError, match="column 'power_w' not in the frame"):
        hardware.smooth(df, column="power_w", window_s=1)


def test_import_does_not_import_tensorflow():
    code = "import sys, cielib.hardware; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -------------------------------------------------------------------------------- GPU


@pytest.mark.gpu
def test_real_nvml_during_gpu_fit():
    from cielib import models, train

    rng = np.random.default_rng(0)
    x = rng.random((2048, 32, 32, 3), dtype=np.float32)
    y = rng.integers(0, 10, 2048)
    net = models.build_model("vgg_small", input_shape=(32, 32, 3), n_classes=10)
    train.compile_model(net, optimizer="sgd", learning_rate=0.01)
    sampler = Sampler(interval=0.1, backend="nvml")
    cb = hardware.keras_callback(sampler, batch_size=64)
    train.fit(net, x, y, x_val=x[:256], y_val=y[:256], epochs=2, batch_size=64, callbacks=[cb])
    summ = sampler.summary()
    assert summ["backend"] == "nvml" and summ["n_samples"] >= 2
    df = sampler.samples
    assert df["utilization_pct"].between(0, 100).all() and (df["memory_used_bytes"] > 0).all()
    assert summ["memory_used_max_bytes"] > 0
    assert summ["energy_j"] is None or summ["energy_j"] >= 0
    assert not math.isnan(summ["utilization_max_pct"])
