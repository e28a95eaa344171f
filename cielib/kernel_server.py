"""Warm Jupyter kernels: pay for Python's and TensorFlow's imports once, not once per run.

Every run executes its notebook in a fresh kernel process (papermill), and a fresh
Python process spends seconds importing TensorFlow, tf_keras, tfmot, pandas and
matplotlib before the notebook computes anything. A *kernel server* is one process
that imports those modules once, runs no TensorFlow op (so no thread pool, no random
state and no device exist yet) and then forks one child per kernel that papermill asks
for. The child is an ordinary ipykernel (the same messages, outputs and tracebacks in
the executed notebook) in a process of its own: nothing a run does reaches the next
one, and ``configure_threads``/``use_onednn`` work as in a freshly started kernel
because TensorFlow's runtime is created in the child, by the notebook.

The client side is :class:`WarmKernelManager` (papermill's kernel manager with a
provisioner that asks the server for the kernel instead of starting
``python -m ipykernel_launcher``); :func:`start` starts a server and returns its
address. The server exits when the process that started it does.

Importing this module does not import TensorFlow (only the server process does).
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: What the server imports before forking kernels: what the notebooks import.
PRELOAD = (
    "numpy", "pandas", "matplotlib.pyplot", "IPython.display", "ipykernel.kernelapp",
    "ipykernel.ipkernel", "ipykernel.debugger",  # what IPKernelApp imports when it starts a kernel
    "cielib.data", "cielib.evaluate", "cielib.features", "cielib.figures", "cielib.hardware",
    "cielib.models", "cielib.prune", "cielib.runs", "cielib.train", "cielib.quantize",
    "cielib.runsets", "cielib.tables", "cielib.paths",
)
LAUNCHER = ("-m", "ipykernel_launcher")
READY = b"ready\n"


class KernelServerError(RuntimeError):
    """The kernel server did not start or did not answer."""


# --------------------------------------------------------------------------- client side


def start(*, timeout: float = 300.0) -> tuple[subprocess.Popen, str]:
    """Start a kernel server process; returns it and its socket address.

    It preloads in the background: the first kernel request waits until it is done.
    """
    address = os.path.join(tempfile.mkdtemp(prefix="cielib-kernels-"), "socket")
    with open(_log_path(address), "ab") as log:  # TensorFlow's start-up lines, and any failure
        # In a session of its own: a kill -9 of the caller's process group does not reach
        # it, so it sees its parent gone (within a second) and removes its directory.
        proc = subprocess.Popen([sys.executable, "-m", "cielib.kernel_server", address, str(os.getpid())],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    return proc, address


def _log_path(address: str) -> Path:
    return Path(address).with_name("server.log")


def _failed_path(address: str) -> Path:
    return Path(address).with_name("failed")


def stop(proc: subprocess.Popen, address: str) -> None:
    """Stop a server started by :func:`start` (its running kernels are not touched)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    import shutil

    shutil.rmtree(Path(address).parent, ignore_errors=True)


def request_kernel(address: str, *, argv: list[str], env: dict[str, str], cwd: str | None,
                   timeout: float = 300.0) -> int:
    """Ask the server at ``address`` for a kernel; returns the kernel's pid.

    The kernel gets this process's stdout and stderr (the run's ``kernel.log``), ``env``
    as its whole environment and ``cwd`` as its working directory, as a kernel that
    jupyter_client starts would.
    """
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if _failed_path(address).exists():
                raise KernelServerError(f"the kernel server failed to start (see {_log_path(address)}): "
                                        + _failed_path(address).read_text()[-2000:]) from None
            if time.monotonic() > deadline:
                raise KernelServerError(f"no kernel server at {address} after {timeout:g}s") from None
            time.sleep(0.05)
    with sock:
        sock.settimeout(timeout)
        payload = pickle.dumps({"argv": list(argv), "env": dict(env), "cwd": cwd})
        socket.send_fds(sock, [struct.pack("!I", len(payload)) + payload], [1, 2])
        answer = _recv_exact(sock, 8)
    if len(answer) != 8:
        raise KernelServerError(f"the kernel server at {address} did not start a kernel")
    (pid,) = struct.unpack("!q", answer)
    if pid < 0:
        raise KernelServerError(f"the kernel server at {address} could not fork a kernel")
    return pid


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


