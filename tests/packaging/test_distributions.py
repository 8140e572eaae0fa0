"""The distributions: ``python -m build`` makes the sdist and, from it, the wheel; both
hold what they must (LICENSE, py.typed; the sdist also the tests, the docs and the
changelog), and the wheel installs into a clean virtual environment and imports.

One test, run once per CI run (bin/test's packaging step; ``DATAFLOW_SKIP_PACKAGING=1``
skips it): it builds in an isolated environment and installs Django into a new one.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent

IN_THE_SDIST = [
    "LICENSE",
    "README.md",
    "CHANGELOG.md",
    "pyproject.toml",
    "mkdocs.yml",
    "django_dataflow/py.typed",
    "django_dataflow/pool/pool.py",
    "django_dataflow/templates/django_dataflow/debug_toolbar/pool_panel.html",
    "docs/settings.md",
    "docs/design.md",
    "tests/conftest.py",
    "tests/packaging/test_distributions.py",
    "example_project/manage.py",
    "bin/test",
]
IN_THE_WHEEL = [
    "django_dataflow/__init__.py",
    "django_dataflow/py.typed",
    "django_dataflow/backends/postgresql/base.py",
    "django_dataflow/management/commands/pool_stats.py",
    "django_dataflow/templates/django_dataflow/debug_toolbar/pool_panel.html",
]


def run(*command: str | Path, cwd: Path = REPO) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_the_wheel_and_sdist_hold_what_they_must_and_the_wheel_installs(tmp_path: Path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--outdir", dist, REPO)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")

    with tarfile.open(sdist) as archive:
        root = archive.getnames()[0].split("/")[0]
        sdist_names = {name.removeprefix(f"{root}/") for name in archive.getnames()}
    missing = [name for name in IN_THE_SDIST if name not in sdist_names]
    assert not missing, f"not in the sdist: {missing}"
    assert not [name for name in sdist_names if "__pycache__" in name or name.endswith(".pyc")]

    with zipfile.ZipFile(wheel) as archive:
        wheel_names = set(archive.namelist())
        [metadata_name] = [name for name in wheel_names if name.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    missing = [name for name in IN_THE_WHEEL if name not in wheel_names]
    assert not missing, f"not in the wheel: {missing}"
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in wheel_names)
    assert not [name for name in wheel_names if name.startswith(("tests/", "docs/"))]
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Typing :: Typed" in metadata
    assert "Project-URL: Documentation, https://" in metadata
    # The test tools are dependency groups, not extras users can install.
    extras = {
        line.split(": ", 1)[1]
        for line in metadata.splitlines()
        if line.startswith("Provides-Extra: ")
    }
    assert extras == {"postgresql", "mysql", "prometheus", "healthcheck", "opentelemetry"}

    clean = tmp_path / "venv"
    venv.create(clean, with_pip=True)
    python = clean / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    # Imported from the installed wheel, not from the checkout (cwd is tmp_path).
    imported = run(
        python,
        "-c",
        "import django_dataflow, django_dataflow.backends.sqlite3.base as b, pathlib;"
        "print(pathlib.Path(django_dataflow.__file__).parent); print(b.DatabaseWrapper.vendor)",
        cwd=tmp_path,
    ).split()
    package = Path(imported[0])
    assert package.is_relative_to(clean), package
    assert (package / "py.typed").is_file()
    assert imported[1] == "sqlite"
