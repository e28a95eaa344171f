"""Assembling the report: executed analysis notebooks -> one standalone HTML and a PDF.

The report is never edited by hand. It concatenates the executed analysis notebooks
section by section (code hidden, figures embedded as data URIs), removes TensorFlow's
start-up noise from their outputs, adds a linked table of contents and an appendix
generated from the run store, strips every script that would reach the network (the
file must read the same offline), and renders a PDF from it with weasyprint and a
print stylesheet (A4, nothing clipped).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import copy
import html as html_lib
import os
import platform
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Iterable

import pandas as pd

# Lines TensorFlow / absl / CUDA stubs print on start-up; they say nothing about results.
NOISE = re.compile(
    r"^(?:[IWE]\d{4} [\d:.]+\s+\d+ \S+:\d+\]|WARNING: All log messages before absl|"
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] tensorflow/|"
    r"To enable the following instructions|oneDNN custom operations|"
    r"WARNING:tensorflow:|WARNING:absl:|.*cuda drivers on your machine|"
    r".*Unable to register cu(?:DNN|FFT|BLAS) factory|.*computation placer already registered)"
)
HIDDEN_TAGS = {"parameters", "injected-parameters", "assert", "remove-cell"}
PACKAGES = (
    "tensorflow", "tf-keras", "tensorflow-model-optimization", "ai-edge-litert", "numpy",
    "pandas", "scikit-learn", "scipy", "papermill", "jupytext", "nbconvert", "weasyprint",
)
_HEADING = re.compile(r"^(#{1,5})(\s)", flags=re.M)
_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>", re.S)
_MODULE_SCRIPT = re.compile(r"<script type=\"module\">.*?</script>", re.S)
_MATHJAX_CONFIG = re.compile(r"<script type=\"text/x-mathjax-config\">.*?</script>", re.S)
_HEADING_TAG = re.compile(r"<h([1-6]) id=\"([^\"]*)\">(.*?)</h\1>", re.S)

PRINT_CSS = """
<style>
nav#toc { border: 1px solid #ddd; background: #fafafa; padding: 0.6em 1.2em; margin: 1em 0 2em; }
nav#toc ul { margin: 0.2em 0; padding-left: 1.2em; }
nav#toc > ul > li { margin-top: 0.3em; font-weight: 600; }
nav#toc li li { font-weight: 400; }
.jp-RenderedHTMLCommon table { font-size: 0.85em; }
img { max-width: 100%; height: auto; }
@page { size: A4; margin: 14mm 11mm 16mm 11mm;
        @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; } }
@media print {
  body { font-size: 9.5pt; }
  h1 { break-before: page; }
  h1:first-of-type, nav#toc + h1 { break-before: auto; }
  h2, h3 { break-after: avoid; }
  img, figure { max-width: 100% !important; height: auto !important; break-inside: avoid; }
  .jp-OutputArea-output, .jp-RenderedHTMLCommon, .jp-Cell, .jp-OutputArea { overflow: visible !important; }
  .jp-RenderedHTMLCommon table { font-size: 7.5pt; table-layout: auto; max-width: 100%;
                                 word-break: break-word; }
  .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 1px 3px; }
  pre { white-space: pre-wrap; word-break: break-word; }
  a.anchor-link { display: none; }
}
</style>
"""


@dataclass
class Section:
    """One part of the report: a title (a top-level heading) and what goes under it."""

    title: str
    notebooks: list[Path] = field(default_factory=list)
    markdown: str = ""


def strip_noise(text: str) -> str:
    """Drop TensorFlow's log-noise lines from a block of output text."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.match(line))


def demote(markdown: str) -> str:
    """Push every markdown heading one level down (# -> ##), so notebooks nest in sections."""
    return _HEADING.sub(lambda m: "#" + m.group(1) + m.group(2), markdown)


def clean_cells(nb, *, demote_headings: bool = False) -> list:
    """The notebook's cells to show: no parameter/assert cells, no log noise, no empties."""
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & HIDDEN_TAGS:
            continue
        cell = copy.deepcopy(cell)
        if cell.cell_type == "markdown" and demote_headings:
            cell.source = demote(cell.source)
        if cell.cell_type == "code":
            outputs = []
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    text = strip_noise(out.get("text", ""))
                    if not text.strip():
                        continue
                    out["text"] = text
                data = out.get("data", {})
                if demote_headings and "text/markdown" in data:
                    data["text/markdown"] = demote(data["text/markdown"])
                outputs.append(out)
            cell["outputs"] = outputs
            if not outputs:
                continue
        cells.append(cell)
    return cells


def environment_table() -> pd.DataFrame:
    """Package versions and the machine the report was built on."""
    rows = [("python", platform.python_version()), ("machine", platform.machine()),
            ("processor", platform.processor() or platform.machine()),
            ("CPU cores", str(os.cpu_count()))]
    for pkg in PACKAGES:
        try:
            rows.append((pkg, metadata.version(pkg)))
        except metadata.PackageNotFoundError:
            rows.append((pkg, "not installed"))
    return pd.DataFrame(rows, columns=["component", "version"])


