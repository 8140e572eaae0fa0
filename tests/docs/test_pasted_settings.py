"""Settings pasted from the README and the docs are clean: every page's Python blocks,
run top to bottom into a project's settings, pass ``manage.py check`` without a warning,
unless the block is marked ``<!-- docs-test: expect dataflow.WNNN -->`` and the page says
why (its text names the id).

The checks run in this process on the pasted settings (``override_settings``), without
``--database``: the server checks (W003, W004) need a server; the README's pool sizes are
checked against W004's arithmetic below instead.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from django_dataflow.settings.engines import pooled_entries
from django_dataflow.settings.validation import resolve_pool_options
from tests.docs.test_pages import PAGES, REPO, blocks

# What a settings block may set; anything else in the namespace is the block's own.
SETTINGS = re.compile(r"^(DATABASES|DATABASE_ROUTERS|MIDDLEWARE|DATAFLOW_\w+)$")
PAGES_WITH_SETTINGS = PAGES


def _messages() -> set[tuple[str, str]]:
    return {
        (message.id or "", message.msg)
        for message in checks.run_checks(include_deployment_checks=False)
        if message.level >= checks.WARNING
    }


@pytest.mark.parametrize("page", PAGES_WITH_SETTINGS)
def test_pasted_settings_pass_the_checks(page: str, settings, restore_hooks) -> None:
    baseline = _messages()
    text = (REPO / page).read_text()
    namespace: dict[str, Any] = {
        "DATABASES": {
            "default": {"ENGINE": "django_dataflow.backends.postgresql", "NAME": "app", "POOL": {}}
        },
        "MIDDLEWARE": list(settings.MIDDLEWARE),
    }
    for marker, code in blocks(page, "python"):
        if marker in ("before", "queries") or marker.startswith("excerpt "):
            continue
        before = {name: repr(value) for name, value in namespace.items()}
        exec(compile(code, page, "exec"), namespace)
        pasted = {
            name: value
            for name, value in namespace.items()
            if SETTINGS.match(name) and (name not in before or repr(value) != before[name])
        }
        if not pasted:
            continue
        current = {name: value for name, value in namespace.items() if SETTINGS.match(name)}
        with override_settings(**current):
            new = sorted(_messages() - baseline)
        expected = marker.removeprefix("expect ").split() if marker.startswith("expect ") else []
        for check_id in expected:
            assert check_id in text.replace(f"<!-- docs-test: expect {check_id} -->", ""), (
                f"{page} expects {check_id} without saying why"
            )
        unexpected = [message for message in new if message[0] not in expected]
        assert unexpected == [], code


def test_the_readmes_pools_fit_a_default_postgresql() -> None:
    # W004 asks the server; its arithmetic: workers x (pool_size + pool_max_overflow) on
    # one server within max_connections (100) less superuser_reserved_connections (3).
    namespace: dict[str, Any] = {}
    for _marker, code in blocks("README.md", "python"):
        if "DataFlowConfig(" in code and "DATAFLOW_WORKER_PROCESSES" in code:
            exec(code, namespace)
            break
    workers = namespace["DATAFLOW_WORKER_PROCESSES"]
    per_process = sum(
        options["pool_size"] + options["pool_max_overflow"]
        for alias, vendor, entry in pooled_entries(namespace["DATABASES"])
        for options in [resolve_pool_options(alias, vendor, entry)]
    )
    assert workers > 1
    assert workers * per_process <= 100 - 3
