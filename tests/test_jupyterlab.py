"""JupyterLab as a reader uses it: a real server, the notebooks opened through jupytext, a real browser.

The server listens on 127.0.0.1 only, with no token, temporary Jupyter config/data/runtime
directories and every outbound feature off (news, update checks); Chromium reaches
nothing but 127.0.0.1 (a dead proxy for everything else). The browser is driven over
the DevTools protocol on a pipe (``--remote-debugging-pipe``: no port, no websocket
library), which reports console errors and uncaught exceptions as events.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import need_tool

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    with opener.open(url, timeout=timeout) as r:
        return r.status, r.read()


class JupyterLab:
    """A ``jupyter lab`` server on a free 127.0.0.1 port, rooted at the project checkout."""

    def __init__(self, tmp: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # the project's shipped Jupyter config (installed into <prefix>/etc/jupyter by
        # `pip install .`), on the path exactly where an installed copy would be read
        env = {**os.environ, "JUPYTER_CONFIG_PATH": str(ROOT / "jupyter-config"),
               "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_DATA_DIR": str(tmp / "data"),
               "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_PLATFORM_DIRS": "1",
               "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               "--ServerApp.port_retries=0", "--IdentityProvider.token=", f"--ServerApp.root_dir={ROOT}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        # no autosave: the test must not write train.ipynb (jupytext pairs it) into the checkout.
        # Only this; the default viewer comes from the project's own setting.
        overrides = tmp / "config" / "labconfig" / "default_setting_overrides.json"
        overrides.parent.mkdir(parents=True)
        overrides.write_text(json.dumps({"@jupyterlab/docmanager-extension:plugin": {"autosave": False}}))
        self.log = tmp / "jupyterlab.log"
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=tmp)

    def wait(self, timeout: float = 90) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if _get(f"{self.url}/api/status", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


class Chromium:
    """Headless Chromium driven over the DevTools protocol on fds 3 (in) and 4 (out)."""

    def __init__(self, chromium: str, profile: Path):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # move the child's ends above 3 and 4 so that dup2 onto 3/4 cannot clobber them
        import fcntl

        child_in = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire():  # runs in the child before exec: the pipe ends become fds 3 and 4
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--remote-debugging-pipe", "--window-size=1400,900",
                 f"--user-data-dir={profile}",
                 # nothing but 127.0.0.1: every other host goes to a dead proxy and resolves nowhere
                 "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
        self.stderr = (profile.parent / "chromium.log").open("w")
        self.proc = subprocess.Popen([chromium, *flags, "about:blank"], pass_fds=(3, 4), preexec_fn=wire,
                                     stdin=subprocess.DEVNULL, stdout=self.stderr, stderr=self.stderr)
        os.close(child_in)
        os.close(child_out)
        self._w = os.fdopen(to_chrome_w, "wb", buffering=0)
        self._r = os.fdopen(from_chrome_r, "rb", buffering=0)
        self._next = 0
        self._replies: dict[int, queue.Queue] = {}
        self.events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = self._r.read(65536)
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        q = self._replies.get(msg["id"])
                    if q is not None:
                        q.put(msg)
                else:
                    self.events.put(msg)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float = 60) -> dict:
        with self._lock:
            self._next += 1
            mid = self._next
            q = self._replies[mid] = queue.Queue()
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._w.write(json.dumps(msg).encode() + b"\0")
        reply = q.get(timeout=timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def drain(self) -> list[dict]:
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001 - it may already be gone; we kill it below
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stderr.close()


def _errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and browser log errors among DevTools events."""
    found = []
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            found.append("console.error: " + " ".join(str(a.get("value", a.get("description", "")))
                                                      for a in p.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            found.append("exception: " + str(d.get("exception", {}).get("description", d.get("text"))))
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            found.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}")
    return found


def _artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("JupyterLab is not installed: it is a pinned dependency (pyproject.toml)")
    tmp = tmp_path_factory.mktemp("jupyterlab")
    server = JupyterLab(tmp)
    try:
        server.wait()
        yield server
    finally:
        server.stop()


SHIPPED = ROOT / "jupyter-config" / "labconfig" / "default_setting_overrides.d" / "cielib.json"


def test_the_default_viewer_setting_ships_with_the_project():
    """What `jupytext-config set-default-viewer python` writes, shipped instead of asked for,
    and installed where JupyterLab reads default settings (<prefix>/etc/jupyter/labconfig)."""
    import tomllib

    setting = json.loads(SHIPPED.read_text())
    assert setting["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"] == {"python": "Jupytext Notebook"}
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    assert data_files["etc/jupyter/labconfig/default_setting_overrides.d"] == [
        SHIPPED.relative_to(ROOT).as_posix()]


@pytest.mark.slow
def test_train_py_opens_as_a_notebook_through_jupytext(lab):
    status, body = _get(f"{lab.url}/api/contents/notebooks/train.py?content=1&type=notebook")
    assert status == 200
    model = json.loads(body)
    assert model["type"] == "notebook" and model["format"] == "json"
    cells = model["content"]["cells"]
    kinds = {c["cell_type"] for c in cells}
    assert kinds == {"code", "markdown"}, kinds
    assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
    assert cells[0]["cell_type"] == "markdown" and cells[0]["source"].startswith("# ")
    # the same cells jupytext reads from the file itself: nothing lost on the way
    import jupytext

    assert len(cells) == len(jupytext.read(ROOT / "notebooks" / "train.py").cells)
    assert model["content"]["metadata"]["jupytext"]["text_representation"]["format_name"] == "percent"


@pytest.mark.slow
def test_lab_page_loads_in_chromium_without_console_errors(lab, tmp_path):
    chromium = need_tool("chromium")
    browser = Chromium(chromium, tmp_path / "profile")
    shots = _artifacts(tmp_path)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": f"{lab.url}/lab/tree/notebooks/train.py"}, session=session)
        ready = ("!!document.querySelector('.jp-LabShell') && !document.querySelector('#jupyterlab-splash')"
                 " && !!document.querySelector('.jp-DirListing-item')"
                 " && document.querySelectorAll('.jp-Notebook .jp-MarkdownCell').length > 0"
                 " && document.querySelectorAll('.jp-Notebook .jp-CodeCell').length > 0"
                 " && !!document.querySelector('.jp-Notebook .jp-MarkdownCell h1')")
        end = time.monotonic() + 90
        state = False
        while time.monotonic() < end and not state:
            time.sleep(0.5)
            state = browser.send("Runtime.evaluate", {"expression": ready, "returnByValue": True},
                                 session=session)["result"].get("value")
        time.sleep(3)  # let late requests (settings, kernelspecs, the opened file) finish or fail
        info = browser.send("Runtime.evaluate", {"returnByValue": True, "expression": (
            "({title: document.title, files: [...document.querySelectorAll('.jp-DirListing-itemName')]"
            ".map(e => e.textContent.trim()), tabs: [...document.querySelectorAll('.lm-TabBar-tabLabel')]"
            ".map(e => e.textContent.trim()), "
            "cells: document.querySelectorAll('.jp-Notebook .jp-Cell').length, "
            "editor: !!document.querySelector('.jp-FileEditor'), "
            "first: (document.querySelector('.jp-Notebook .jp-MarkdownCell h1') || {}).textContent || ''})")},
            session=session)["result"]["value"]
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        path = shots / "jupyterlab.png"
        path.write_bytes(base64.b64decode(shot))
        print(f"JupyterLab screenshot: {path}")
        errors = _errors(browser.drain())
        # the error check can fail: an error planted in a page is seen
        browser.send("Page.navigate", {"url": "data:text/html,<script>console.error('planted error')</script>"},
                     session=session)
        time.sleep(2)
        planted = _errors(browser.drain())
    finally:
        browser.close()
    assert state, f"the lab page did not finish loading: {info}"
    assert "train.py" in info["files"], info  # the file browser lists notebooks/
    assert "train.py" in info["tabs"], info  # and the file opened in a tab ...
    assert info["cells"] >= 3 and info["first"].startswith("Training"), info  # ... as a notebook
    assert not info["editor"], info  # by its default viewer (the shipped setting), not a text editor
    assert errors == [], errors
    assert any("planted error" in e for e in planted), planted
    assert path.stat().st_size > 20_000  # a rendered page, not a blank one
