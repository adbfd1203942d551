"""Streaming CSV reading and per-type value parsing shared by every import."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.utils import timezone

from .models import FieldType

# How many errors an import reports before it stops reading.
MAX_ERRORS = 20
# The longest text a cell may hold, and a category value (as in a field's allowed values):
# a longer cell is a broken file or an attempt to fill the database, not data.
MAX_TEXT_CHARS = 10_000
MAX_CATEGORY_CHARS = 200

NOT_UTF8 = "the row holds bytes that are not UTF-8"
HOLDS_NUL = "the row holds a NUL byte (0x00): the file is binary or damaged, not CSV text"


@dataclass(frozen=True)
class RowError:
    """One reason a file is rejected. ``row`` counts data rows from 1; 0 is the header."""

    row: int
    column: str | None
    message: str
    line: int | None = None

    def as_dict(self) -> dict:
        return {"row": self.row, "line": self.line, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = "header" if self.row == 0 else f"row {self.row}"
        if self.line and self.row:
            where += f" (line {self.line})"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class ImportRejected(Exception):
    """The file was rejected as a whole; nothing was written."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors[:5]))


class HashingReader(io.RawIOBase):
    """Wraps a binary stream and computes its SHA-256 as it is read."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._raw.read(len(buffer))
        if not data:
            return 0
        self.sha256.update(data)
        self.bytes_read += len(data)
        buffer[: len(data)] = data
        return len(data)


def drain(reader: HashingReader) -> None:
    """Read what is left so the checksum covers the whole file."""
    while reader.read(1 << 20):
        pass


def open_csv(binary) -> tuple[HashingReader, Iterator[list[str]], Callable[[], int]]:
    """A CSV reader over a binary stream, decoded as UTF-8 without trusting it.

    Bytes that are not UTF-8 are kept as surrogates so the row that holds them can be
    named (``has_bad_bytes``) instead of failing somewhere in a decoding buffer.
    Returns the hashing reader, the row iterator and a function giving the current line.
    """
    hashing = HashingReader(binary)
    text = io.TextIOWrapper(
        io.BufferedReader(hashing, buffer_size=1 << 20),
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )
    reader = csv.reader(text, strict=True)
    return hashing, reader, lambda: reader.line_num


def has_bad_bytes(row: list[str]) -> bool:
    joined = "".join(row)
    if joined.isascii():
        return False
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def row_problem(row: list[str]) -> str | None:
    """Why a row cannot be text at all (bytes that are not UTF-8, a NUL), or None.

    PostgreSQL text and JSON cannot hold a NUL, so it is refused here, with the row,
    rather than by the database in the middle of a load.
    """
    joined = "".join(row)
    if not joined.isascii() and has_bad_bytes(row):
        return NOT_UTF8
    if "\x00" in joined:
        return HOLDS_NUL
    return None


def read_header(rows: Iterator[list[str]]) -> list[str]:
    try:
        header = next(rows, None)
    except csv.Error as exc:
        raise ImportRejected([RowError(0, None, f"not a readable CSV file: {exc}")]) from exc
    if header is None or not any(cell.strip() for cell in header):
        raise ImportRejected([RowError(0, None, "the file is empty: a header row is required")])
    problem = row_problem(header)
    if problem:
        raise ImportRejected([RowError(0, None, problem.replace("the row", "the header"))])
    header = [cell.strip() for cell in header]
    errors = []
    seen = set()
    for name in header:
        if not name:
            errors.append(RowError(0, None, "a column has no name"))
        elif len(name) > MAX_CATEGORY_CHARS:
            errors.append(RowError(0, None, f"a column name is longer than {MAX_CATEGORY_CHARS}"))
        elif name in seen:
            errors.append(RowError(0, name, "duplicate column in the header"))
        seen.add(name)
    if errors:
        raise ImportRejected(errors)
    return header


# --- value parsers: raw text -> JSON-ready value, or ValueError with the reason --------


def _integer(raw: str) -> int:
    text = raw.strip()
    if "_" in text:
        raise ValueError
    return int(text)


def _decimal(raw: str) -> float:
    text = raw.strip()
    if "_" in text:
        raise ValueError
    value = float(text)
    if not math.isfinite(value):
        raise ValueError
    return value


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _boolean(raw: str) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError


def _date(raw: str) -> str:
    return datetime.date.fromisoformat(raw.strip()).isoformat()


def _datetime(raw: str) -> str:
    value = datetime.datetime.fromisoformat(raw.strip())
    if timezone.is_naive(value):
        # A time without an offset is read in the organisation's time zone.
        value = timezone.make_aware(value)
    return value.isoformat()


_EXPECTED = {
    FieldType.INTEGER: "a whole number",
    FieldType.DECIMAL: "a number",
    FieldType.BOOLEAN: "true or false",
    FieldType.DATE: "a date (YYYY-MM-DD)",
    FieldType.DATETIME: "a date and time (ISO 8601)",
}
_PARSERS: dict[str, Callable[[str], object]] = {
    FieldType.INTEGER: _integer,
    FieldType.DECIMAL: _decimal,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.DATETIME: _datetime,
}


def value_parser(field_type: str, allowed: list[str]) -> Callable[[str], object] | None:
    """A function that turns one cell into a stored value or raises ValueError(reason).

    An empty cell is a missing value (None) for every type. Free text needs no parsing:
    for it the answer is None, and the cell is stored as it is.
    """
    if field_type == FieldType.CATEGORY and allowed:
        allowed_set = frozenset(allowed)
        listing = ", ".join(allowed[:10]) + (" …" if len(allowed) > 10 else "")

        def parse_category(raw: str):
            if raw == "" or raw in allowed_set:
                return raw or None
            raise ValueError(f"{_quote(raw)} is not one of the allowed values: {listing}")

        return parse_category
    if field_type in (FieldType.STRING, FieldType.CATEGORY):
        return None  # text is stored as it is; the caller skips empty cells
    parse = _PARSERS[field_type]
    expected = _EXPECTED[field_type]

    def parse_typed(raw: str):
        if raw == "" or raw.isspace():
            return None
        try:
            return parse(raw)
        except (ValueError, OverflowError):
            raise ValueError(f"{_quote(raw)} is not {expected}") from None

    return parse_typed


def _quote(raw: str) -> str:
    shown = raw if len(raw) <= 40 else raw[:40] + "…"
    return repr(shown)
