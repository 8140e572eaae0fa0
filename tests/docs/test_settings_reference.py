"""docs/settings.md cannot drift: its tables are the schema's, rendered
(``python -m tests.docs.settings_reference`` writes them), and every check id it names
exists."""

from __future__ import annotations

import re
from pathlib import Path

from django_dataflow import conf
from tests.docs import settings_reference

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"


def test_the_tables_are_the_schemas():
    text = settings_reference.PAGE.read_text()
    assert set(
        settings_reference.SECTION.findall(text)
        and [m["name"] for m in settings_reference.SECTION.finditer(text)]
    ) == set(settings_reference.TABLES)
    assert text == settings_reference.render(text), (
        "docs/settings.md differs from the schema: run python -m tests.docs.settings_reference"
    )


def test_every_dataflow_setting_is_in_the_reference():
    names = {
        value
        for value in vars(conf).values()
        if isinstance(value, str) and re.fullmatch(r"DATAFLOW_[A-Z_]+", value)
    }
    assert names == set(settings_reference.DATAFLOW_SETTINGS)


def test_every_check_id_named_is_documented():
    text = settings_reference.PAGE.read_text()
    documented = (DOCS / "checks.md").read_text() + (DOCS / "routing.md").read_text()
    named = set(re.findall(r"\b([EWI]\d{3})\b", text))
    for first, last in re.findall(r"\b([EW]\d{3})-([EW]\d{3})\b", text):
        named |= {first, last}
    missing = sorted(check for check in named if f"dataflow.{check}" not in documented)
    assert not missing
