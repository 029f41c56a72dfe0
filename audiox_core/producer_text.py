"""Producer text on its way out: CSV cells no spreadsheet runs (OWASP, "CSV Injection") and lines no terminal obeys."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Collection, Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV Injection: what a spreadsheet reads as a formula
_OBEYED = (*range(0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES = {c: _NAMED.get(chr(c), f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _OBEYED}


def spreadsheet_cell(text: str) -> str:
    """``text`` as a cell no spreadsheet runs: a leading single quote where it would start a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_table(header: Sequence[str], rows: Iterable[Sequence[object]], *, numeric: Collection[str] = ()) -> str:
    """A CSV file (the csv module's quoting, ``\\n`` line ends) in which no cell is a formula; the cells
    of the ``numeric`` columns hold our own numbers and are written as they are (a start at -0.04 s)."""
    lines = [_csv_line(header)]
    for row in rows:
        lines.append(_csv_line([_cell(name, value, name in numeric) for name, value in zip(header, row, strict=True)]))
    return "".join(lines)


def _csv_line(cells: Sequence[object]) -> str:
    """One row. The writer quotes a cell holding a character of its line terminator, so the row is
    written with ``\\r\\n`` (a CR inside a title is quoted too, and cannot start a row of its own),
    then ended with ``\\n``."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)
    return out.getvalue().removesuffix("\r\n") + "\n"


def _cell(column: str, value: object, numeric: bool) -> object:
    if not numeric:
        return spreadsheet_cell(str(value))
    assert isinstance(value, int | float) or _is_number(str(value)), f"{column}={value!r} is not a number"
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def terminal_text(text: str) -> str:
    """``text`` with every character a terminal would obey printed as its escape instead."""
    return text.translate(_ESCAPES)


class TerminalFormatter(logging.Formatter):
    """Console log lines with their messages' control characters escaped (a traceback, added after
    the message, keeps its line breaks)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return terminal_text(super().formatMessage(record))