class ForkedKernel:
    """The bits of ``subprocess.Popen`` jupyter_client uses, for a kernel the server forked.

    The server reaps its children at once, so a kernel that ended no longer exists; its
    exit status is not known here (0 is reported).
    """

    stdin = stdout = stderr = None

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = 0
            except PermissionError:  # a recycled pid owned by someone else
                self.returncode = 0
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode  # type: ignore[return-value]

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def kernel_manager_class(address: str) -> type:
    """A jupyter_client kernel manager class whose kernels come from the server at ``address``."""
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_client.provisioning import LocalProvisioner
    from traitlets import Type, default

    class WarmProvisioner(LocalProvisioner):  # type: ignore[misc]
        async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
            if len(cmd) < 3 or tuple(cmd[1:3]) != LAUNCHER or Path(cmd[0]) != Path(sys.executable):
                return await super().launch_kernel(cmd, **kwargs)  # not ours to start
            cwd = str(kwargs.get("cwd") or os.getcwd())  # papermill chdirs around the launch
            env = {**(kwargs.get("env") or os.environ), "JPY_PARENT_PID": str(os.getpid())}  # as
            # jupyter_client's launch_kernel sets it: the kernel ends when this process does
            pid = request_kernel(address, argv=cmd[3:], env=env, cwd=cwd)
            self.process = ForkedKernel(pid)
            self.pid = self.pgid = pid  # the kernel leads its own session
            self.cwd = cwd
            return self.connection_info

    class WarmKernelClient(AsyncKernelClient):  # type: ignore[misc]
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            """Ready when the kernel has answered ``kernel_info`` and IOPub delivers.

            As jupyter_client's own check, except its last step: that one waits until
            IOPub has been quiet for 0.2 s, which for a kernel forked warm was half of
            the time from asking for a kernel to running its first cell. Here IOPub is
            emptied of what has arrived, without waiting; a status message that comes
            later belongs to no cell and is ignored (nbclient reads only the messages
            whose parent is the cell it runs).
            """
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            while True:
                self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    try:  # IOPub subscribed yet? (a message published before that is lost)
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(reply)
                        break
                if not await self.is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
            while True:
                try:
                    await self.iopub_channel.get_msg(timeout=0)
                except Empty:
                    break

    class WarmKernelManager(AsyncKernelManager):  # type: ignore[misc]
        client_factory = Type(WarmKernelClient, klass=AsyncKernelClient)

        @default("transport")
        def _transport_default(self) -> str:
            # Unix sockets, not TCP ports: jupyter_client picks free ports and the kernel
            # binds them later, so with many kernels starting another process can take a
            # port in between ("Address already in use": the kernel dies at start)
            return "ipc"

        @default("ip")
        def _ip_default(self) -> str:
            # the sockets' path prefix: beside the server's own socket (not the run's
            # directory, where jupyter_client would put them), removed with the server
            if self.transport != "ipc":
                return super()._ip_default()
            import uuid

            return str(Path(address).parent / f"kernel-{uuid.uuid4().hex[:12]}")

        async def _async_wait(self, pollinterval: float = 0.1) -> None:
            # jupyter_client polls for the kernel's exit every 0.1 s after asking it to
            # shut down; a forked kernel is gone in a few milliseconds
            await super()._async_wait(pollinterval=min(pollinterval, 0.01))

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            if self.provisioner is None:
                import uuid

                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                self.provisioner = WarmProvisioner(kernel_id=self.kernel_id,
                                                   kernel_spec=self.kernel_spec, parent=self)
            return await super()._async_pre_start_kernel(**kw)

    return WarmKernelManager


# --------------------------------------------------------------------------- server side


def preload() -> None:
    """Import what the notebooks import, as a fresh kernel would, running no TensorFlow op."""
    import importlib

    # ipykernel sets this when unset; matplotlib reads it when first imported.
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    import cielib.keras

    cielib.keras.tfmot  # noqa: B018 - imports tensorflow, tf_keras and tfmot
    for name in PRELOAD:
        importlib.import_module(name)


def serve(address: str, parent_pid: int) -> None:
    """Preload, then fork one kernel per request until the parent process is gone."""
    preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # kernels are reaped at once
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(8)
    listener.settimeout(1.0)
    while os.getppid() == parent_pid:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        with conn:
            conn.settimeout(60)
            try:
                msg, fds, _, _ = socket.recv_fds(conn, 1 << 20, 4)
                (size,) = struct.unpack("!I", msg[:4])
                while len(msg) < 4 + size:
                    msg += conn.recv(4 + size - len(msg))
                request = pickle.loads(msg[4:4 + size])
            except (OSError, struct.error, pickle.UnpicklingError, EOFError):
                continue
            pid = os.fork()
            if pid == 0:  # the kernel
                listener.close()
                conn.close()
                _become_kernel(request, fds)  # never returns
            for fd in fds:
                os.close(fd)
            try:
                conn.sendall(struct.pack("!q", pid))
            except OSError:
                pass
    listener.close()
    import shutil

    shutil.rmtree(Path(address).parent, ignore_errors=True)  # its client is gone without stop()


def _become_kernel(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: take the client's streams, environment and directory, run ipykernel."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        for target, fd in zip((1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        if request.get("cwd"):
            os.chdir(request["cwd"])
            sys.path[0] = request["cwd"]  # as `python -m ipykernel_launcher` started there
        import numpy as np

        np.random.seed()  # a fresh process's global NumPy state (Python's random reseeds itself)
        argv = list(request["argv"])
        client = int(os.environ.get("JPY_PARENT_PID") or 0)
        if client:
            # ipykernel read JPY_PARENT_PID when the server imported it: say it again (it then
            # prints no connection banner), and end with the client as a started kernel does.
            argv.append(f"--IPKernelApp.parent_handle={client}")
            _exit_with(client)
        sys.argv = [sys.executable, *argv]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # noqa: BLE001 - report, then leave without returning to the server
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _exit_with(pid: int) -> None:
    """End this kernel when process ``pid`` (its client) is gone, e.g. killed with -9."""
    import threading

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass

    threading.Thread(target=watch, name="client-watch", daemon=True).start()


if __name__ == "__main__":
    try:
        serve(sys.argv[1], int(sys.argv[2]))
    except BaseException:
        import traceback

        _failed_path(sys.argv[1]).write_text(traceback.format_exc())
        raise
