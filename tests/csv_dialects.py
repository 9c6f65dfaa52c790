"""CSV files as the tools people use write them: one table (the embedded penguins plus a
free-text column with commas, quotes, line breaks and non-ASCII letters), written the way
R, pandas, Excel, LibreOffice, Google Sheets and database clients write it. Each must
train with the same values. Shared by the tests (`components/example_gen/csv_dialects_test.py`, and end to end in
tests/) and the README table (rendered from this list). What is refused instead is in
`bad_inputs.py`."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable, Optional

PENGUINS = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "penguins" / "penguins.csv"
LABEL = "species"
NUMERIC = {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"}
COMMENTS = ['seen "twice", then lost', "nest A,\nnest B", "Île Torgersen – Müller's count", "plain note"]

Row = list  # of Optional[str]; None is a missing value


def table() -> tuple[list[str], list[Row]]:
    """The header and rows every dialect writes: penguins + a sparse free-text column."""
    with open(PENGUINS, newline="") as f:
        header, *rows = list(csv.reader(f))
    rows = [[value or None for value in row] for row in rows]
    for i, row in enumerate(rows):
        row.append(COMMENTS[(i // 9) % len(COMMENTS)] if i % 9 == 0 else None)
    return header + ["comment"], rows


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _minimal(value: str) -> str:
    """Quoted only when it must be (RFC 4180), as most writers do."""
    return _quote(value) if any(c in value for c in ',"\r\n') else value


def _lines(header, rows, cell: Callable, missing: str, eol: str = "\n", head_cell: Optional[Callable] = None,
           index: Optional[Callable] = None) -> str:
    head_cell = head_cell or cell
    out = [([head_cell("")] if index else []) + [head_cell(h) for h in header]]
    for i, row in enumerate(rows):
        out.append(([index(i)] if index else []) + [missing if v is None else cell(v) for v in row])
    return "".join(",".join(line) + eol for line in out)


def _r_cell(value: str) -> str:  # R's write.csv: strings quoted, numbers bare
    return value if _is_number(value) else _quote(value)


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _pandas_floats(header, rows) -> list[Row]:
    """pandas holds an integer column with missing values as float64: 181 is written 181.0."""
    out = [list(r) for r in rows]
    for j, name in enumerate(header):
        column = [r[j] for r in rows]
        if name in NUMERIC and None in column and all(v is None or v.isdigit() for v in column):
            for r in out:
                r[j] = None if r[j] is None else r[j] + ".0"
    return out


def r_write_csv(header, rows) -> bytes:
    """write.csv(df): quoted names and strings, row names as an unnamed first column, NA."""
    return _lines(header, rows, _r_cell, "NA", head_cell=_quote, index=lambda i: _quote(str(i + 1))).encode()


def readr_write_csv(header, rows) -> bytes:
    """readr::write_csv(df): no row names, quotes only when needed, NA."""
    return _lines(header, rows, _minimal, "NA").encode()


def pandas_to_csv(header, rows) -> bytes:
    """df.to_csv(path): the index as an unnamed first column, missing as empty, ints with
    missing values as floats."""
    return _lines(header, _pandas_floats(header, rows), _minimal, "", index=str).encode()


def excel_csv_utf8(header, rows) -> bytes:
    """Excel "CSV UTF-8": byte-order mark, CRLF, and formatted empty rows as `,,,`."""
    blank = "," * (len(header) - 1) + "\r\n"
    return b"\xef\xbb\xbf" + (_lines(header, rows, _minimal, "", eol="\r\n") + blank * 3).encode()


def excel_sep_hint(header, rows) -> bytes:
    """A `sep=,` first line, which tells Excel the separator (some exports add it)."""
    return ("sep=,\r\n" + _lines(header, rows, _minimal, "", eol="\r\n")).encode()


def excel_na_errors(header, rows) -> bytes:
    """Excel sheets whose missing cells hold the #N/A error value."""
    return _lines(header, rows, _minimal, "#N/A", eol="\r\n").encode()


