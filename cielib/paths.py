"""Every path the project uses, in one place (as in showyourwork).

The project root is where ``run_all.py`` lives. It can be overridden with
``CIELIB_ROOT`` (tests use it to run the pipeline in a temporary directory).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_FILES = PACKAGE_DIR / "data_files"


def root() -> Path:
    """The project root: ``$CIELIB_ROOT`` or the checkout that holds this package."""
    env = os.environ.get("CIELIB_ROOT")
    return Path(env).resolve() if env else PACKAGE_DIR.parent


def configs_dir() -> Path:
    return PACKAGE_DIR.parent / "configs"


def notebooks_dir() -> Path:
    return PACKAGE_DIR.parent / "notebooks"


def runs_dir(base: Path | None = None) -> Path:
    return (base or root()) / "runs"


def report_dir(base: Path | None = None) -> Path:
    return (base or root()) / "report"
