from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedrec.shared.data import textio
from fedrec.shared.data.textio import Field, read_table
from fedrec.shared.errors import DataError

NUMERIC = [Field("u", "int"), Field("i", "int"), Field("r", "float"), Field("t", "int")]
NAMES = ("u", "i", "r", "t")


def test_crlf_bom_and_quoted_header(write) -> None:
    path = write("x.csv", '\ufeff"u","i","r","t"\r\n1,2,3.5,4\r\n5,6,7,8\r\n')

    table = read_table(path, NUMERIC)

    assert table.found == ["u", "i", "r", "t"]
    assert table.array("u").tolist() == [1, 5]
    assert table.array("r").tolist() == [3.5, 7.0]
    assert table.lines.tolist() == [2, 3]


def test_blank_lines_keep_line_numbers_exact(write) -> None:
    path = write("x.dat", "\n1::2::3::4\n\n  \n5::6::7::8\n\n")

    table = read_table(path, NUMERIC, sep="::", header=False, names=NAMES, quoted=False)

    assert table.lines.tolist() == [2, 5]
    assert table.array("t").tolist() == [4, 8]


def test_quoted_field_spanning_lines(write) -> None:
    path = write("m.csv", 'id,title\n1,"two\nlines"\n2,x\n3,y,\n')

    with pytest.raises(DataError) as info:
        read_table(path, [Field("id", "int"), Field("title")])

    assert (info.value.line, info.value.column) == (5, None)  # line 5 of the file, not row 3


def test_optional_fields_absent_are_skipped(write) -> None:
    path = write("x.csv", "a,b\n1,2\n")

    table = read_table(path, [Field("a", "int"), Field("c", "float", required=False)])

    assert table.has("a") and not table.has("c")


def test_huge_integer_is_an_error(write) -> None:
    path = write("x.csv", "u,i,r,t\n1,2,3,99999999999999999999\n")

    with pytest.raises(DataError) as info:
        read_table(path, NUMERIC)

    assert (info.value.line, info.value.column) == (2, "t")


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "none.csv", NUMERIC)
    with pytest.raises(DataError, match="found a folder"):
        read_table(tmp_path, NUMERIC)


ROWS = st.lists(
    st.tuples(
        st.integers(-(2**40), 2**40),
        st.integers(0, 10**6),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.integers(0, 2**40),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(rows=ROWS, blank_at=st.integers(0, 60), sep=st.sampled_from(["\t", "::", ","]))
def test_fast_and_slow_paths_agree(tmp_path_factory, rows, blank_at: int, sep: str) -> None:
    lines = [sep.join([str(u), str(i), repr(r), str(t)]) for u, i, r, t in rows]
    if blank_at < len(lines):
        lines.insert(blank_at, "")  # forces the slow path from that block on
    path = tmp_path_factory.mktemp("t") / "r.txt"
    path.write_text("\n".join(lines) + "\n")

    table = read_table(path, NUMERIC, sep=sep, header=False, names=NAMES, quoted=sep == ",")

    got = list(zip(*(table.array(n).tolist() for n in NAMES), strict=True))
    assert got == rows
    expected_lines = [n + 1 for n, line in enumerate(lines) if line]
    assert table.lines.tolist() == expected_lines


def test_small_blocks_and_chunks_find_the_first_bad_line(write, monkeypatch) -> None:
    monkeypatch.setattr(textio, "_BLOCK_CHARS", 64)
    monkeypatch.setattr(textio, "_CHUNK_ROWS", 3)
    good = [f"{k}\t{k}\t1\t{k}" for k in range(1, 40)]
    good[30] = "31\t31\t1\tlate"
    good[33] = "34\tbad\t1\t34"
    path = write("u.data", "\n".join(good) + "\n")

    with pytest.raises(DataError) as info:
        read_table(path, NUMERIC, sep="\t", header=False, names=NAMES, quoted=False)

    assert (info.value.line, info.value.column) == (31, "t")


def test_many_blocks_concatenate_in_order(write, monkeypatch) -> None:
    monkeypatch.setattr(textio, "_BLOCK_CHARS", 50)
    rows = [f"{k},{k * 2},0.5,{k * 3}" for k in range(200)]
    path = write("r.csv", "u,i,r,t\n" + "\n".join(rows) + "\n")

    table = read_table(path, NUMERIC)

    assert np.array_equal(table.array("i"), np.arange(200) * 2)
    assert np.array_equal(table.lines, np.arange(2, 202))
