"""Bad inputs a user may hand `kubetfx run`, and the message each gets. Shared by the tests
(which prove each message) and the README table (rendered from this list)."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pyarrow as pa

HEADER = "species,island,bill_length_mm\n"
ROWS = "Adelie,Torgersen,39.1\nGentoo,Biscoe,47.5\n"


def _write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return path


def _dangling_link(path: Path, target: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path.parent / target)
    return path


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)  # nobody writes to it: opening it to read would block forever
    return path


def _labels(path: Path, counts: dict) -> Path:
    """A table whose label has these classes, each that many times."""
    rows = "".join(f"{name},Dream,{40 + i % 7}.5\n" for name, count in counts.items() for i in range(count))
    return _write(path, HEADER + rows)


def _rare_in_train(path: Path) -> Path:
    """5 Chinstrap rows (enough in the whole table), 2 of which ExampleGen's hash puts in
    the train split (4:1:1 train/eval/test buckets; the bill lengths pick the hashes)."""
    rows = "".join(f"{name},{'Biscoe' if name == 'Chinstrap' else 'Dream'},"
                   f"{(42 if name == 'Chinstrap' else 40) + i % 7}.5\n"
                   for name, count in {"Adelie": 40, "Gentoo": 30, "Chinstrap": 5}.items() for i in range(count))
    return _write(path, HEADER + rows)


# (case, how to make it under a folder -> data path, label, expected message fragment)
CASES = [
    ("missing path", lambda d: d / "nowhere.csv", "species", "does not exist"),
    ("empty file", lambda d: _write(d / "empty.csv", ""), "species", "is empty (0 bytes)"),
    ("header only", lambda d: _write(d / "header.csv", HEADER), "species", "has a header but no data rows"),
    ("label column absent", lambda d: _write(d / "ok.csv", HEADER + ROWS), "sex", "label column 'sex' is not in"),
    ("label never filled", lambda d: _write(d / "nolabel.csv", HEADER + ",Dream,40.1\n,Biscoe,41.0\n"), "species",
     "has no values"),
    ("not UTF-8", lambda d: _write(d / "latin1.csv", (HEADER + "Adelie,Torgersen,39.1\nGentoo,Bisc\xf6e,47.5\n").encode("latin-1")),
     "species", "is not UTF-8"),
    ("UTF-16 (Excel 'Unicode text')", lambda d: _write(d / "unicode.csv", (HEADER + ROWS).replace(",", "\t").encode("utf-16")),
     "species", "is UTF-16-encoded"),
    ("semicolon-separated", lambda d: _write(d / "semi.csv", HEADER.replace(",", ";") + ROWS.replace(",", ";")), "species",
     "separates columns with semicolons"),
    ("tab-separated", lambda d: _write(d / "tabs.csv", (HEADER + ROWS).replace(",", "\t")), "species",
     "separates columns with tabs"),
    ("Excel 'sep=;' first line", lambda d: _write(d / "hint.csv", "sep=;\r\n" + (HEADER + ROWS).replace(",", ";")),
     "species", "declares the separator ';'"),
    ("duplicate column names", lambda d: _write(d / "dup.csv", "species,island,island\nAdelie,Dream,Biscoe\n"), "species",
     "duplicate column names in its header: 'island'"),
    ("unnamed column", lambda d: _write(d / "unnamed.csv", "species,,island\nAdelie,1,Dream\n"), "species",
     "column 2 of the header has no name"),
    ("mixed delimiters", lambda d: _write(d / "mixed.csv", HEADER + ROWS + "Chinstrap;Dream;46.5\nAdelie,Dream,38.2,extra\n"),
     "species", "is not a consistent CSV file"),
    ("not a CSV (gzip)", lambda d: _write(d / "data.csv", gzip.compress((HEADER + ROWS).encode())), "species",
     "is not a CSV file: it is gzip-compressed"),
    ("Excel workbook (.xlsx) named .csv", lambda d: _write(d / "book.csv", b"PK\x03\x04\x14\x00\x06\x00"), "species",
     "it is a zip archive (.xlsx files are zip archives)"),
    ("not a CSV (binary)", lambda d: _write(d / "image.csv", b"\x00\x01\x02binary\x00"), "species", "contains binary data"),
    ("folder without CSV", lambda d: _write(d / "notes" / "readme.txt", "hi").parent, "species", "holds no .csv file"),
    ("folder, different headers", lambda d: (_write(d / "parts" / "a.csv", HEADER + ROWS),
                                             _write(d / "parts" / "b.csv", "species,island\nAdelie,Dream\n"))[0].parent,
     "species", "has other columns than"),
    ("dangling symbolic link in the folder", lambda d: (_write(d / "parts" / "a.csv", HEADER + ROWS),
                                                        _dangling_link(d / "parts" / "b.csv", "moved.csv"))[0].parent,
     "species", "b.csv is a symbolic link to"),
    ("dangling symbolic link as the data path", lambda d: _dangling_link(d / "data.csv", "moved.csv"), "species",
     "data.csv is a symbolic link to"),
    ("a device (/dev/zero)", lambda d: Path("/dev/zero"), "species", "/dev/zero is a character device, not a regular file"),
    ("a named pipe (FIFO)", lambda d: _fifo(d / "pipe.csv"), "species", "pipe.csv is a named pipe (FIFO), not a regular file"),
    ("a folder holding a named pipe", lambda d: (_write(d / "parts" / "a.csv", HEADER + ROWS), _fifo(d / "parts" / "b.csv"))[0].parent,
     "species", "b.csv is a named pipe (FIFO), not a regular file"),
    ("label with one class", lambda d: _labels(d / "one.csv", {"Adelie": 40}), "species",
     "label column 'species' has one class ('Adelie')"),
    ("a class with fewer than 5 examples", lambda d: _labels(d / "rare.csv", {"Adelie": 40, "Gentoo": 30, "Chinstrap": 3}),
     "species", "'Chinstrap' (3 rows)"),
    ("a class with fewer than 3 examples in the train split", lambda d: _rare_in_train(d / "split.csv"), "species",
     "1 class would have fewer than 3 rows in the train split (2 of 3 rows, by hash): 'Chinstrap' (2)"),
    # Parquet and TFRecords of tf.Examples (tests/data_formats.py writes them)
    ("folder mixing CSV and Parquet", lambda d: (_write(d / "parts" / "a.csv", HEADER + ROWS),
                                                 _parquet(d / "parts" / "b.parquet"))[0].parent,
     "species", "mixes data formats: CSV (a.csv), Parquet (b.parquet)"),
    ("Parquet: a nested column", lambda d: _parquet(d / "nested.parquet", tags=pa.array([["a"], ["b", "c"]])),
     "species", "column 'tags' is nested (list<item: string>)"),
    ("Parquet: empty file", lambda d: _write(d / "empty.parquet", b""), "species",
     "empty.parquet is empty (0 bytes): expected a Parquet file"),
    ("Parquet: no rows", lambda d: _parquet(d / "none.parquet", rows=0), "species", "none.parquet has a schema but no rows"),
    ("Parquet: not a Parquet file", lambda d: _write(d / "text.parquet", HEADER + ROWS), "species",
     "text.parquet is not a Parquet file kubetfx can read"),
    ("TFRecord: SequenceExamples, not tf.Examples", lambda d: _tfrecords(d / "seq.tfrecord", "sequence"), "species",
     "seq.tfrecord: record 0 is not a tf.Example: it has fields a tf.Example has not (a tf.SequenceExample?)"),
    ("TFRecord: records that are no protobuf", lambda d: _tfrecords(d / "junk.tfrecord", "junk"), "species",
     "junk.tfrecord: record 0 is not a tf.Example (protobuf cannot parse it)"),
    ("TFRecord: not a TFRecord file", lambda d: _write(d / "rows.tfrecord", HEADER + ROWS), "species",
     "rows.tfrecord is not a TFRecord file (its first record's frame is wrong: its length fails its checksum)"),
    ("TFRecord: cut off (gzip)", lambda d: _tfrecords(d / "cut.tfrecord.gz", "cut"), "species",
     "cut.tfrecord.gz is damaged at record 1: cut off"),
]


def _parquet(path: Path, rows: int = 2, **more) -> Path:
    import data_formats

    columns = {"species": pa.array(["Adelie", "Gentoo"][:rows], pa.string()),
               "bill_length_mm": pa.array([39.1, 47.5][:rows])}
    return data_formats.write_parquet(path, pa.table({**columns, **more}))


def _tfrecords(path: Path, kind: str) -> Path:
    import data_formats

    if kind == "sequence":
        return data_formats.write_tfrecords(path, [data_formats.sequence_example()])
    if kind == "junk":
        return data_formats.write_tfrecords(path, [b"\xff\xff\xff not a protobuf"])
    good = [data_formats.example(species="Adelie", bill_length_mm=39.1),
            data_formats.example(species="Gentoo", bill_length_mm=47.5)]
    return _write(path, gzip.compress(data_formats.framed(good)[:-6]))


def render_table(workdir: Path) -> str:
    """The README table: each case and the message `kubetfx run` prints for it (exit 2)."""
    from kubetfx.components.example_gen import csv_input, data_format

    lines = ["| bad input | what `kubetfx run` says (exit code 2, nothing started) |", "| --- | --- |"]
    for case, make, label, _ in CASES:
        folder = workdir / case.replace(" ", "-")
        try:
            data_format.check(str(make(folder)), label)
            message = "(accepted)"
        except csv_input.InputError as err:
            message = str(err).replace(str(folder), "…").replace("|", "\\|").replace("`", "'")
        lines.append(f"| {case} | {message} |")
    return "\n".join(lines) + "\n"
