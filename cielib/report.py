"""Assembling the report: executed analysis notebooks -> one self-contained HTML file.

The report is never edited by hand: it is the concatenation of the executed analysis
notebooks (code hidden, figures embedded as data URIs), with TensorFlow's start-up
noise removed from the outputs, plus an appendix generated from the run store.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import copy
import platform
import re
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
    "pandas", "scikit-learn", "scipy", "papermill", "jupytext", "nbconvert",
)


def strip_noise(text: str) -> str:
    """Drop TensorFlow's log-noise lines from a block of output text."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.match(line))


def clean_cells(nb) -> list:
    """The notebook's cells to show: no parameter/assert cells, no log noise, no empties."""
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & HIDDEN_TAGS:
            continue
        cell = copy.deepcopy(cell)
        if cell.cell_type == "code":
            outputs = []
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream":
                    text = strip_noise(out.get("text", ""))
                    if not text.strip():
                        continue
                    out["text"] = text
                outputs.append(out)
            cell["outputs"] = outputs
            if not outputs:
                continue
        cells.append(cell)
    return cells


def environment_table() -> pd.DataFrame:
    """Package versions and the machine the report was built on."""
    rows = [("python", platform.python_version()), ("machine", platform.machine()),
            ("processor", platform.processor() or platform.machine())]
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


def build_html(
    executed: Iterable[Path],
    *,
    out: Path,
    title: str,
    intro_markdown: str,
    index: pd.DataFrame | None = None,
) -> Path:
    """Concatenate executed notebooks into one standalone HTML report at ``out``."""
    import nbformat
    from nbconvert import HTMLExporter

    book = nbformat.v4.new_notebook()
    book.metadata["title"] = title
    book.cells.append(nbformat.v4.new_markdown_cell(f"# {title}\n\n{intro_markdown}"))
    for path in executed:
        book.cells.extend(clean_cells(nbformat.read(str(path), as_version=4)))
    book.cells.append(nbformat.v4.new_markdown_cell("## Appendix\n\n### Environment"))
    book.cells.append(_html_cell(environment_table().to_html(index=False)))
    if index is not None and len(index):
        cols = [c for c in ("run_id", "stage", "task", "sparsity", "technique", "seed", "top1", "path")
                if c in index.columns]
        book.cells.append(nbformat.v4.new_markdown_cell("### Runs"))
        book.cells.append(_html_cell(index[cols].to_html(index=False, float_format="%.4f", na_rep="")))
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(book)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(out)
    return out
