"""Create the benchmark's own virtualenv and re-run the benchmark inside it.

The contenders (psycopg_pool, django-db-connection-pool and its SQLAlchemy) are not
dependencies of django_dataflow, so they live in ``.cache/bench-venv`` (git-ignored),
never in the development venv. Django there is pinned to the version of the interpreter
that started the benchmark, so the numbers are for the Django the project tests with.

This module imports nothing outside the standard library: it runs before the venv exists.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".cache" / "bench-venv"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
STAMP = VENV / "dataflow-bench.stamp"
# Used when the starting interpreter has no Django (e.g. the system python).
DEFAULT_DJANGO = "Django>=5.2,<6.1"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _django_requirement() -> str:
    try:
        return f"Django=={metadata.version('Django')}"
    except metadata.PackageNotFoundError:
        return DEFAULT_DJANGO


def _inside_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _wanted_stamp(django_req: str) -> str:
    # Reinstall when the requirements, the Django pin or the package metadata change.
    digest = hashlib.sha256()
    digest.update(REQUIREMENTS.read_bytes())
    digest.update(django_req.encode())
    digest.update((REPO / "pyproject.toml").read_bytes())
    return digest.hexdigest()


def ensure_venv_and_reexec(argv: list[str]) -> None:
    """Make sure the bench venv is installed and up to date, then exec the benchmark in it.

    Returns only when already running inside the bench venv.
    """
    if _inside_venv():
        return
    django_req = _django_requirement()
    python = _venv_python()
    if not python.exists():
        print(f"[bootstrap] creating {VENV}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wanted = _wanted_stamp(django_req)
    if not STAMP.exists() or STAMP.read_text().strip() != wanted:
        print(f"[bootstrap] installing the contenders into {VENV}", file=sys.stderr)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, django_req, "-r", str(REQUIREMENTS)], check=True)
        subprocess.run([*pip, "-e", str(REPO)], check=True)
        STAMP.write_text(wanted + "\n")
    script = Path(argv[0]).resolve()
    os.execv(str(python), [str(python), str(script), *argv[1:]])
