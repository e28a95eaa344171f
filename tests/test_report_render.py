"""The report as a reader gets it: a real browser with networking off, and the PDF's pages."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from conftest import need_tool

PROBE = """<script>
window.__errors = [];
(function () {
  const original = console.error;
  console.error = function (...args) { window.__errors.push(args.join(' ')); original.apply(console, args); };
  window.addEventListener('error', function (ev) {
    const t = ev.target;
    window.__errors.push(ev.message || ('failed to load ' + (t && (t.src || t.href))));
  }, true);
  window.addEventListener('load', function () {
    const toc = [...document.querySelectorAll('nav#toc a')];
    const report = {
      h1: [...document.querySelectorAll('h1')].map(h => h.textContent.replace('\\u00b6', '').trim()),
      toc_links: toc.length,
      toc_broken: toc.filter(a => !document.getElementById(decodeURIComponent(a.hash.slice(1)))).length,
      images: document.images.length,
      images_broken: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length,
      errors: window.__errors,
    };
    const pre = document.createElement('pre');
    pre.id = 'report-check';
    pre.textContent = JSON.stringify(report);
    document.body.appendChild(pre);
  });
})();
</script>"""

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-quic", "--virtual-time-budget=10000"]


def _offline(cmd: list[str]) -> list[str]:
    """Run with no network at all (a fresh network namespace) where we can."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n", *cmd]
    return [*cmd, "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]


@pytest.mark.slow
def test_report_renders_offline_in_chromium(tiny_run, tmp_path):
    chromium = need_tool("chromium")
    root, _, res = tiny_run
    assert res.returncode == 0, res.stdout + res.stderr
    html = (root / "report" / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=\"https?://", html), "the report must not load remote scripts"
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1))
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(_offline([*base, "--dump-dom", probe.as_uri()]),
                         capture_output=True, text=True, timeout=120)
    match = re.search(r'<pre id="report-check">(.*?)</pre>', dom.stdout, re.S)
    assert match, dom.stderr[-2000:]
    check = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert check["errors"] == []
    assert check["h1"][0].startswith("Rethinking compression")
    assert any(h.startswith("Aims and method") for h in check["h1"])
    assert any("stand-in for VGG-19 on CIFAR-10" in h for h in check["h1"])
    assert any(h.startswith("Appendix") for h in check["h1"])
    assert check["toc_links"] >= 10 and check["toc_broken"] == 0
    assert check["images"] >= 8 and check["images_broken"] == 0
    shot = tmp_path / "report.png"
    subprocess.run(_offline([*base, f"--screenshot={shot}", "--window-size=1200,3000",
                             (root / "report" / "report.html").as_uri()]),
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 50_000  # a real page, not a blank one


@pytest.mark.slow
def test_pdf_pages_render(tiny_run, tmp_path):
    pdftoppm = need_tool("pdftoppm")
    root, _, res = tiny_run
    pdf = root / "report" / "report.pdf"
    assert pdf.is_file(), res.stdout + res.stderr
    subprocess.run([pdftoppm, "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=300)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 6
    from PIL import Image

    sizes = {Image.open(p).size for p in pages}
    (w, h), = sizes  # every page the same size
    assert abs(h / w - 297 / 210) < 0.02, f"not A4: {w}x{h}"
    import numpy as np

    assert all(np.asarray(Image.open(p).convert("L")).std() > 1 for p in pages), "a blank page"
