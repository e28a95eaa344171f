"""Executing the Jupytext notebooks with papermill, strictly.

The ``.py`` percent-format files in ``notebooks/`` are the source of truth. Before a
run they are converted to ``.ipynb`` with a kernelspec (papermill needs one), their
``parameters`` cell is parsed, and any parameter the notebook does not declare is
refused: papermill itself only warns, which would let a typo silently run with a
default.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from typing import Any

KERNEL_NAME = "python3"


class ParameterError(ValueError):
    """Parameters passed to a notebook that its ``parameters`` cell does not declare."""


def notebook_path(name: str) -> Path:
    """``notebooks/<name>.py`` (the Jupytext source)."""
    from cielib import paths

    p = paths.notebooks_dir() / f"{name}.py"
    if not p.is_file():
        available = sorted(q.stem for q in paths.notebooks_dir().glob("*.py"))
        raise FileNotFoundError(f"no notebook {name!r} at {p}; available: {', '.join(available)}")
    return p


def source_hash(path: str | Path) -> str:
    """sha256 of the notebook source; part of every run id."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class SourceChangedError(RuntimeError):
    """A notebook's source changed between planning a run and executing it."""


def read_notebook(path: str | Path, *, source: bytes | None = None) -> Any:
    """The notebook as an nbformat node with a Python 3 kernelspec set.

    ``source`` (the file's bytes, already read) lets the caller convert exactly the
    bytes it hashed.
    """
    import jupytext

    text = (source if source is not None else Path(path).read_bytes()).decode("utf-8")
    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


def parameters_cell_source(nb: Any) -> str:
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    raise ParameterError("notebook has no cell tagged 'parameters'")


def declared_parameters(path: str | Path) -> dict[str, Any]:
    """Names and default values assigned in the notebook's ``parameters`` cell."""
    src = parameters_cell_source(read_notebook(path))
    out: dict[str, Any] = {}
    for node in ast.parse(src).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        for t in targets:
            if isinstance(t, ast.Name):
                try:
                    out[t.id] = ast.literal_eval(value)
                except ValueError:
                    out[t.id] = None
    return out


def check_parameters(path: str | Path, params: dict[str, Any]) -> None:
    """Refuse parameters the notebook does not declare (naming them and the allowed ones)."""
    declared = declared_parameters(path)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ParameterError(
            f"notebook {Path(path).name} does not declare parameter(s) {unknown}; "
            f"declared: {sorted(declared)}"
        )


def execute(
    path: str | Path,
    *,
    output: str | Path,
    parameters: dict[str, Any],
    cwd: str | Path | None = None,
    log_output: bool = False,
    expected_hash: str | None = None,
) -> Path:
    """Execute a Jupytext notebook with papermill into ``output`` (an ``.ipynb``).

    The executed copy is written even when a cell fails (papermill saves it with the
    traceback), so a failing run can be inspected. Raises papermill's
    ``PapermillExecutionError`` on failure, and :class:`SourceChangedError` when
    ``expected_hash`` (the source hash in the run's id) no longer matches the file: a
    run must execute the very source its id names.
    """
    import nbformat
    import papermill

    source = Path(path).read_bytes()
    if expected_hash and hashlib.sha256(source).hexdigest() != expected_hash:
        raise SourceChangedError(
            f"{Path(path).name} changed after the plan was made; run run_all.py again"
        )
    check_parameters(path, parameters)
    output = Path(output)
    source_ipynb = output.with_name(output.stem + ".source.ipynb")
    nbformat.write(read_notebook(path, source=source), str(source_ipynb))
    try:
        papermill.execute_notebook(
            str(source_ipynb),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            log_output=log_output,
            cwd=str(cwd) if cwd else None,
        )
    finally:
        source_ipynb.unlink(missing_ok=True)
    return output
