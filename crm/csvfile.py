"""Reading the CSV files people really have: encodings, delimiters, preambles, bad bytes.

`inspect()` looks at the whole file once and says how to read it (encoding, delimiter,
where the header is) or raises InputUnusable with one sentence. `read_rows()` then
streams the data rows. Nothing here touches the database.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from crm.errors import InputUnusable

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "cp1252", "latin-1")
MAX_PREAMBLE_LINES = 30
MAX_FIELD_CHARS = 10_000

# Signatures of files that are not text even if they are named .csv.
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a zip archive (an .xlsx workbook is one); save it as CSV first",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls); save it as CSV first",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "a gzip archive",
}


@dataclass(frozen=True)
class FileShape:
    """How to read a file: what inspect() found, changeable by the person importing."""

    encoding: str
    delimiter: str
    header_line: int  # 0-based index of the header among the file's lines
    headers: tuple[str, ...]
    data_rows: int  # rows after the header that hold at least one value

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))


def detect_encoding(data: bytes) -> str:
    """The encoding of the bytes: BOMs first, then UTF-8, then Windows-1252 / Latin-1."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = data[:4000]
    if len(sample) >= 4 and sample.count(b"\x00") > len(sample) // 4:
        # UTF-16 without a BOM: every other byte of ASCII text is zero.
        return "utf-16-le" if sample[1:2] == b"\x00" else "utf-16-be"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"  # decodes any byte; cp1252 leaves five bytes undefined


def decode(data: bytes, encoding: str) -> str:
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        position = getattr(error, "start", None)
        where = f" at byte {position}" if position is not None else ""
        raise InputUnusable(
            f"The file cannot be read as {encoding}{where}; choose another encoding."
        ) from None
    return text.lstrip("\ufeff")


def _check_not_binary(data: bytes) -> None:
    for signature, what in _BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise InputUnusable(f"This file is {what}, not a CSV file.")


def _looks_binary(text: str) -> bool:
    sample = text[:4000]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t")
    return "\x00" in sample or controls > len(sample) // 20


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return line.split(delimiter)


def _nonblank_lines(text: str) -> list[str]:
    return text.splitlines()[: MAX_PREAMBLE_LINES + 50]


def detect_delimiter(lines: list[str]) -> str:
    """The delimiter giving the most lines with the same number (>1) of fields."""
    best, best_score = ",", (-1, -1)
    sample = [line for line in lines if line.strip()][:50]
    for delimiter in DELIMITERS:
        counts = [len(_split(line, delimiter)) for line in sample]
        if not counts:
            continue
        widest = max(counts)
        if widest < 2:
            continue
        consistent = max(counts.count(n) for n in set(counts) if n > 1) if widest > 1 else 0
        score = (consistent, widest)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def detect_header_line(lines: list[str], delimiter: str, known: set[str]) -> int:
    """Skip notes before the header: the first line whose cells look like known headers,
    or else the first line that begins the run of lines with the common field count."""
    from crm.mapping import header_key

    for index, line in enumerate(lines[:MAX_PREAMBLE_LINES]):
        cells = [header_key(cell) for cell in _split(line, delimiter)]
        if len(cells) >= 2 and sum(1 for cell in cells if cell in known) >= 2:
            return index
    counts = [len(_split(line, delimiter)) if line.strip() else 0 for line in lines]
    widths = [n for n in counts if n > 1]
    if not widths:
        return 0
    common = max(set(widths), key=widths.count)
    for index, count in enumerate(counts[:MAX_PREAMBLE_LINES]):
        if count == common:
            return index
    return 0


def _line_offset(text: str, line_index: int) -> int:
    """Character offset where the given line starts."""
    offset = 0
    for _ in range(line_index):
        newline = text.find("\n", offset)
        if newline < 0:
            return len(text)
        offset = newline + 1
    return offset


def _reader(text: str, shape_delimiter: str, header_line: int) -> Iterator[list[str]]:
    stream = io.StringIO(text[_line_offset(text, header_line) :], newline="")
    return csv.reader(stream, delimiter=shape_delimiter, strict=True)


def inspect(
    data: bytes,
    *,
    known_headers: set[str],
    encoding: str | None = None,
    delimiter: str | None = None,
    header_line: int | None = None,
) -> FileShape:
    """Work out how to read the file, or say in one sentence why it cannot be read."""
    if not data or not data.strip():
        raise InputUnusable("The file is empty.")
    _check_not_binary(data)
    encoding = encoding or detect_encoding(data)
    text = decode(data, encoding)
    if _looks_binary(text):
        raise InputUnusable("This file holds binary data, not text; it is not a CSV file.")
    lines = _nonblank_lines(text)
    delimiter = delimiter or detect_delimiter(lines)
    if header_line is None:
        header_line = detect_header_line(lines, delimiter, known_headers)
    rows = _reader(text, delimiter, header_line)
    try:
        headers = next(rows, None)
        if not headers or not any(cell.strip() for cell in headers):
            raise InputUnusable("The file has no header row.")
        data_rows = 0
        for row in rows:
            if any(cell.strip() for cell in row):
                data_rows += 1
    except csv.Error as error:
        raise InputUnusable(f"The file is not valid CSV: {_csv_problem(error, rows)}.") from None
    if len(headers) < 2 and delimiter not in text:
        raise InputUnusable(
            "The file does not look like CSV: no comma, semicolon or tab separates its columns."
        )
    if data_rows == 0:
        raise InputUnusable("The file has a header row but no data rows.")
    return FileShape(
        encoding=encoding,
        delimiter=delimiter,
        header_line=header_line,
        headers=tuple(cell.strip() for cell in headers),
        data_rows=data_rows,
    )


def _csv_problem(error: csv.Error, rows: object) -> str:
    line = getattr(rows, "line_num", None)
    message = str(error)
    if "unexpected end of data" in message or "EOF" in message:
        message = "a quoted value is never closed"
    message = re.sub(r"^field larger than field limit.*", "a value is far too long", message)
    return f"{message} (near line {line})" if line else message


def read_rows(data: bytes, shape: FileShape) -> Iterator[tuple[int, list[str]]]:
    """The data rows as (line number in the file, cells), skipping blank lines."""
    text = decode(data, shape.encoding)
    rows = _reader(text, shape.delimiter, shape.header_line)
    next(rows, None)
    for row in rows:
        if any(cell.strip() for cell in row):
            yield shape.header_line + rows.line_num, row
