"""A warm kernel's round trip: ask the kernel server for a kernel, run a trivial notebook,
shut the kernel down; cielib's kernel manager against jupyter_client's stock behaviour.

Side by side in one run, alternating, on one kernel server (so TensorFlow's import is
paid once, before timing starts):
  stock   the warm provisioner only: TCP ports, jupyter_client's readiness check (which
          ends by waiting for IOPub to be quiet for 0.2 s) and its 0.1 s exit polling;
  cielib  cielib.kernel_server.kernel_manager_class as run_all.py uses it (Unix
          sockets, ready once IOPub delivers, 10 ms exit polling).
Writes benchmarks/results/warm_kernel.json.
Usage: python benchmarks/bench_warm_kernel.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import papermill
from _common import machine_info, write_result

from cielib import kernel_server, notebook_source

NB = '# %% tags=["parameters"]\nx = 0\n\n# %%\ny = x + 1\nprint(y)\n'


def stock_manager_class(address: str) -> type:
    """The same warm provisioner with jupyter_client's own client, transport and polling."""
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import Type, default

    ours = kernel_server.kernel_manager_class(address)

    class Stock(ours):  # type: ignore[misc, valid-type]
        client_factory = Type(AsyncKernelClient, klass=AsyncKernelClient)

        @default("transport")
        def _transport_default(self) -> str:
            return "tcp"

        @default("ip")
        def _ip_default(self) -> str:
            return "127.0.0.1"

        async def _async_wait(self, pollinterval: float = 0.1) -> None:
            await AsyncKernelManager._async_wait(self, pollinterval=pollinterval)

    return Stock


def one(src: Path, out: Path, manager: type) -> float:
    ipynb = out / "source.ipynb"
    nbformat.write(notebook_source.read_notebook(src), str(ipynb))
    start = time.perf_counter()
    papermill.execute_notebook(str(ipynb), str(out / "executed.ipynb"), parameters={"x": 1},
                               kernel_name=notebook_source.KERNEL_NAME, progress_bar=False,
                               cwd=str(out), kernel_manager_class=manager)
    seconds = time.perf_counter() - start
    text = (out / "executed.ipynb").read_text()
    assert '"2\\n"' in text, "the cell's output must arrive"
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    proc, address = kernel_server.start()
    managers = {"stock": stock_manager_class(address), "cielib": kernel_server.kernel_manager_class(address)}
    seconds: dict[str, list[float]] = {k: [] for k in managers}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "nb.py"
            src.write_text(NB)
            for i in range(args.repeats + 1):
                for name, manager in managers.items():
                    out = Path(tmp) / f"{name}{i}"
                    out.mkdir()
                    s = one(src, out, manager)
                    if i:  # the first round waits for the server's preload
                        seconds[name].append(s)
    finally:
        kernel_server.stop(proc, address)
    median = {k: statistics.median(v) for k, v in seconds.items()}
    result = {"what": __doc__.split("\n")[0], "repeats": args.repeats, "seconds": seconds,
              "median_seconds": median, "ratio cielib/stock": median["cielib"] / median["stock"],
              "machine": machine_info(packages=("jupyter_client", "ipykernel", "papermill"))}
    write_result("warm_kernel", result)
    print({k: round(v, 3) for k, v in median.items()}, round(result["ratio cielib/stock"], 2))


if __name__ == "__main__":
    main()
