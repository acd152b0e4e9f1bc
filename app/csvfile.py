"""Reading a master-data CSV file: its encoding, its size, and nothing that
is not text, refused with a message naming the row and column.

Accepted: UTF-8 with or without a BOM (Excel's "CSV UTF-8"), and UTF-16 with
a BOM (Excel's "Unicode text"). GB18030/GBK (Excel's "CSV" on a Chinese
Windows) is refused by name, with what to do, since without a BOM it cannot
be told apart from other encodings with certainty.
"""
from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from pathlib import Path

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_ROWS = 200_000
MAX_FIELD_CHARS = 1000
MAX_COLUMNS = 50
SAVE_AS = "Save it again as \"CSV UTF-8\" and import that."


class CsvRefused(Exception):
    """Why the file cannot be imported (nothing was)."""


def read_rows(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows as {column: value}, stripped; the header must name the
    `columns` (at least the first); row 1 is the header."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CsvRefused(f"the file is {size} bytes; at most {MAX_FILE_BYTES} are imported at once. Split it.")
    text = decode(path.read_bytes())
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    try:
        for fields in _limited(reader):
            if header is None:
                header = [h.strip() for h in fields]
                _check_header(header, columns)
                continue
            if not any(f.strip() for f in fields):
                continue
            if len(fields) > len(header):
                raise CsvRefused(f"row {reader.line_num}: {len(fields)} columns, the header names {len(header)}.")
            for name, value in zip(header, fields):
                _check_field(reader.line_num, name, value)
            rows.append({k: v.strip() for k, v in zip(header, fields) if k})
            if len(rows) > MAX_ROWS:
                raise CsvRefused(f"more than {MAX_ROWS} rows; split the file.")
    except csv.Error as e:
        raise CsvRefused(f"row {reader.line_num}: not a CSV row ({e}).") from None
    if header is None:
        raise CsvRefused(f"the file is empty; the first row names the columns: {','.join(columns)}.")
    return rows


def decode(raw: bytes) -> str:
    if raw.startswith(codecs.BOM_UTF16_LE) or raw.startswith(codecs.BOM_UTF16_BE):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as e:
            raise CsvRefused(f"the file starts as UTF-16 but byte {e.start} is not UTF-16. {SAVE_AS}") from None
    if b"\x00" in raw[:4096]:
        raise CsvRefused(f"this is not a text file (it holds NUL bytes). {SAVE_AS}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        where = f"byte {e.start} (0x{raw[e.start]:02x})"
    try:
        raw.decode("gb18030")
    except UnicodeDecodeError:
        raise CsvRefused(f"this is not UTF-8 text ({where}), nor GB18030. {SAVE_AS}") from None
    raise CsvRefused(f"this is not UTF-8 ({where}): it looks like GB18030/GBK, which is not imported. {SAVE_AS}")


def _limited(reader):
    """csv's own field limit (128 KiB) would end in an error that names no
    column: lift it (the file's size is bounded), and check ours per field."""
    old = csv.field_size_limit()
    csv.field_size_limit(MAX_FILE_BYTES)
    try:
        yield from reader
    finally:
        csv.field_size_limit(old)


def _check_header(header: list[str], columns: tuple[str, ...]) -> None:
    if len(header) > MAX_COLUMNS:
        raise CsvRefused(f"row 1: {len(header)} columns; at most {MAX_COLUMNS}.")
    for i, name in enumerate(header, start=1):
        _check_field(1, f"#{i}", name)
    if columns[0] not in header:
        raise CsvRefused(f"row 1 is not a header naming the columns {','.join(columns)} "
                         f"(it has no column {columns[0]!r}).")


def _check_field(row: int, column: str, value: str) -> None:
    if len(value) > MAX_FIELD_CHARS:
        raise CsvRefused(f"row {row}, column {column}: {len(value)} characters; at most {MAX_FIELD_CHARS}.")
    for ch in value:
        if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n":
            raise CsvRefused(f"row {row}, column {column}: a control character (U+{ord(ch):04X}); "
                             f"this is not a text file. {SAVE_AS}")