def mac_cr(header, rows) -> bytes:
    """Classic Mac line ends (CR only), as Excel for Mac's "CSV (Macintosh)" wrote them."""
    return _lines(header, rows, _minimal, "", eol="\r").encode()


def libreoffice_quote_text(header, rows) -> bytes:
    """LibreOffice Calc, "Quote all text cells": text quoted, numbers bare."""
    return _lines(header, rows, _r_cell, "", head_cell=_quote).encode()


def google_sheets(header, rows) -> bytes:
    """Google Sheets' download as CSV: CRLF and no line end after the last row."""
    return _lines(header, rows, _minimal, "", eol="\r\n").rstrip("\r\n").encode()


def postgres_copy(header, rows) -> bytes:
    """PostgreSQL `\\copy t TO 'f.csv' CSV HEADER`: NULL as an empty unquoted field."""
    return _lines(header, rows, _minimal, "").encode()


def sqlite_csv(header, rows) -> bytes:
    """sqlite3 `.headers on` `.mode csv`: CRLF row ends."""
    return _lines(header, rows, _minimal, "", eol="\r\n").encode()


def sql_null_markers(header, rows) -> bytes:
    """SQL client exports (SQL Server Management Studio, DBeaver) writing NULL."""
    return _lines(header, rows, _minimal, "NULL").encode()


def backslash_n(header, rows) -> bytes:
    """NULL written as \\N, as MySQL's and Hive's dumps do (quotes doubled, as RFC 4180 says:
    MySQL's default backslash escaping of quotes is not RFC 4180 and is not read)."""
    return _lines(header, rows, _quote, "\\N").encode()


def trailing_blank_lines(header, rows) -> bytes:
    """Hand-edited or concatenated files ending in blank lines."""
    return (_lines(header, rows, _minimal, "") + "\n\n  \n\n").encode()


# (case, how it is written); each trains with the table's values.
DIALECTS = [
    ("R write.csv (defaults)", r_write_csv),
    ("R readr::write_csv", readr_write_csv),
    ("pandas to_csv (defaults)", pandas_to_csv),
    ("Excel CSV UTF-8 (BOM, CRLF, empty rows)", excel_csv_utf8),
    ("Excel sep=, first line", excel_sep_hint),
    ("Excel #N/A cells", excel_na_errors),
    ("Excel for Mac, CR line ends", mac_cr),
    ("LibreOffice, text quoted", libreoffice_quote_text),
    ("Google Sheets (no final line end)", google_sheets),
    ("PostgreSQL \\copy CSV HEADER", postgres_copy),
    ("sqlite3 .mode csv (CRLF)", sqlite_csv),
    ("SQL client, NULL markers", sql_null_markers),
    ("\\N for NULL (MySQL, Hive dumps)", backslash_n),
    ("trailing blank lines", trailing_blank_lines),
]


def write(case: str, path: Path) -> Path:
    writer = dict(DIALECTS)[case]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(writer(*table()))
    return path


def render_table(workdir: Path) -> str:
    """The README table: each dialect and what `kubetfx run`'s checks make of it."""
    from kubetfx.components.example_gen import csv_input

    lines = ["| file as written by | rows | label task | outcome |", "| --- | ---: | --- | --- |"]
    for case, _ in DIALECTS:
        path = write(case, workdir / "dialects" / f"{case.replace(' ', '-').replace('/', '-')}.csv")
        try:
            csv_input.check(str(path), LABEL)
            rows = len(csv_input.read_column(str(path), LABEL))
            outcome = f"| {rows} | {csv_input.infer_task(str(path), LABEL)} | accepted |"
        except csv_input.InputError as err:
            outcome = f"| – | – | refused: {str(err).replace(str(path.parent), '…')} |"
        lines.append(f"| {case.replace('|', chr(92) + '|')} {outcome}")
    return "\n".join(lines) + "\n"
