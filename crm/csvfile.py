"""Reading the CSV files people really have: encodings, delimiters, preambles, bad bytes.

`inspect()` works out how to read a file (encoding, delimiter, where the header is) or
raises InputUnusable with one sentence; `iter_rows()` then streams the data rows. A file
is bytes (an upload) or a Path (the command line); a Path is read in blocks, never whole,
so a file of a million rows costs the memory of one block. Nothing here touches the
database.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import charset_normalizer

from crm.errors import InputUnusable
from crm.imports.aliases import header_key
from crm.mapping import KNOWN_HEADER_KEYS

Source = bytes | Path

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1")
ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 (little-endian)",
    "utf-16-be": "UTF-16 (big-endian)",
    "cp1252": "Windows-1252",
    "latin-1": "Latin-1",
}
MAX_PREAMBLE_LINES = 30
MAX_FIELD_CHARS = 10_000
SAMPLE_BYTES = 256 * 1024  # the head of the file that delimiter and header detection read
BLOCK_BYTES = 1024 * 1024
DETECT_BYTES = 64 * 1024  # the head charset-normalizer reads when the file is not UTF-8
MIN_GUESS_BYTES = 32  # non-ASCII bytes it needs in that head before its guess counts
# Single-byte code pages of Latin-script text: a file one of them reads plausibly is read
# as Windows-1252, else Latin-1 (detect_encoding).
_WESTERN = frozenset(
    codecs.lookup(name).name
    for name in (
        *("ascii", "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "hp-roman8"),
        *(f"iso8859-{n}" for n in (1, 2, 3, 4, 9, 10, 13, 14, 15, 16)),
        *("mac-roman", "mac-latin2", "mac-iceland", "mac-turkish"),
        *("cp437", "cp775", "cp850", "cp852", "cp857", "cp858", "cp860", "cp861", "cp863"),
        *("cp865",),
    )
)

# Signatures of files that are not text even if they are named .csv.
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a zip archive (an .xlsx workbook is one); save it as CSV first",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls); save it as CSV first",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
    b"SQLite format 3": "an SQLite database",
}
_NEWLINES = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class FileShape:
    """How to read a file: what inspect() found, changeable by the person importing."""

    encoding: str
    delimiter: str
    header_line: int  # 0-based index of the header among the file's lines
    headers: tuple[str, ...]
    data_rows: int | None  # rows after the header holding a value; None when not counted

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))

    @property
    def encoding_name(self) -> str:
        return ENCODING_NAMES.get(self.encoding, self.encoding)


# --- bytes ------------------------------------------------------------------------------


def size_of(source: Source) -> int:
    """The file's size in bytes, without reading it."""
    if isinstance(source, bytes | bytearray):
        return len(source)
    try:
        return source.stat().st_size
    except OSError as error:
        raise InputUnusable(f"The file {source} cannot be read ({error.strerror}).") from None


def _open_binary(source: Source) -> IO[bytes]:
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source)
    try:
        return open(source, "rb")
    except OSError as error:
        raise InputUnusable(f"The file {source} cannot be read ({error.strerror}).") from None


def _head(source: Source, size: int = SAMPLE_BYTES) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source[:size])
    with _open_binary(source) as stream:
        return stream.read(size)


def _blocks(source: Source) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray):
        view = memoryview(source)
        for start in range(0, len(view), BLOCK_BYTES):
            yield bytes(view[start : start + BLOCK_BYTES])
        return
    with _open_binary(source) as stream:
        while block := stream.read(BLOCK_BYTES):
            yield block


def _undecodable_at(source: Source, encoding: str) -> int | None:
    """The offset of the first byte the encoding cannot read, None if the whole file reads.

    Read block by block, so a big file costs one block of memory.
    """
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = 0
    try:
        for block in _blocks(source):
            decoder.decode(block)
            offset += len(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        return max(0, offset + error.start)
    return None


def _decodes(source: Source, encoding: str) -> bool:
    return _undecodable_at(source, encoding) is None


def detect_encoding(source: Source) -> str:
    """The encoding of the file: BOMs first, then UTF-8 (the whole file, in blocks), and only
    when that fails charset-normalizer on the head of the file.

    Text a Western code page reads plausibly (and text no guess fits) is Windows-1252 when
    the whole file reads in it, else Latin-1, which reads any byte: the spreadsheet and mail
    exports these files come from write one of them.
    """
    head = _head(source, 4000)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if len(head) >= 4 and head.count(b"\x00") > len(head) // 4:
        # UTF-16 without a BOM: every other byte of ASCII text is zero.
        return "utf-16-le" if head[1:2] == b"\x00" else "utf-16-be"
    if _decodes(source, "utf-8"):
        return "utf-8"
    guess = _non_western(_head(source, DETECT_BYTES))
    if guess is not None and _decodes(source, guess):
        return guess
    if _decodes(source, "cp1252"):
        return "cp1252"
    return "latin-1"  # decodes any byte; cp1252 leaves five bytes undefined


def _non_western(sample: bytes) -> str | None:
    """charset-normalizer's best reading of the sample, unless a Western encoding reads it
    plausibly too (then it is one: a short sample fits many code pages)."""
    if sum(1 for byte in sample if byte > 0x7F) < MIN_GUESS_BYTES:
        return None  # too little to tell a script by: a few accents of Western text
    matches = charset_normalizer.from_bytes(sample)
    for match in matches:
        for name in (match.encoding, *match.could_be_from_charset):
            if codecs.lookup(name).name in _WESTERN:
                return None
    best = matches.best()
    return codecs.lookup(best.encoding).name if best is not None else None


def _check_encoding(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name if encoding not in ENCODING_NAMES else encoding
    except LookupError:
        raise InputUnusable(f"{encoding!r} is not an encoding this import knows.") from None


def _decode_head(head: bytes, encoding: str, whole: bool) -> str:
    """The head of the file as text; a character cut at the end of the sample is dropped."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        text = decoder.decode(head, final=whole)
    except UnicodeDecodeError as error:
        raise InputUnusable(
            f"The file cannot be read as {ENCODING_NAMES.get(encoding, encoding)} "
            f"(byte {error.start} is not valid there); choose another encoding."
        ) from None
    return text.lstrip("\ufeff")


def decode(data: bytes, encoding: str) -> str:
    """The whole of a small file as text, or one sentence about the bytes that do not fit."""
    return _decode_head(data, encoding, whole=True)


def _check_not_binary(head: bytes) -> None:
    for signature, what in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise InputUnusable(f"This file is {what}, not a CSV file.")


def _looks_binary(text: str) -> bool:
    sample = text[:4000]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\r\n\t")
    return "\x00" in sample or controls > len(sample) // 20


# --- lines and cells --------------------------------------------------------------------


def _split(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return line.split(delimiter)


def _lines(text: str, whole: bool) -> list[str]:
    """Physical lines (split at CR, LF or CRLF only, like the CSV reader), the cut one off."""
    lines = _NEWLINES.split(text)
    if not whole and len(lines) > 1:
        lines.pop()
    return lines[: MAX_PREAMBLE_LINES + 50]


def detect_delimiter(lines: list[str]) -> str:
    """The delimiter giving the most lines with the same number (>1) of fields."""
    best, best_score = ",", (-1, -1)
    sample = [line for line in lines if line.strip()][:50]
    for delimiter in DELIMITERS:
        counts = [len(_split(line, delimiter)) for line in sample]
        if not counts or max(counts) < 2:
            continue
        consistent = max(counts.count(n) for n in set(counts) if n > 1)
        score = (consistent, max(counts))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def detect_header_line(lines: list[str], delimiter: str, known: set[str] | None = None) -> int:
    """Skip notes before the header: the first line whose cells look like known headers,
    or else the first line that begins the run of lines with the common field count."""
    known = KNOWN_HEADER_KEYS if known is None else known
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


# --- the reader -------------------------------------------------------------------------


class CsvRows:
    """Streams (line, cells, problem) for the data rows of a file; a context manager.

    line is the 1-based line of the file where the row starts; cells is None and problem
    a sentence when the row itself is not valid CSV (the reader carries on with the next
    one). Blank rows are skipped. Problems that spoil the whole file (bytes the encoding
    cannot read, a quote never closed) raise InputUnusable: nothing after them can be
    trusted.
    """

    def __init__(self, source: Source, shape: FileShape) -> None:
        self.shape = shape
        self._binary = _open_binary(source)
        self._text = io.TextIOWrapper(self._binary, encoding=shape.encoding, newline="")
        self._reader = csv.reader(self._text, delimiter=shape.delimiter, strict=True)
        self.headers: list[str] = []

    def __enter__(self) -> CsvRows:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._text.close()

    @property
    def bytes_read(self) -> int:
        """How far into the file the reader is (ahead by at most a buffer)."""
        try:
            return self._binary.tell()
        except (OSError, ValueError):
            return 0

    def _unusable_decode(self, line: int) -> InputUnusable:
        name = ENCODING_NAMES.get(self.shape.encoding, self.shape.encoding)
        return InputUnusable(
            f"The file cannot be read as {name} (line {line} has bytes that are not "
            f"{name}); choose another encoding."
        )

    def read_header(self) -> list[str]:
        """Skip the preamble and read the header row."""
        try:
            for skipped in range(self.shape.header_line):
                if not self._text.readline():
                    raise InputUnusable(
                        f"The file has only {skipped} lines, so line {self.shape.header_line + 1} "
                        "cannot be its header."
                    )
            headers = next(self._reader, None)
        except UnicodeDecodeError:
            raise self._unusable_decode(self.shape.header_line + 1) from None
        except csv.Error as error:
            raise InputUnusable(
                f"The header row is not valid CSV ({_csv_problem(error)})."
            ) from None
        if not headers or not any(cell.strip() for cell in headers):
            raise InputUnusable("The file has no header row.")
        if headers[0].startswith("\ufeff"):
            headers[0] = headers[0][1:]
        self.headers = [cell.strip() for cell in headers]
        return self.headers

    def __iter__(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        reader = self._reader
        offset = self.shape.header_line
        while True:
            start = offset + reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise self._unusable_decode(start) from None
            except csv.Error as error:
                message = str(error)
                if "unexpected end of data" in message:
                    raise InputUnusable(
                        f"The file is not valid CSV: a quoted value that starts on line {start} "
                        "is never closed."
                    ) from None
                if "field larger than field limit" in message:
                    raise InputUnusable(
                        f"The file is not valid CSV: line {start} holds a value far too long "
                        "for a cell (is a quote left open?)."
                    ) from None
                yield start, None, f"The row is not valid CSV ({_csv_problem(error)})."
                continue
            if row and "".join(row).strip():
                yield start, row, None


def _csv_problem(error: csv.Error) -> str:
    message = str(error)
    if "unexpected end of data" in message or "EOF" in message:
        return "a quoted value is never closed"
    if "expected after" in message:
        return "a quote is followed by more text before the next delimiter"
    return message


# --- the whole file ---------------------------------------------------------------------


def inspect(
    source: Source,
    *,
    known_headers: set[str] | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_line: int | None = None,
    count_rows: bool = True,
) -> FileShape:
    """Work out how to read the file, or say in one sentence why it cannot be read.

    count_rows=True reads the whole file (the count is shown before an import and every
    file-level fault is found now); False reads only its head, for an import that will
    stream the file anyway and stop at the first such fault.
    """
    if size_of(source) == 0:
        raise InputUnusable("The file is empty.")
    head = _head(source)
    whole = len(head) == size_of(source)
    if not head.strip():
        raise InputUnusable("The file is empty (it holds only blank space).")
    _check_not_binary(head)
    if encoding:
        encoding = _check_encoding(encoding)
        proven = encoding == "latin-1"  # reads any byte
    else:
        encoding = detect_encoding(source)
        # Detection read the whole file, except where a BOM or the zero bytes told.
        proven = encoding not in {"utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"}
    if not proven:
        # Check the whole file now, before anything is written, rather than fail part-way
        # through an import.
        bad_at = _undecodable_at(source, encoding)
        if bad_at is not None:
            raise InputUnusable(
                f"The file cannot be read as {ENCODING_NAMES.get(encoding, encoding)} "
                f"(byte {bad_at:,} is not valid there); choose another encoding."
            )
    text = _decode_head(head, encoding, whole)
    if _looks_binary(text):
        raise InputUnusable("This file holds binary data, not text; it is not a CSV file.")
    if not text.strip():
        raise InputUnusable("The file is empty (it holds only blank space).")
    lines = _lines(text, whole)
    if delimiter is not None and delimiter not in DELIMITERS:
        raise InputUnusable(
            f"The delimiter must be a comma, a semicolon or a tab, not {delimiter!r}."
        )
    delimiter = delimiter or detect_delimiter(lines)
    if header_line is None:
        header_line = detect_header_line(lines, delimiter, known_headers)
    elif header_line < 0:
        raise InputUnusable("The header line must be 1 or later.")
    shape = FileShape(encoding, delimiter, header_line, (), None)
    with CsvRows(source, shape) as rows:
        headers = rows.read_header()
        if len(headers) < 2 and delimiter not in text:
            raise InputUnusable(
                "The file does not look like CSV: no comma, semicolon or tab separates its columns."
            )
        data_rows: int | None = None
        if count_rows:
            data_rows = sum(1 for _ in rows)
            if data_rows == 0:
                raise InputUnusable("The file has a header row but no data rows.")
    return FileShape(
        encoding=encoding,
        delimiter=delimiter,
        header_line=header_line,
        headers=tuple(headers),
        data_rows=data_rows,
    )
