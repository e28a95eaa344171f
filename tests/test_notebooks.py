"""Notebook plumbing: declared parameters are parsed; undeclared ones are refused."""

from __future__ import annotations

import pytest

from cielib import notebook_source
from cielib.notebook_source import ParameterError


def test_every_notebook_declares_parameters_and_asserts():
    for name in ("train", "quantize", "results", "profiling", "quantization", "cie", "discussion"):
        path = notebook_source.notebook_path(name)
        declared = notebook_source.declared_parameters(path)
        assert "run_dir" in declared
        nb = notebook_source.read_notebook(path)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
        assert tags.count("parameters") == 1 and tags[-1] == "assert"
        assert nb.cells[-1].metadata.get("tags") == ["assert"], "the assert cell comes last"


def test_declared_defaults_are_values():
    declared = notebook_source.declared_parameters(notebook_source.notebook_path("train"))
    assert declared["sparsity"] == 0.0 and declared["model_options"] == {}
    assert declared["data_dir"] is None


def test_undeclared_parameter_is_refused():
    path = notebook_source.notebook_path("train")
    notebook_source.check_parameters(path, {"seed": 1, "sparsity": 0.5})
    with pytest.raises(ParameterError, match=r"\['learnin_rate'\].*declared:.*learning_rate"):
        notebook_source.check_parameters(path, {"learnin_rate": 0.1})


def test_unknown_notebook():
    with pytest.raises(FileNotFoundError, match="no notebook 'nope'.*train"):
        notebook_source.notebook_path("nope")


def test_notebook_without_parameters_cell(tmp_path):
    p = tmp_path / "x.py"
    p.write_text("# %%\na = 1\n")
    with pytest.raises(ParameterError, match="no cell tagged 'parameters'"):
        notebook_source.declared_parameters(p)


def test_a_changed_source_is_not_executed_under_the_old_id(tmp_path):
    p = tmp_path / "x.py"
    p.write_text('# %% tags=["parameters"]\nrun_dir = "."\n\n# %%\nprint(1)\n')
    old = notebook_source.source_hash(p)
    p.write_text('# %% tags=["parameters"]\nrun_dir = "."\n\n# %%\nprint(2)\n')
    with pytest.raises(notebook_source.SourceChangedError, match="changed after the plan was made"):
        notebook_source.execute(p, output=tmp_path / "out.ipynb", parameters={}, expected_hash=old)
    assert not (tmp_path / "out.ipynb").exists()


def test_papermill_parses_every_parameters_cell(caplog):
    """papermill reads the parameters cell too (for its metadata); it must not stumble."""
    import logging

    from papermill.translators import PythonTranslator

    caplog.set_level(logging.WARNING, logger="papermill")
    for path in sorted(notebook_source.notebook_path("train").parent.glob("*.py")):
        nb = notebook_source.read_notebook(path)
        (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        parsed = {p.name for p in PythonTranslator.inspect(cell)}
        assert parsed == set(notebook_source.declared_parameters(path)), path.name
    assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()]
