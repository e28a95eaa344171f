"""Resource traces while a model trains: GPU utilization (NVML) or CPU load (psutil).

The paper judged pruning's training efficiency from GPU-utilization traces recorded
while each sparsity trained (its Figures 22 and 30, smoothed for plotting) and from
total training time. This module records the same kind of trace so the claim can be
rechecked, on a GPU where there is one and on the CPU otherwise:

* :class:`Sampler` polls in a background thread every ``interval`` seconds and keeps a
  tidy time series (:attr:`Sampler.samples`) and a summary (:meth:`Sampler.summary`).
* :func:`keras_callback` starts/stops a sampler around ``fit`` and times every epoch
  and every training step, because utilization alone cannot say whether a run was
  faster; throughput can.
* :func:`save` writes ``utilization.csv`` into a run directory; :func:`smooth` is the
  rolling mean used for plots.

Importing this module never imports TensorFlow (the Keras callback class is built on
first use), so analysis code can read and plot traces without it.

Backends:

* ``"nvml"``: ``pynvml`` from the ``nvidia-ml-py`` package. Per visible GPU: compute
  and memory-controller utilization (%), memory used (bytes), power (W) and the
  cumulative energy counter (mJ, Volta and newer). ``CUDA_VISIBLE_DEVICES`` is
  honoured: entries are NVML indices (or ``GPU-`` UUIDs; a ``MIG-`` UUID samples its
  parent GPU, since NVML has no per-instance utilization) and the ``device`` column
  holds the NVML index, i.e. what ``nvidia-smi`` shows. Integer entries assume
  ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` (NVML's order); CUDA's default fastest-first
  order only differs on machines with mixed GPU models. Utilization is per GPU, so
  other processes on a shared GPU show up in the trace too.
* ``"cpu"``: psutil. This process's CPU % (plus its live child processes), system-wide
  CPU % and this process's resident memory.
* ``"auto"``: NVML when ``nvmlInit()`` works and at least one GPU is visible, else
  CPU; :attr:`Sampler.backend_reason` says why (e.g. ``NVMLError_LibraryNotFound``).

The default interval is 0.5 s. NVML itself averages utilization over a window of
1/6 s to 1 s depending on the GPU, so faster polling mostly repeats values; at 0.5 s
one tick costs well under a millisecond (a few NVML or psutil calls), i.e. far below
the 2% overhead budget (measured by ``benchmarks/bench_hardware.py``), and a 50-epoch
run still yields thousands of points per device.

Layout: ``sampler`` (:class:`Sampler` and its constants), ``_nvml`` (NVML device and
error helpers), ``callback`` (:func:`keras_callback`), ``traces`` (:func:`save`,
:func:`smooth`). Import from ``cielib.hardware``.
"""

from __future__ import annotations

from cielib.hardware.callback import keras_callback
from cielib.hardware.sampler import BACKENDS, CPU_METRICS, DEFAULT_INTERVAL, GPU_METRICS, Sampler
from cielib.hardware.traces import save, smooth

__all__ = [
    "BACKENDS",
    "GPU_METRICS",
    "CPU_METRICS",
    "DEFAULT_INTERVAL",
    "Sampler",
    "keras_callback",
    "save",
    "smooth",
]
