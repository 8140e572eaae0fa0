"""``manage.py check`` lists every POOL problem on every vendor, with its id, where
Django's own checks would connect (MySQL/MariaDB: the model checks read the server's
version) and the connection would raise the first problem as a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
BAD_SETTINGS = """
from {module} import *  # noqa: F403
DATABASES = {{
    "default": {{**DATABASES["default"], "POOL": {{"POOL_SIZE": 5, "pool_timeout": -1}}}},
}}
"""


@pytest.mark.parametrize("command", [["check", "--database", "default"], ["migrate"]])
def test_check_lists_every_pool_problem_instead_of_a_traceback(tmp_path, command):
    (tmp_path / "bad_pool_settings.py").write_text(
        BAD_SETTINGS.format(module=settings.SETTINGS_MODULE)
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bad_pool_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
    }

    result = subprocess.run(
        [sys.executable, "-m", "django", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "dataflow.E002" in result.stderr and "dataflow.E003" in result.stderr
