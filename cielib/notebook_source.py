"""Executing the Jupytext notebooks with papermill, strictly.

The ``.py`` percent-format files in ``notebooks/`` are the source of truth. Before a
run they are converted to ``.ipynb`` with a kernelspec (papermill needs one), their
``parameters`` cell is read with papermill's own inspection, and any parameter the
notebook does not declare is refused at planning: papermill itself only warns, which
would let a typo silently run with a default.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

from cielib import hashing

KERNEL_NAME = "python3"


class ParameterError(ValueError):
    """Parameters passed to a notebook that its ``parameters`` cell does not declare."""


def notebook_path(name: str | Path) -> Path:
    """``notebooks/<name>.py`` (the Jupytext source), or a ``.py`` path given as such."""
    from cielib import paths

    given = Path(name)
    if given.suffix == ".py" and given.is_absolute():
        if not given.is_file():
            raise FileNotFoundError(f"no notebook at {given}")
        return given
    p = paths.notebooks_dir() / f"{given.stem if given.suffix == '.py' else name}.py"
    if not p.is_file():
        available = sorted(q.stem for q in paths.notebooks_dir().glob("*.py"))
        raise FileNotFoundError(f"no notebook {name!r} at {p}; available: {', '.join(available)}")
    return p


def source_hash(path: str | Path) -> str:
    """sha256 of the notebook source; part of every run id."""
    return hashing.bytes_sha256(Path(path).read_bytes())


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


def parameters_cell(nb: Any) -> Any:
    """The one code cell tagged ``parameters``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell
    raise ParameterError("notebook has no cell tagged 'parameters'")


def declared_parameters(path: str | Path) -> dict[str, Any]:
    """Names and default values of the notebook's parameters, as papermill reads them.

    papermill's own inspection (``PythonTranslator.inspect``) finds the names, so what
    is refused here is exactly what papermill would not inject into a declared name;
    the defaults it returns as source text are evaluated as literals (None when a
    default is an expression). The answer is cached by the source's hash and the
    versions of papermill and jupytext (:func:`parameters_cache`): importing them costs
    seconds, and a rerun that changes nothing should not pay them to plan.
    """
    source = Path(path).read_bytes()
    key = parameters_cache_key(source)
    cache = parameters_cache()
    try:
        return dict(json.loads(cache.read_text())[key])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from papermill.translators import PythonTranslator

    out: dict[str, Any] = {}
    for p in PythonTranslator.inspect(parameters_cell(read_notebook(path, source=source))):
        try:
            out[p.name] = ast.literal_eval(p.default)
        except (ValueError, SyntaxError):
            out[p.name] = None
    _remember(cache, key, out)
    return out


def parameters_cache() -> Path:
    """Where declared parameters are cached: ``$XDG_CACHE_HOME/cielib`` (or ``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cielib" / "notebook-parameters.json"


def parameters_cache_key(source: bytes) -> str:
    """The source's hash and what reads it: papermill's and jupytext's versions."""
    from importlib import metadata

    return "-".join([hashing.bytes_sha256(source), *(metadata.version(m) for m in ("papermill", "jupytext"))])


def _remember(cache: Path, key: str, declared: dict[str, Any]) -> None:
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    try:
        json.dumps(declared)
    except (TypeError, ValueError):
        return  # a default that is not JSON: not cached
    known = {**(known if isinstance(known, dict) else {}), key: declared}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, sort_keys=True))
        tmp.replace(cache)
    except OSError:
        pass  # a read-only home: plan without the cache


def check_parameters(declared: dict[str, Any] | str | Path, params: dict[str, Any], *,
                     name: str = "") -> None:
    """Refuse parameters the notebook does not declare (naming them and the allowed ones).

    papermill only warns about an undeclared parameter, which would let a typo run
    silently with a default; the planner calls this once per run, before anything runs.
    """
    if not isinstance(declared, dict):
        name = name or Path(declared).name
        declared = declared_parameters(declared)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ParameterError(
            f"notebook {name} does not declare parameter(s) {unknown}; declared: {sorted(declared)}"
        )


def execute(
    path: str | Path,
    *,
    output: str | Path,
    parameters: dict[str, Any],
    cwd: str | Path | None = None,
    log_output: bool = False,
    expected_hash: str | None = None,
    kernel_server: str | None = None,
) -> Path:
    """Execute a Jupytext notebook with papermill into ``output`` (an ``.ipynb``).

    The executed copy is written even when a cell fails (papermill saves it with the
    traceback), so a failing run can be inspected. Raises papermill's
    ``PapermillExecutionError`` on failure, and :class:`SourceChangedError` when
    ``expected_hash`` (the source hash in the run's id) no longer matches the file: a
    run must execute the very source its id names. With ``kernel_server`` (an address
    from :func:`cielib.kernel_server.start`) the kernel is forked from that warm server
    instead of started from scratch.
    """
    import nbformat
    import papermill

    source = Path(path).read_bytes()
    if expected_hash and hashing.bytes_sha256(source) != expected_hash:
        raise SourceChangedError(
            f"{Path(path).name} changed after the plan was made; run run_all.py again"
        )
    output = Path(output)
    source_ipynb = output.with_name(output.stem + ".source.ipynb")
    nbformat.write(read_notebook(path, source=source), str(source_ipynb))
    engine: dict[str, Any] = {}
    if kernel_server:
        from cielib import kernel_server as ks

        engine["kernel_manager_class"] = ks.kernel_manager_class(kernel_server)
    try:
        papermill.execute_notebook(
            str(source_ipynb),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            log_output=log_output,
            cwd=str(cwd) if cwd else None,
            **engine,
        )
    finally:
        source_ipynb.unlink(missing_ok=True)
    return output
