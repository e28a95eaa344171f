"""Report assembly: log noise is filtered, hidden cells stay hidden, figures embed."""

from __future__ import annotations

import base64
import re

import nbformat
import pandas as pd

from cielib import report

NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796108062.065522    4367 port.cc:153] oneDNN custom operations are on.\n"
    "E0000 00:00:1796108063.406696    4367 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
    "2026-12-01 07:00:01.123456: I tensorflow/core/platform/cpu_feature_guard.cc:210] To enable\n"
)


def test_strip_noise_keeps_real_output():
    assert report.strip_noise(NOISE + "top-1 0.91\n") == "top-1 0.91\n"
    assert report.strip_noise(NOISE) == ""


def _nb():
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]})
    noisy = nbformat.v4.new_code_cell("train()")
    noisy.outputs = [nbformat.v4.new_output("stream", name="stderr", text=NOISE),
                     nbformat.v4.new_output("stream", name="stdout", text="kept line\n")]
    only_noise = nbformat.v4.new_code_cell("import cielib")
    only_noise.outputs = [nbformat.v4.new_output("stream", name="stderr", text=NOISE)]
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    fig = nbformat.v4.new_code_cell("plot()")
    fig.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png})]
    check = nbformat.v4.new_code_cell("assert secret_check", metadata={"tags": ["assert"]})
    nb.cells = [nbformat.v4.new_markdown_cell("## Section A"), params, noisy, only_noise, fig, check]
    return nb


def test_clean_cells():
    cells = report.clean_cells(_nb())
    kinds = [c.cell_type for c in cells]
    assert kinds == ["markdown", "code", "code"]
    assert cells[1].outputs[0]["text"] == "kept line\n"


def test_build_html(tmp_path):
    path = tmp_path / "a.ipynb"
    nbformat.write(_nb(), str(path))
    index = pd.DataFrame([{"run_id": "abc123", "stage": "train", "task": "t", "top1": 0.5,
                           "path": "runs/train/abc123"}])
    sections = [report.Section("Intro", markdown="Intro text."),
                report.Section("Task one", notebooks=[path]), report.Section("Task two", notebooks=[path])]
    out = report.build_html(sections, out=tmp_path / "r" / "report.html", title="My title", index=index)
    html = out.read_text()
    assert "My title" in html and "Section A" in html and "kept line" in html and "Intro text." in html
    assert "data:image/png;base64," in html  # figures embedded: the file stands alone
    assert "secret_check" not in html and "a = 1" not in html  # code inputs hidden
    assert "oneDNN" not in html and "cuInit" not in html
    assert "abc123" in html and "tensorflow" in html  # run table and environment appendix
    assert 'href="../runs/train/abc123/executed.ipynb"' in html  # every run's notebook linked
    assert not re.search(r"<script[^>]+src=\"https?://", html)  # nothing fetched from the network
    # a table of contents whose links all resolve, with repeated headings made unique
    toc = re.search(r'<nav id="toc">(.*?)</nav>', html, re.S).group(1)
    targets = re.findall(r'href="#([^"]+)"', toc)
    ids = re.findall(r'<h[1-6] id="([^"]+)"', html)
    assert len(ids) == len(set(ids)) and set(targets) <= set(ids)
    assert "Task one" in toc and "Task two" in toc and "Section-A-2" in " ".join(ids)
    # notebook headings are nested one level below their section
    assert re.search(r"<h3 id=\"Section-A\"", html)


def test_demote_and_pdf(tmp_path):
    assert report.demote("# A\ntext # not a heading\n## B") == "## A\ntext # not a heading\n### B"
    html = tmp_path / "r.html"
    html.write_text("<html><head></head><body><h1>T</h1><p>x</p></body></html>")
    pdf = report.build_pdf(html, out=tmp_path / "r.pdf")
    assert pdf.read_bytes()[:4] == b"%PDF"
