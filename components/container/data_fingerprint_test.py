"""The data-fingerprint task's program on real files: what changes the fingerprint, what does
not, and an empty data_root as one line with its exit code."""
from __future__ import annotations

import os

from kubetfx.components.container import data_fingerprint


def _run(data, output, capsys=None):
    return data_fingerprint.main(["--data", str(data), "--uri", "minio://b/data/", "--output", str(output)])


def test_same_files_same_fingerprint_and_each_change_a_new_one(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("x,y\n1,2\n")
    (data / "sub" / "b.csv").write_text("x,y\n3,4\n")
    seen = []

    def fingerprint():
        out = tmp_path / "out" / "fingerprint"
        assert _run(data, out) == 0
        seen.append(out.read_text())
        return seen[-1]

    first = fingerprint()
    assert first.startswith("sha256:") and fingerprint() == first
    os.utime(data / "a.csv", (0, 0))                       # touched, same bytes
    (data / "sub" / "x_$folder$").write_text("")           # an S3 client's directory marker
    assert fingerprint() == first
    changes = [lambda: (data / "c.csv").write_text("x,y\n5,6\n"),        # a new file
               lambda: (data / "a.csv").write_text("x,y\n1,9\n"),        # same size, other bytes
               lambda: (data / "c.csv").rename(data / "d.csv"),           # renamed
               lambda: (data / "d.csv").unlink()]                         # removed
    for change in changes:
        before = seen[-1]
        change()
        assert fingerprint() != before
    assert len(set(seen)) == len(seen) - 2  # the two repeats above; every change new


def test_a_single_object_is_fingerprinted_as_a_file(tmp_path):
    (tmp_path / "one.csv").write_text("x\n1\n")
    assert _run(tmp_path / "one.csv", tmp_path / "fp") == 0
    assert (tmp_path / "fp").read_text() == data_fingerprint.fingerprint(tmp_path / "one.csv")


def test_an_empty_data_root_is_one_line_and_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for data in (tmp_path / "empty", tmp_path / "absent"):
        assert _run(data, tmp_path / "fp") == data_fingerprint.NO_DATA == 2
        err = capsys.readouterr().err.strip()
        assert err == ("data-fingerprint: data_root minio://b/data/ holds no files: upload the data there "
                       "(kubetfx submit --data) or start the run with another data_root")
    assert not (tmp_path / "fp").exists()
