"""Reading real-world CSV files: encodings, delimiters, preambles and one-sentence refusals."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crm import csvfile
from crm.csvfile import CsvRows, FileShape
from crm.errors import InputUnusable

HEADER = ["First Name", "Last Name", "Email", "Company"]
LINKEDIN = (
    "Notes:\r\n"
    '"When exporting your connection data, you may notice that some of the email addresses are '
    "missing. You will only see email addresses for connections who have allowed their "
    "connections to see or download their email address using this setting "
    "https://www.linkedin.com/psettings/privacy/email. To learn more, visit "
    'https://www.linkedin.com/help/linkedin/answer/261"\r\n'
    "\r\n"
    "First Name,Last Name,URL,Email Address,Company,Position,Connected On\r\n"
    "Ana,Lima,https://www.linkedin.com/in/ana-lima,,Acme,Engineer,12 Mar 2024\r\n"
    'Bo,Berg,https://www.linkedin.com/in/bo-berg,bo@example.com,"Beta, Inc.",PM,01 Jan 2025\r\n'
)


def table(rows: list[list[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def rows_of(
    source: bytes | Path, shape: FileShape
) -> list[tuple[int, list[str] | None, str | None]]:
    with CsvRows(source, shape) as rows:
        rows.read_header()
        return list(rows)


def refusal(data: bytes, **choices: object) -> str:
    with pytest.raises(InputUnusable) as caught:
        csvfile.inspect(data, **choices)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and message.endswith("."), message
    return message


# --- encodings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8-sig"),
        ("utf-16", "utf-16"),
        ("cp1252", "cp1252"),
    ],
)
def test_each_encoding_is_detected_and_read(encoding: str, detected: str) -> None:
    text = table([HEADER, ["Zoë", "Müller", "zoe@example.com", "€uro Straße GmbH"]])
    data = text.encode(encoding)
    shape = csvfile.inspect(data)
    assert shape.encoding == detected
    assert shape.headers == tuple(HEADER)
    assert shape.data_rows == 1
    ((line, cells, problem),) = rows_of(data, shape)
    assert (line, problem) == (2, None)
    assert cells == ["Zoë", "Müller", "zoe@example.com", "€uro Straße GmbH"]


def test_utf16_without_a_bom_and_latin1_fallback() -> None:
    text = table([HEADER, ["Zoë", "Lima", "zoe@example.com", "Acme"]])
    assert csvfile.inspect(text.encode("utf-16-le")).encoding == "utf-16-le"
    # 0x81 is undefined in Windows-1252: only Latin-1 reads it.
    data = text.encode("latin-1").replace(b"Acme", b"Ac\x81me")
    assert csvfile.inspect(data).encoding == "latin-1"


@pytest.mark.parametrize(("encoding", "detected"), [("cp1251", "cp1251"), ("shift_jis", "cp932")])
def test_a_file_in_another_script_is_detected(encoding: str, detected: str) -> None:
    """Not UTF-8 and not Western: charset-normalizer tells, where cp1252 would garble it."""
    names = {
        "cp1251": ["Иван", "Петров", "Рога и копыта"],
        "shift_jis": ["太郎", "山田", "株式会社"],
    }
    first, last, company = names[encoding]
    rows = [[f"{first}{n}", last, f"p{n}@example.com", company] for n in range(40)]
    shape = csvfile.inspect(table([HEADER, *rows]).encode(encoding))
    assert shape.encoding == detected and shape.data_rows == 40
    with CsvRows(table([HEADER, *rows]).encode(encoding), shape) as reader:
        reader.read_header()
        assert next(iter(reader))[1] == [f"{first}0", last, "p0@example.com", company]


def test_a_chosen_encoding_is_used_and_a_wrong_one_refused() -> None:
    data = table([HEADER, ["Zoë", "Lima", "zoe@example.com", "Acme"]]).encode("cp1252")
    assert csvfile.inspect(data, encoding="latin-1").encoding == "latin-1"
    message = refusal(data, encoding="utf-8")
    assert "cannot be read as UTF-8" in message and "choose another encoding" in message


def test_a_bom_never_reaches_the_first_header() -> None:
    data = codecs.BOM_UTF8 + table([HEADER, ["Ana", "Lima", "a@example.com", "X"]]).encode()
    shape = csvfile.inspect(data, encoding="utf-8")
    assert shape.headers[0] == "First Name"


# --- delimiters, preambles, rows --------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_each_delimiter_is_detected(delimiter: str) -> None:
    rows = [HEADER, ["Ana", "Lima", "ana@example.com", "Acme, Inc; Ltd"], ["Bo", "", "", "X"]]
    shape = csvfile.inspect(table(rows, delimiter).encode())
    assert shape.delimiter == delimiter
    assert shape.headers == tuple(HEADER)
    assert shape.data_rows == 2


def test_linkedin_notes_before_the_header_are_skipped() -> None:
    data = LINKEDIN.encode("utf-8")
    shape = csvfile.inspect(data)
    assert shape.header_line == 3
    assert shape.headers[:4] == ("First Name", "Last Name", "URL", "Email Address")
    assert shape.data_rows == 2
    rows = rows_of(data, shape)
    assert [line for line, _cells, _problem in rows] == [5, 6]
    assert rows[1][1] is not None and rows[1][1][4] == "Beta, Inc."


def test_a_path_is_read_the_same_as_bytes(tmp_path: Path) -> None:
    path = tmp_path / "Connections.csv"
    path.write_bytes(LINKEDIN.encode("utf-8-sig"))
    shape = csvfile.inspect(path)
    assert shape == csvfile.inspect(path.read_bytes())
    assert rows_of(path, shape) == rows_of(path.read_bytes(), shape)


def test_line_numbers_count_physical_lines_and_skip_blank_rows() -> None:
    text = 'First Name,Notes\nAna,"two\nlines"\n\n,\nBo,x\n'
    shape = csvfile.inspect(text.encode())
    assert [(line, cells) for line, cells, _ in rows_of(text.encode(), shape)] == [
        (2, ["Ana", "two\nlines"]),
        (6, ["Bo", "x"]),
    ]


def test_a_broken_quote_in_one_row_is_that_rows_problem() -> None:
    text = 'First Name,Email\nAna,a@example.com\n"Bo" Berg,b@example.com\nCy,c@example.com\n'
    shape = csvfile.inspect(text.encode())
    rows = rows_of(text.encode(), shape)
    assert [(line, cells is None) for line, cells, _ in rows] == [(2, False), (3, True), (4, False)]
    assert "quote" in (rows[1][2] or "")


def test_a_header_line_can_be_chosen() -> None:
    text = "Exported 2026-01-01\nName,Email\nAna Lima,a@example.com\n"
    assert csvfile.inspect(text.encode(), header_line=1).headers == ("Name", "Email")
    message = refusal(text.encode(), header_line=9)
    assert "cannot be its header" in message


# --- whole files refused ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"   \r\n\r\n", "empty"),
        (b"First Name,Email\r\n", "no data rows"),
        (b"First Name,Email\r\n,\r\n\r\n", "no data rows"),
        (bytes(range(256)) * 20, "binary"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100, "zip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "Excel"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
        (b'First Name,Email\r\nAna,"a@example.com\r\nBo,b@example.com\r\n', "never closed"),
        (b"just one line of text without separators", "does not look like CSV"),
    ],
)
def test_unusable_files_get_one_sentence(data: bytes, words: str) -> None:
    assert words in refusal(data)


def test_an_unknown_delimiter_or_encoding_is_refused() -> None:
    data = table([HEADER, ["Ana", "Lima", "a@example.com", "X"]]).encode()
    assert "comma, a semicolon or a tab" in refusal(data, delimiter="|")
    assert "not an encoding" in refusal(data, encoding="klingon-8")


def test_undecodable_bytes_deep_in_a_big_file_are_found_before_reading(tmp_path: Path) -> None:
    body = "Ana,Lima,ana@example.com,Acme\r\n" * 20_000  # well past the detection sample
    path = tmp_path / "big.csv"
    path.write_bytes((table([HEADER]) + body).encode() + b"Zo\xeb,Lima,z@example.com,X\r\n")
    assert csvfile.inspect(path).encoding == "cp1252"
    message = refusal(path.read_bytes(), encoding="utf-8")
    assert "byte" in message


# --- round trips ------------------------------------------------------------------------

CELL = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",), blacklist_characters="\x00", max_codepoint=0x2FFF
    ),
    max_size=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=1, max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_any_text_written_by_csv_writer_reads_back(
    rows: list[list[str]], encoding: str, delimiter: str
) -> None:
    """With the encoding and delimiter given, every cell comes back exactly as written."""
    if encoding == "cp1252":
        rows = [[cell.encode("cp1252", "ignore").decode("cp1252") for cell in r] for r in rows]
    kept = [r for r in rows if "".join(r).strip()]  # blank rows are skipped by design
    header = ["Name", "Email", "Notes"]
    data = table([header, *rows], delimiter).encode(encoding)
    shape = FileShape(encoding, delimiter, 0, tuple(header), None)
    assert [cells for _line, cells, _problem in rows_of(data, shape)] == kept


def _utf8_reading(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


PLAIN_CELL = st.text(alphabet=st.sampled_from(list("abcXYZ019 .-'@_éüß€\"\n") + [","]), max_size=15)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.lists(PLAIN_CELL, min_size=3, max_size=3), min_size=1, max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_detection_finds_how_a_file_was_written(
    rows: list[list[str]], encoding: str, delimiter: str
) -> None:
    rows = [[cell.replace(",", delimiter) for cell in r] for r in rows]
    kept = [r for r in rows if "".join(r).strip()]
    if not kept:
        return
    header = ["First Name", "Email", "Company"]
    data = table([header, *rows], delimiter).encode(encoding)
    # Windows-1252 bytes that are also valid UTF-8 ("ß€" is 0xDF 0x80, which UTF-8 reads as
    # "߀") are two readings of one file; detection takes UTF-8 first by design, so such a
    # file says nothing about whether Windows-1252 is detected.
    assume(encoding != "cp1252" or _utf8_reading(data) in (None, data.decode("cp1252")))
    shape = csvfile.inspect(data)
    assert shape.delimiter == delimiter
    assert shape.header_line == 0
    assert shape.headers == tuple(header)
    # Pure ASCII reads the same in UTF-8 and Windows-1252, so either answer is right.
    assert shape.encoding == encoding or data.decode(shape.encoding) == data.decode(encoding)
    assert [cells for _line, cells, _problem in rows_of(data, shape)] == kept
    assert shape.data_rows == len(kept)
