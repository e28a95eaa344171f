"""NVML helpers: which GPUs ``CUDA_VISIBLE_DEVICES`` leaves visible, and NVML errors.

Every function takes the NVML module as an argument (``pynvml`` or a test's fake), so
nothing here imports ``pynvml`` itself.
"""

from __future__ import annotations

from typing import Any


_NVML_NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED, for fakes without the class


def visible_indices(count: int, cvd: str | None, nvml: Any) -> tuple[list[int], str]:
    """NVML indices that CUDA_VISIBLE_DEVICES leaves visible, and a note if it is set.

    Entries are indices, GPU UUIDs (prefixes allowed, as CUDA allows) or MIG UUIDs;
    like CUDA, parsing stops at the first entry that names no device. NVML reports
    no per-instance utilization for MIG, so a MIG entry samples its parent GPU.
    """
    if cvd is None:
        return list(range(count)), ""
    out: list[int] = []
    mig = False
    for entry in (e.strip() for e in cvd.split(",")):
        idx = None
        if entry.lstrip("-").isdigit():
            n = int(entry)
            idx = n if 0 <= n < count else None
        elif entry.startswith("MIG-"):
            idx = _index_of_mig(nvml, entry)
            mig = mig or idx is not None
        elif entry.startswith("GPU-"):
            idx = _index_of_uuid(nvml, entry, count)
        if idx is None:
            break
        if idx not in out:
            out.append(idx)
    note = f"CUDA_VISIBLE_DEVICES={cvd!r}"
    if mig:
        note += "; MIG instances: their whole parent GPU is sampled"
    return out, note if out else f"{note} hides every GPU"


def _index_of_uuid(nvml: Any, uuid: str, count: int) -> int | None:
    try:
        return int(nvml.nvmlDeviceGetIndex(nvml.nvmlDeviceGetHandleByUUID(uuid)))
    except Exception:
        pass
    for i in range(count):  # CUDA accepts UUID prefixes: compare with every device's
        try:
            u = nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))
        except Exception:
            return None
        if (u.decode() if isinstance(u, bytes) else str(u)).startswith(uuid):
            return i
    return None


def _index_of_mig(nvml: Any, uuid: str) -> int | None:
    try:
        mig = nvml.nvmlDeviceGetHandleByUUID(uuid)
        return int(nvml.nvmlDeviceGetIndex(nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig)))
    except Exception:
        return None


def is_not_supported(exc: BaseException, nvml: Any) -> bool:
    cls = getattr(nvml, "NVMLError_NotSupported", None)
    if isinstance(cls, type) and isinstance(exc, cls):
        return True
    code = getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", _NVML_NOT_SUPPORTED)
    return getattr(exc, "value", None) == code or type(exc).__name__ == "NVMLError_NotSupported"


def describe(exc: BaseException) -> str:
    msg = str(exc)
    name = type(exc).__name__
    return f"{name}: {msg}" if msg and msg != name else name


def shutdown_quietly(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass
