"""Assembling the report: executed analysis notebooks -> one standalone HTML and a PDF.

The report is never edited by hand. It concatenates the executed analysis notebooks
section by section (code hidden, figures embedded as data URIs), removes TensorFlow's
start-up noise from their outputs, adds a linked table of contents and an appendix
generated from the run store, strips every script that would reach the network (the
file must read the same offline), and renders a PDF from it with weasyprint and a
print stylesheet (A4, nothing clipped).

It reads like the paper: sections are laid out and titled after the paper's results
(:data:`LAYOUT`, :func:`task_section`) and numbered (``2``, ``2.1``, ``2.1.1``; the
appendix ``A``), which the table of contents and the PDF outline (bookmarks) repeat.
Every figure and table gets a numbered caption (``Figure 2.3.``, ``Table 2.1.``),
taken, in this order, from

1. the output's own caption: a table from :func:`cielib.tables.present` carries an
   HTML ``<caption>``; a figure shown with :func:`cielib.tables.show_figure` (or
   ``display(fig, metadata={"caption": "..."})``) carries ``{"caption": ...}`` in its
   output metadata;
2. the cell's metadata ``caption`` (a jupytext cell header ``# %% caption="..."``);
3. the first sentence of the markdown that precedes the output (its heading's text
   where there is no sentence).

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

from cielib import report_layout
from cielib.stages import STAGES

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
_IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
_TABLE_OPEN = re.compile(r"<table\b[^>]*>", re.S)

# The paper's results, in its order, and which analysis notebook (stage) covers which
# part: (stage, title, the paper's sections). "§X" is VGG-19, "§XI" ResNet-50.
# The report's part of each per-task analysis stage, in the stage table's order (the
# paper's: training and test performance, GPU use, impacted classes, quantization),
# with the paper's sections it corresponds to per paper task.
LAYOUT: tuple[tuple[str, str, dict[str, str]], ...] = tuple(
    (s.name, s.title, s.paper) for s in STAGES if s.in_report and s.per == "task")
PAPER_RESULTS = {"vgg19_cifar10": "§X, VGG-19 Results", "resnet50_cifar100": "§XI, ResNet-50 Results"}
METHOD_TITLE, METHOD_PAPER = "Aims and method", "§I and §IX, Experiment setup"
DISCUSSION_TITLE = "Discussion: the paper beside this run"
DISCUSSION_PAPER = "§XII-§XV, further research, evaluation and conclusion"

PRINT_CSS = """
<style>
nav#toc { border: 1px solid #ddd; background: #fafafa; padding: 0.6em 1.2em; margin: 1em 0 2em; }
nav#toc ul { margin: 0.2em 0; padding-left: 1.2em; }
nav#toc > ul > li { margin-top: 0.3em; font-weight: 600; }
nav#toc li li { font-weight: 400; }
.secnum { margin-right: 0.4em; }
.paper-ref { color: #555; font-style: italic; }
.capnum { font-weight: 600; margin-right: 0.3em; }
figure.cielib-figure { margin: 0.6em 0 1em; }
figcaption.cielib-caption, table caption { font-size: 0.9em; color: #333; text-align: left;
                                           padding: 0.3em 0; caption-side: bottom; }
.jp-RenderedHTMLCommon table { font-size: 0.85em; }
img { max-width: 100%; height: auto; }
@page { size: A4; margin: 14mm 11mm 16mm 11mm;
        @bottom-center { content: counter(page) " / " counter(pages); font-size: 8pt; } }
@media print {
  body { font-size: 9.5pt; }
  h1 { break-before: page; }
  h1:first-of-type, nav#toc + h1 { break-before: auto; }
  h2, h3 { break-after: avoid; }
  h5, h6 { bookmark-level: none; }
  img, figure { max-width: 100% !important; height: auto !important; break-inside: avoid; }
  .jp-OutputArea-output, .jp-RenderedHTMLCommon, .jp-Cell, .jp-OutputArea { overflow: visible !important; }
  .jp-RenderedHTMLCommon table { font-size: 7.5pt; table-layout: auto; max-width: 100%;
                                 margin-left: 0; margin-right: 0; }
  .jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 1px 3px; word-break: normal; }
  .jp-RenderedHTMLCommon th { overflow-wrap: normal; word-break: keep-all; hyphens: manual; }
  .jp-RenderedHTMLCommon table.wide { font-size: 6.5pt; }
  .jp-RenderedHTMLCommon table.very-wide { font-size: 5.5pt; }
  .jp-RenderedHTMLCommon table.wide td, .jp-RenderedHTMLCommon table.wide th,
  .jp-RenderedHTMLCommon table.very-wide td, .jp-RenderedHTMLCommon table.very-wide th { padding: 1px 2px; }
  .jp-RenderedHTMLCommon table.fs70 { font-size: 7pt; }
  .jp-RenderedHTMLCommon table.fs65 { font-size: 6.5pt; }
  .jp-RenderedHTMLCommon table.fs60 { font-size: 6pt; }
  .jp-RenderedHTMLCommon table.fs55 { font-size: 5.5pt; }
  .jp-RenderedHTMLCommon table.fs50 { font-size: 5pt; }
  .jp-RenderedHTMLCommon table.fs45 { font-size: 4.5pt; }
  .jp-RenderedHTMLCommon table.squeeze td { overflow-wrap: anywhere; }
  table caption { font-size: 8pt; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  a.anchor-link { display: none; }
}
</style>
"""


@dataclass
class Part:
    """One executed notebook under its own, paper-style title (a second-level heading).

    The notebook's own title (its first ``#`` heading) is replaced by ``title``; ``paper``
    names the paper's sections it corresponds to, printed under the heading.
    """

    title: str
    notebook: Path
    paper: str = ""


@dataclass
class Section:
    """One part of the report: a title (a top-level heading) and what goes under it.

    ``notebooks`` are placed under their own titles, pushed one level down; ``parts``
    (after them) under the titles the parts give. ``paper`` names the paper's section.
    """

    title: str
    notebooks: list[Path] = field(default_factory=list)
    markdown: str = ""
    parts: list[Part] = field(default_factory=list)
    paper: str = ""


def _paper_line(paper: str) -> str:
    return f'<p class="paper-ref">The paper\'s {html_lib.escape(paper)}.</p>' if paper else ""


def task_section(label: str, executed: dict[str, list[Path]], *, stand_in_for: str = "",
                 paper_task: str | None = None) -> Section:
    """One task's results laid out like the paper's results for a model (:data:`LAYOUT`).

    Args:
        label: The task's label ("VGG-style CNN on Fashion-MNIST").
        executed: Analysis stage -> its executed notebooks for this task (stages
            absent or empty are left out; stages not in :data:`LAYOUT` are refused).
        stand_in_for: The paper's task this one stands in for ("VGG-19 on CIFAR-10"),
            empty when it is the paper's own task.
        paper_task: A key of :data:`PAPER_RESULTS`, naming the paper sections in the
            headings; None names none.
    """
    known = {stage for stage, _, _ in LAYOUT}
    unknown = sorted(set(executed) - known)
    if unknown:
        raise ValueError(f"unknown analysis stage(s) {unknown}; allowed: {', '.join(sorted(known))}")
    if paper_task is not None and paper_task not in PAPER_RESULTS:
        raise ValueError(f"unknown paper_task {paper_task!r}; allowed: {', '.join(PAPER_RESULTS)}")
    if stand_in_for:
        title = f"Results: {label}, standing in for {stand_in_for}"
    else:
        title = f"Results: {label}"
    parts = [Part(part_title, nb, paper=refs.get(paper_task, "") if paper_task else "")
             for stage, part_title, refs in LAYOUT for nb in executed.get(stage, [])]
    return Section(title, parts=parts, paper=PAPER_RESULTS.get(paper_task, "") if paper_task else "")


def strip_noise(text: str) -> str:
    """Drop TensorFlow's log-noise lines from a block of output text."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.match(line))


def demote(markdown: str) -> str:
    """Push every markdown heading one level down (# -> ##), so notebooks nest in sections."""
    return _HEADING.sub(lambda m: "#" + m.group(1) + m.group(2), markdown)


def _first_sentence(markdown: str) -> tuple[str, str]:
    """(last heading text, first sentence of the first paragraph after it) of a markdown text."""
    heading, sentence = "", ""
    for block in re.split(r"\n\s*\n", markdown):
        block = block.strip()
        if not block:
            continue
        m = re.match(r"#{1,6}\s+(.*)", block)
        if m:
            heading, sentence = m.group(1).split("\n")[0].strip(), ""
            rest = block.split("\n", 1)[1].strip() if "\n" in block else ""
            if not rest:
                continue
            block = rest
        if not sentence and not block.startswith(("|", "-", "*  ", "```", "<")):
            text = " ".join(block.split())
            m = re.match(r"(.+?[.!?])(?:\s|$)", text)
            sentence = (m.group(1) if m else text).rstrip(":")
    return heading, sentence


def _inline(text: str) -> str:
    """Escape a caption and keep its **bold** and `code` markup."""
    text = html_lib.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _figure_html(data: dict, caption: str) -> str:
    cap = _inline(caption)
    alt = html_lib.escape(re.sub(r"[*`]", "", caption), quote=True)
    if "image/svg+xml" in data and not any(k in data for k in ("image/png", "image/jpeg")):
        svg = data["image/svg+xml"]
        img = svg if isinstance(svg, str) else "".join(svg)
    else:
        mime = "image/png" if "image/png" in data else "image/jpeg"
        payload = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
        img = f'<img src="data:{mime};base64,{payload.strip()}" alt="{alt}"/>'
    return (f'<figure class="cielib-figure">{img}'
            f'<figcaption class="cielib-caption">{cap}</figcaption></figure>')


def _caption_table(html: str, caption: str) -> str:
    """Give the first table of an HTML output a caption, unless it has one."""
    if "<caption" in html:
        return html
    m = _TABLE_OPEN.search(html)
    if not m:
        return html
    return html[: m.end()] + f'<caption class="cielib-caption">{_inline(caption)}</caption>' + html[m.end():]


def clean_cells(nb, *, demote_headings: bool = False, title: str | None = None, note: str = "",
                caption_outputs: bool = False) -> list:
    """The notebook's cells to show: no parameter/assert cells, no log noise, no empties.

    Args:
        nb: An executed notebook.
        demote_headings: Push markdown headings one level down.
        title: Replace the notebook's own title (its first ``#`` heading) with this.
        note: A markdown line put under that title.
        caption_outputs: Turn every figure into a ``<figure>`` with a caption and give
            every table one (see the module docstring for where captions come from).
    """
    cells = []
    heading, sentence = "", ""
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & HIDDEN_TAGS:
            continue
        cell = copy.deepcopy(cell)
        if cell.cell_type == "markdown":
            if title is not None and re.search(r"^# ", cell.source, flags=re.M):
                new = f"# {title}" + (f"\n\n{note}\n" if note else "")
                cell.source = re.sub(r"^# .*$", lambda m: new, cell.source, count=1, flags=re.M)
                title = None
            h, sent = _first_sentence(cell.source)
            heading, sentence = (h or heading), (sent if (h or sent) else sentence)
            if demote_headings:
                cell.source = demote(cell.source)
        if cell.cell_type == "code":
            outputs = []
            cell_caption = cell.get("metadata", {}).get("caption")
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    text = strip_noise(out.get("text", ""))
                    if not text.strip():
                        continue
                    out["text"] = text
                data = out.get("data", {})
                if "text/markdown" in data:
                    h, sent = _first_sentence(data["text/markdown"])
                    heading, sentence = (h or heading), (sent if (h or sent) else sentence)
                    if demote_headings:
                        data["text/markdown"] = demote(data["text/markdown"])
                if caption_outputs and data:
                    caption = (out.get("metadata", {}).get("caption") or cell_caption
                               or sentence or heading or "")
                    if any(k in data for k in _IMAGE_TYPES) and "text/html" not in data:
                        out = _as_html_output(out, _figure_html(data, caption or "Figure."))
                    elif "text/html" in data and "<table" in _text(data["text/html"]):
                        data["text/html"] = _caption_table(_text(data["text/html"]), caption or "Table.")
                outputs.append(out)
            cell["outputs"] = outputs
            if not outputs:
                continue
        cells.append(cell)
    return cells


def _text(value) -> str:
    return value if isinstance(value, str) else "".join(value)


def _as_html_output(out, html: str):
    import nbformat

    return nbformat.v4.new_output("display_data", data={"text/html": html})


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
    from cielib import tables

    cols = [c for c in ("run_id", "stage", "task", "sparsity", "technique", "seed", "top1", "path")
            if c in index.columns]
    df = index[cols].copy()
    if "path" in df:
        df["path"] = [f'<a href="{link_prefix}{html_lib.escape(str(p))}/executed.ipynb">'
                      f"{html_lib.escape(str(p)).replace('/', '/<wbr>')}/<wbr>executed.ipynb</a>"
                      for p in df["path"]]  # <wbr>: a long path may break after a slash
    styler = tables.present(df, headers={"path": "Executed notebook", "run_id": "Run id"},
                            kinds={"seed": "text"},
                            caption="Every finished run of the store, with a link to its executed notebook")
    return styler.hide(axis="index").to_html()


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
    down beneath it. Sections, figures and tables are numbered and every figure and
    table captioned (see the module docstring). The appendix lists the environment and
    every run, linking each run's executed notebook (``link_prefix`` + the run's path
    in the store).
    """
    import nbformat
    from nbconvert import HTMLExporter

    from cielib import tables

    book = nbformat.v4.new_notebook()
    book.metadata["title"] = title
    book.cells.append(nbformat.v4.new_markdown_cell(f"# {title}"))
    for section in sections:
        note = f"\n\n*The paper's {section.paper}.*" if section.paper else ""
        book.cells.append(nbformat.v4.new_markdown_cell(f"# {section.title}{note}\n\n{section.markdown}"))
        for path in section.notebooks:
            book.cells.extend(clean_cells(nbformat.read(str(path), as_version=4), demote_headings=True,
                                          caption_outputs=True))
        for part in section.parts:
            note = f"*The paper's {part.paper}.*" if part.paper else ""
            cells = clean_cells(nbformat.read(str(part.notebook), as_version=4), demote_headings=True,
                                title=part.title, note=note, caption_outputs=True)
            if not any(c.cell_type == "markdown" and c.source.startswith(f"## {part.title}") for c in cells):
                cells.insert(0, nbformat.v4.new_markdown_cell(f"## {part.title}\n\n{note}"))
            book.cells.extend(cells)
    book.cells.append(nbformat.v4.new_markdown_cell(
        "# Appendix\n\n## Environment\n\nThe machine and packages this report was built with."))
    env = tables.present(environment_table(), caption="The machine and packages this report was built with")
    book.cells.append(_html_cell(env.hide(axis="index").to_html()))
    if index is not None and len(index):
        book.cells.append(nbformat.v4.new_markdown_cell(
            "## Runs\n\nEvery finished run of the store (`runs/index.csv`), with a link to its "
            "executed notebook: open it in JupyterLab (`jupyter lab`, then the file) or read it "
            "on its own."))
        book.cells.append(_html_cell(run_table_html(index, link_prefix=link_prefix)))
    for i, cell in enumerate(book.cells):  # the same notebook source repeats per task
        cell["id"] = f"cell-{i}"
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(book)
    body = report_layout.finish(body)
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
