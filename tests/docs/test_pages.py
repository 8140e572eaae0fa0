"""The README and the documentation pages of the example / load-test / operations work:
their Python blocks run, the DATABASES they show pass django-dataflow's own validation,
excerpts match the files they quote, and the README keeps its two set-up commands and
absolute links.

A block preceded by ``<!-- docs-test: before -->`` shows another package's settings and
is only compiled; ``<!-- docs-test: excerpt PATH -->`` marks a block whose lines must
appear, in order, in PATH. The blocks of one page run top to bottom in one namespace, so a
later block may use what an earlier one defined.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from django_dataflow.settings.engines import pooled_entries
from django_dataflow.settings.validation import inspect_pool_options

REPO = Path(__file__).resolve().parent.parent.parent
PAGES = [
    "README.md",
    "docs/index.md",
    "docs/installation.md",
    "docs/example.md",
    "docs/backends.md",
    "docs/loadtest.md",
    "docs/troubleshooting.md",
    "docs/deployment.md",
    "docs/migrating.md",
]
BLOCK = re.compile(
    r"(?:<!-- docs-test: (?P<marker>[^>]*?) -->\n)?```(?P<language>\w*)\n(?P<code>.*?)^```",
    re.DOTALL | re.MULTILINE,
)


def blocks(page: str, language: str) -> list[tuple[str, str]]:
    """(marker, code) of every fenced block of ``language`` on ``page``."""
    text = (REPO / page).read_text()
    return [
        (match["marker"] or "", match["code"])
        for match in BLOCK.finditer(text)
        if match["language"] == language
    ]


def pool_problems(databases: dict[str, Any]) -> list[str]:
    return [
        str(problem)
        for alias, vendor, entry in pooled_entries(databases)
        for problem in inspect_pool_options(alias, vendor, entry).problems
        if problem.severity != "info"  # I001: pool options a URL helper left in OPTIONS
    ]


@pytest.mark.parametrize("page", PAGES)
def test_python_blocks_run_and_their_databases_are_valid(page: str, restore_hooks) -> None:
    namespace: dict[str, Any] = {
        # What a fragment such as DATABASES["default"]["POOL"].update(...) extends.
        "DATABASES": {
            "default": {"ENGINE": "django_dataflow.backends.postgresql", "NAME": "app", "POOL": {}}
        },
    }
    for marker, code in blocks(page, "python"):
        compiled = compile(code, page, "exec")
        if marker in ("before", "queries"):  # "queries": needs a database to run
            continue
        if marker.startswith("excerpt "):
            assert_excerpt(code, marker.removeprefix("excerpt "))
            continue
        exec(compiled, namespace)
        assert pool_problems(namespace["DATABASES"]) == [], code


def assert_excerpt(code: str, path: str) -> None:
    source = (REPO / path).read_text().splitlines()
    position = 0
    for line in code.splitlines():
        if not line.strip():
            continue
        try:
            position = source.index(line, position) + 1
        except ValueError:
            pytest.fail(f"{line!r} is not in {path} (after line {position})")


def test_the_readme_installs_first_and_gives_the_checkouts_two_commands() -> None:
    commands = [code.strip() for _marker, code in blocks("README.md", "bash")]
    assert commands[0].startswith("python -m pip install")
    assert commands[-2:] == ["bin/demo", "bin/test"]


def test_the_readme_links_work_on_the_package_index() -> None:
    # On the package page a relative link (docs/...) leads nowhere.
    links = re.findall(r"\]\(([^)]+)\)", (REPO / "README.md").read_text())
    assert links
    assert [link for link in links if not link.startswith("https://")] == []


def test_every_page_is_in_the_navigation_and_every_entry_exists() -> None:
    nav = set(re.findall(r":\s*([\w-]+\.md)\s*$", (REPO / "mkdocs.yml").read_text(), re.M))
    pages = {path.name for path in (REPO / "docs").glob("*.md")}
    assert nav == pages
