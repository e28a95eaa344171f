"""Nothing changed, nothing rebuilt: a report is keyed by everything it is built from.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

import pandas as pd

from cielib.hashing import bytes_sha256
from cielib.report import Section, environment_table

#: The code and prose a report is rendered by: a change to any of them rebuilds it.
REPORT_SOURCES = ("report.py", "report_layout.py", "report_key.py", "report_contents.py", "tables.py",
                  "data_files")
KEY_FILE = "report.key"


def report_key(sections: Iterable[Section], *, title: str, index: pd.DataFrame | None = None) -> str:
    """A hash of everything a report is built from, so an unchanged one is not rebuilt.

    What it reads: each section's text and the executed notebooks it shows (by path,
    which names the run id, and by the run's ``DONE`` record, which changes when a run
    is redone), the run table (``index``), the code that renders it
    (:data:`REPORT_SOURCES`), and the environment table printed in its appendix.
    """
    def done_record(nb: Path) -> str:
        try:
            return bytes_sha256((Path(nb).parent / "DONE").read_bytes())
        except OSError:
            return "missing"

    parts = []
    for s in sections:
        notebooks = [*s.notebooks, *(p.notebook for p in s.parts)]
        parts.append({"title": s.title, "markdown": s.markdown, "paper": s.paper,
                      "parts": [[p.title, p.paper] for p in s.parts],
                      "notebooks": [[str(nb), done_record(nb)] for nb in notebooks]})
    here = Path(__file__).resolve().parent
    code = {}
    for name in REPORT_SOURCES:
        path = here / name
        for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if f.is_file() and "__pycache__" not in f.parts:
                code[str(f.relative_to(here))] = bytes_sha256(f.read_bytes())
    blob = json.dumps({"title": title, "sections": parts, "code": code,
                       "index": index.to_csv(index=False) if index is not None else "",
                       "environment": environment_table().to_csv(index=False)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def is_up_to_date(out: Path, key: str) -> bool:
    """Whether ``out`` (report.html) and the files built with it were built from ``key``."""
    try:
        made = json.loads((Path(out).parent / KEY_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(made, dict) and made.get("key") == key
            and all((Path(out).parent / f).is_file() for f in made.get("files", [])))


def remember_key(out: Path, key: str, *, files: Iterable[str]) -> None:
    """Record that the report files ``files`` (next to ``out``) were built from ``key``."""
    path = Path(out).parent / KEY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "files": sorted(files)}, indent=1) + "\n")
    tmp.replace(path)
