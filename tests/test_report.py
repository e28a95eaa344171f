"""Report assembly: log noise is filtered, hidden cells stay hidden, figures embed."""

from __future__ import annotations

import base64
import re

import nbformat
import pandas as pd
import pytest

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


def _captioned_nb():
    """Figures and tables captioned each way the report knows, plus one left to the fallback."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    img = lambda **md: nbformat.v4.new_output("display_data", data={"image/png": png}, metadata=md)  # noqa: E731
    table = pd.DataFrame({"top1": [0.5]}).to_html()
    nb = nbformat.v4.new_notebook()
    own = nbformat.v4.new_code_cell("show()")
    own.outputs = [img(caption="Accuracy per epoch. Corresponds to the paper's Figures 20 and 21.")]
    by_cell = nbformat.v4.new_code_cell("plot()", metadata={"caption": "From the cell's metadata"})
    by_cell.outputs = [img()]
    fallback = nbformat.v4.new_code_cell("plot()")
    fallback.outputs = [img()]
    tab = nbformat.v4.new_code_cell("df")
    tab.outputs = [nbformat.v4.new_output("execute_result", data={"text/html": table}, execution_count=1)]
    nb.cells = [nbformat.v4.new_markdown_cell("# Pruning results for one task\n\nIntro."), own, by_cell,
                nbformat.v4.new_markdown_cell("### Confusion\n\nNormalized confusion matrices (rows: true "
                                              "class), as in `Figure 18`. More text here."),
                fallback, tab]
    return nb


def test_captions_from_output_cell_and_preceding_markdown():
    cells = report.clean_cells(_captioned_nb(), demote_headings=True, caption_outputs=True,
                               title="Training and test performance under pruning", note="*The paper's X.*")
    htmls = [o["data"]["text/html"] for c in cells if c.cell_type == "code" for o in c.outputs]
    caps = [re.search(r"<(?:fig)?caption[^>]*>(.*?)</(?:fig)?caption>", h).group(1) for h in htmls]
    assert caps == ["Accuracy per epoch. Corresponds to the paper's Figures 20 and 21.",
                    "From the cell's metadata",
                    "Normalized confusion matrices (rows: true class), as in <code>Figure 18</code>.",
                    "Normalized confusion matrices (rows: true class), as in <code>Figure 18</code>."]
    assert all("<figure" in h for h in htmls[:3]) and 'alt="From the cell' in htmls[1]
    assert "<table" in htmls[3]
    # the notebook's own title is replaced by the part's, demoted one level, with its note
    assert cells[0].source.startswith("## Training and test performance under pruning\n\n*The paper's X.*")


def test_first_sentence():
    assert report._first_sentence("### Speed\n\nBatch-1 latency, medians. More.") == ("Speed", "Batch-1 latency, medians.")
    assert report._first_sentence("**Final accuracy** (Tables 2 and 7): mean over seeds.") == (
        "", "**Final accuracy** (Tables 2 and 7): mean over seeds.")
    assert report._first_sentence("## Only a heading") == ("Only a heading", "")


def test_task_section_follows_the_papers_order(tmp_path):
    nbs = {stage: [tmp_path / f"{stage}.ipynb"] for stage in ("quantization", "cie", "profiling", "results")}
    sec = report.task_section("Small CNN on digits", nbs, stand_in_for="VGG-19 on CIFAR-10",
                              paper_task="vgg19_cifar10")
    assert sec.title == "Results: Small CNN on digits, standing in for VGG-19 on CIFAR-10"
    assert sec.paper == "§X, VGG-19 Results"
    assert [p.notebook.stem for p in sec.parts] == ["results", "profiling", "cie", "quantization"]
    assert [p.title for p in sec.parts] == ["Training and test performance under pruning",
                                            "Hardware use while training", "Impacted classes and images",
                                            "Quantization"]
    assert "GPU utilization (Figure 22)" in sec.parts[1].paper
    resnet = report.task_section("ResNet-50", {"results": nbs["results"]}, paper_task="resnet50_cifar100")
    assert resnet.title == "Results: ResNet-50" and "Tables 6-8" in resnet.parts[0].paper
    with pytest.raises(ValueError, match="unknown analysis stage.*'training'"):
        report.task_section("x", {"training": []})
    with pytest.raises(ValueError, match="unknown paper_task 'mnist'"):
        report.task_section("x", {}, paper_task="mnist")


def test_numbered_sections_captions_and_wide_tables(tmp_path):
    path = tmp_path / "a.ipynb"
    nbformat.write(_captioned_nb(), str(path))
    wide = tmp_path / "w.ipynb"
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("wide")
    cols = [f"a_very_long_column_name_number_{i}" for i in range(14)]
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": pd.DataFrame([[0.123456789] * 14], columns=cols).to_html()})]
    nb.cells = [nbformat.v4.new_markdown_cell("# Wide"), cell]
    nbformat.write(nb, str(wide))
    sections = [report.Section("Aims and method", markdown="| a | b |\n|---|---|\n| 1 | 2 |", paper="§IX"),
                report.task_section("Small CNN", {"results": [path], "cie": [wide]}, paper_task="vgg19_cifar10")]
    html = report.build_html(sections, out=tmp_path / "report.html", title="T").read_text()
    heads = [re.sub(r"<[^>]+>|¶", "", h).strip() for h in re.findall(r"<h[1-6] id=[^>]*>(.*?)</h[1-6]>", html)]
    assert heads[:6] == ["T", "1 Aims and method", "2 Results: Small CNN",
                         "2.1 Training and test performance under pruning", "2.1.1 Confusion",
                         "2.2 Impacted classes and images"]
    assert heads[-3:] == ["A Appendix", "A.1 Environment", "A.2 Runs"] or heads[-2:] == ["A Appendix",
                                                                                         "A.1 Environment"]
    toc = re.search(r'<nav id="toc">(.*?)</nav>', html, re.S).group(1)
    assert "2.1 Training and test performance under pruning" in toc
    labels = re.findall(r'<span class="capnum">([^<]+)</span>', html)
    assert labels == ["Table 1.1.", "Figure 2.1.", "Figure 2.2.", "Figure 2.3.", "Table 2.1.", "Table 2.2.",
                      "Table A.1."]
    assert "The paper's §X.i, §X.ii.1 and §X.ii.3" in html and "The paper's §IX." in html
    # the 14-column table is marked to be set small, its headers breakable after "_"
    table = re.search(r'<table[^>]*class="very-wide[^"]*"[^>]*>.*?</table>', html, re.S).group(0)
    assert "a_<wbr>very_<wbr>long" in table