def _html_cell(html: str):
    """A code cell whose only output is the given HTML (its empty input stays hidden)."""
    import nbformat

    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": html})]
    return cell


def run_table_html(index: pd.DataFrame, *, link_prefix: str) -> str:
    """The run table with every run's executed notebook linked."""
    cols = [c for c in ("run_id", "stage", "task", "sparsity", "technique", "seed", "top1", "path")
            if c in index.columns]
    df = index[cols].copy()
    if "path" in df:
        df["path"] = [f'<a href="{link_prefix}{html_lib.escape(str(p))}/executed.ipynb">'
                      f"{html_lib.escape(str(p))}/executed.ipynb</a>" for p in df["path"]]
        df = df.rename(columns={"path": "executed notebook"})
    return df.to_html(index=False, float_format="%.4f", na_rep="", escape=False)


def _unique_ids(body: str) -> tuple[str, list[tuple[int, str, str]]]:
    """Make heading ids unique (sections repeat per task) and list the headings."""
    seen: dict[str, int] = {}
    headings: list[tuple[int, str, str]] = []

    def fix(m: re.Match) -> str:
        level, hid, inner = int(m.group(1)), m.group(2), m.group(3)
        n = seen.get(hid, 0)
        seen[hid] = n + 1
        new = hid if n == 0 else f"{hid}-{n + 1}"
        inner = inner.replace(f'href="#{hid}"', f'href="#{new}"')
        text = re.sub(r"<[^>]+>", "", inner).replace("¶", "").strip()
        headings.append((level, new, text))
        return f'<h{level} id="{new}">{inner}</h{level}>'

    return _HEADING_TAG.sub(fix, body), headings


def _toc(headings: list[tuple[int, str, str]]) -> str:
    """Nested list of links to the h1 sections and their h2 parts."""
    items: list[str] = []
    open_sub = False
    for level, hid, text in headings[1:]:  # [0] is the document title
        link = f'<a href="#{hid}">{text}</a>'
        if level == 1:
            if open_sub:
                items.append("</ul></li>")
                open_sub = False
            elif items:
                items.append("</li>")
            items.append(f"<li>{link}")
        elif level == 2 and items:
            if not open_sub:
                items.append("<ul>")
                open_sub = True
            items.append(f"<li>{link}</li>")
    if items:
        items.append("</ul></li>" if open_sub else "</li>")
    return '<nav id="toc"><strong>Contents</strong><ul>' + "".join(items) + "</ul></nav>"


def offline(body: str) -> str:
    """Remove scripts that would fetch from the network (MathJax, require.js, mermaid)."""
    body = _EXTERNAL_SCRIPT.sub("", body)
    body = _MODULE_SCRIPT.sub("", body)
    return _MATHJAX_CONFIG.sub("", body)


def build_html(
    sections: Iterable[Section],
    *,
    out: Path,
    title: str,
    index: pd.DataFrame | None = None,
    link_prefix: str = "../",
) -> Path:
    """Assemble the sections into one standalone HTML report at ``out``.

    Each section is a top-level heading; its notebooks' headings are pushed one level
    down beneath it. The appendix lists the environment and every run, linking each
    run's executed notebook (``link_prefix`` + the run's path in the store).
    """
    import nbformat
    from nbconvert import HTMLExporter

    book = nbformat.v4.new_notebook()
    book.metadata["title"] = title
    book.cells.append(nbformat.v4.new_markdown_cell(f"# {title}"))
    for section in sections:
        book.cells.append(nbformat.v4.new_markdown_cell(f"# {section.title}\n\n{section.markdown}"))
        for path in section.notebooks:
            book.cells.extend(clean_cells(nbformat.read(str(path), as_version=4), demote_headings=True))
    book.cells.append(nbformat.v4.new_markdown_cell(
        "# Appendix\n\n## Environment\n\nThe machine and packages this report was built with."))
    book.cells.append(_html_cell(environment_table().to_html(index=False)))
    if index is not None and len(index):
        book.cells.append(nbformat.v4.new_markdown_cell(
            "## Runs\n\nEvery finished run of the store (`runs/index.csv`), with a link to its "
            "executed notebook."))
        book.cells.append(_html_cell(run_table_html(index, link_prefix=link_prefix)))
    for i, cell in enumerate(book.cells):  # the same notebook source repeats per task
        cell["id"] = f"cell-{i}"
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(book)
    body, headings = _unique_ids(offline(body))
    first = _HEADING_TAG.search(body)
    if first:  # the table of contents goes right after the document title
        body = body[: first.end()] + _toc(headings) + body[first.end():]
    body = body.replace("</head>", PRINT_CSS + "</head>", 1)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(out)
    return out


def build_pdf(html_path: Path, *, out: Path) -> Path:
    """Render the HTML report to an A4 PDF with weasyprint (print stylesheet applies)."""
    import logging

    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    out = Path(out)
    tmp = out.with_suffix(".tmp.pdf")
    weasyprint.HTML(filename=str(html_path), base_url=str(Path(html_path).parent)).write_pdf(str(tmp))
    tmp.replace(out)
    return out
