"""CSV that cannot attack the reader: the one rule every CSV Custos writes follows.

A spreadsheet reads a cell whose first character is ``=``, ``+``, ``-``, ``@``, a tab,
a carriage return or a line feed (or the full-width ``＝ ＋ － ＠``, which some
spreadsheets normalise) as a formula, and runs it when the file is opened (OWASP, "CSV
Injection"). Such a text cell gets a single quote in front, which spreadsheets read as
"this is text". A text cell that is a plain signed number (``-5``, ``+3.5``) is left
alone, so a negative number stays a number; values that are not text (numbers, None)
are never touched. ``neutralise`` applies the rule in Python, ``sql_neutralise`` in
PostgreSQL (for ``COPY ... TO STDOUT``), both from ``TRIGGERS`` and ``NUMBER``; the
tests hold the two to the same answers. See docs/csv.md.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable

# The first characters that make a spreadsheet read a cell as a formula.
TRIGGERS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# A plain number, ASCII digits only: an optional sign, digits, optionally a point and
# more digits. Python matches it against the whole cell, PostgreSQL between ^ and $.
NUMBER = r"[+-]?[0-9]+(\.[0-9]+)?"
PREFIX = "'"

_NUMBER = re.compile(NUMBER)


def neutralise(value):
    """``value`` as it may go into a CSV cell: text a spreadsheet would run as a formula
    gets a leading ``'``; a plain signed number, and anything that is not text, is
    returned as it is."""
    if isinstance(value, str) and value and value[0] in TRIGGERS and not _NUMBER.fullmatch(value):
        return PREFIX + value
    return value


def safe_row(values: Iterable) -> list:
    """The row with every cell neutralised (numbers and None pass through)."""
    return [neutralise(value) for value in values]


def sql_neutralise(expr: str) -> str:
    """A PostgreSQL expression giving ``neutralise(expr)`` for the text expression
    ``expr``; NULL stays NULL.

    ``ascii()`` is the code point of the first character in a UTF8 database (0 for an
    empty string): cheaper per row than a regular expression. ``expr`` appears three
    times, so pass a column, not a computation, or it is computed three times (extracts
    select their values in a subquery behind ``OFFSET 0`` for this)."""
    codes = ", ".join(str(ord(c)) for c in sorted(TRIGGERS))
    # An E'' literal reads the same whatever standard_conforming_strings says.
    number = "E'^" + NUMBER.replace("\\", "\\\\") + "$'"
    quote = "''''"  # the SQL literal holding one PREFIX
    return (
        f"CASE WHEN ascii({expr}) IN ({codes}) AND {expr} !~ {number} "
        f"THEN {quote} || {expr} ELSE {expr} END"
    )


class _Echo:
    def write(self, value):
        return value


class CsvLines:
    """Rows as CSV lines: every cell neutralised, and quoted as RFC 4180 asks.

    ``newline`` ends each line; ``"\\n"``, the default, is what PostgreSQL's COPY
    writes, so both extract paths give the same bytes. Python's writer quotes a cell
    holding a CR or LF only if that character is in its own line terminator, and an
    unquoted CR would start a new row in the reader's spreadsheet: so it always writes
    ``"\\r\\n"``, and the ending is swapped afterwards.
    """

    def __init__(self, *, newline: str = "\n"):
        self._writer = csv.writer(_Echo(), lineterminator="\r\n")
        self._newline = newline

    def line(self, values: Iterable) -> str:
        text = self._writer.writerow(safe_row(values))
        return text if self._newline == "\r\n" else text[:-2] + self._newline
