"""Plain-text building blocks shared by every table ``manage.py pool_stats`` prints.

The pools' table (``render``), the database server's sessions (``server``) and
PgBouncer's ``SHOW POOLS`` (``pgbouncer``) all line up columns and show durations the
same way. The helpers live here, in a module that imports nothing of the package, so
each of those modules uses them without importing another table's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def printable(text: str) -> str:
    """``text`` with control and format characters escaped (``\\x1b``, ``\\u202e``):
    names from settings or from another process's snapshot must not drive the terminal."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    align: str = "",
    max_width: int | None = None,
) -> str:
    """Columns padded to their widest cell. ``align`` has an ``l`` or ``r`` per column;
    by default the first column is left-aligned and the others right-aligned. Cells are
    made printable. With ``max_width``, the first column is cut short (ending in "~")
    so that the lines fit."""
    align = align or "l" + "r" * (len(headers) - 1)
    cells = [list(headers), *[[printable(str(cell)) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if max_width is not None:
        room = max_width - sum(widths[1:]) - 2 * (len(widths) - 1)
        if widths[0] > room >= len(headers[0]):
            widths[0] = room
            for row in cells:
                if len(row[0]) > room:
                    row[0] = row[0][: room - 1] + "~"
    lines = []
    for row in cells:
        parts = [
            cell.ljust(width) if side == "l" else cell.rjust(width)
            for cell, width, side in zip(row, widths, align, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def seconds(value: Any) -> str:
    """A duration in seconds, as milliseconds below one second (``"250ms"``, ``"1.25s"``)."""
    value = float(value or 0.0)
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.2f}s"
