"""Every CSV Slipway writes goes through :func:`csv_write`: no cell reaches a spreadsheet as a formula.

A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is what Excel, LibreOffice
and Google Sheets would evaluate (``=HYPERLINK(...)``, ``@SUM(...)``, ``-2+3|cmd``), so it is written with a
leading ``'``, which spreadsheets show as text, and the csv module quotes it when it holds a delimiter.
A plain number — ``-12.50``, ``+3``, ``1e5`` is not one — is written as it is (OWASP's advice), because
a quoted or prefixed amount becomes text that a column sum skips.
"""
import csv
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_cell(value: Any) -> Any:
    """``value`` as a cell that cannot run: numbers as they are, formula-like text behind a ``'``."""
    if value is None:
        return ""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_write(file: TextIO, rows: Iterable[Iterable[Any]]) -> None:
    """Write ``rows`` (the header first) to ``file`` as CSV with CRLF line ends, every cell neutralised."""
    csv.writer(file, lineterminator="\r\n").writerows([csv_cell(value) for value in row] for row in rows)
