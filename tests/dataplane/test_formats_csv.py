"""CSV as people export it: quoted multi-line fields, encodings, BOMs, NUL bytes, bad bytes, odd headers."""

from __future__ import annotations

import csv
import io
import random

import pyarrow as pa
import pytest

from django_etl.dataplane import formats
from django_etl.dataplane.csvpieces import CsvDataError, open_quote, record_end
from django_etl.dataplane.staging import Staging


def staged(tmp_path, data: bytes, name: str = "x.csv", **options) -> pa.Table:
    """``data`` written to a file, read as the file extract reads it and staged: the table later steps see."""
    path = tmp_path / name
    path.write_bytes(data)
    staging = Staging(str(tmp_path / "staging"))
    batches = formats.read_csv(str(path), batch_size=1000, label=f"file {name!r}", **options)
    info = staging.write_dataset(str(tmp_path / "staging" / "d"), "d", batches)
    return staging.reader(info.uri).to_table()


@pytest.fixture
def small_pieces(monkeypatch):
    """Pieces of a few dozen bytes: every record end, quote and line break meets a piece boundary somewhere."""
    monkeypatch.setattr(formats, "CSV_PIECE", 23)


SPREADSHEET = (
    b"id,note,amount\n"
    b'1,"first line\nsecond line",10\n'
    b'2,"a, b and ""c""",20\n'
    b'3,"ends with newline\n",30\n'
    b'4,"",40\n'
    b"5,,50\n"
    b'6,"three\n\nlines",60\n'
)
EXPECTED = [
    {"id": 1, "note": "first line\nsecond line", "amount": 10},
    {"id": 2, "note": 'a, b and "c"', "amount": 20},
    {"id": 3, "note": "ends with newline\n", "amount": 30},
    {"id": 4, "note": "", "amount": 40},
    {"id": 5, "note": None, "amount": 50},
    {"id": 6, "note": "three\n\nlines", "amount": 60},
]


def test_read_csv_quoted_fields_hold_newlines_delimiters_and_quotes(tmp_path):
    assert staged(tmp_path, SPREADSHEET).to_pylist() == EXPECTED


def test_read_csv_pieces_never_cut_inside_a_quoted_field(tmp_path, small_pieces):
    assert staged(tmp_path, SPREADSHEET).to_pylist() == EXPECTED


def test_read_csv_crlf_line_ends_inside_and_outside_quotes(tmp_path, small_pieces):
    data = SPREADSHEET.replace(b"\n", b"\r\n")
    rows = staged(tmp_path, data).to_pylist()
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0]["note"] == "first line\r\nsecond line"


def test_read_csv_literal_quote_in_an_unquoted_field_is_lexed_exactly(tmp_path, small_pieces):
    # `5" pipe` is a literal quote to Arrow: quote parity alone would cut inside the next quoted field.
    data = b'id,item\n1,5" pipe\n2,"multi\nline"\n3,"x ""y"""\n4,plain\n'
    assert staged(tmp_path, data).to_pylist() == [
        {"id": 1, "item": '5" pipe'},
        {"id": 2, "item": "multi\nline"},
        {"id": 3, "item": 'x "y"'},
        {"id": 4, "item": "plain"},
    ]


def test_read_csv_multiline_export_matches_pythons_csv_module(tmp_path, monkeypatch):
    """20,000 rows of spreadsheet-like values in ~15 pieces of ~16 blocks each (Arrow's threads split each piece
    into blocks): every value exactly as the csv module reads it."""
    monkeypatch.setattr(formats, "CSV_PIECE", 64 << 10)
    monkeypatch.setattr(formats, "BLOCK_SIZE", 4 << 10)
    rng = random.Random(7)
    words = ["plain", "with, comma", 'say "hi"', "two\nlines", "tab\there", "crlf\r\nend", "é ü 東京", ""]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "label", "comment"])
    rows = [[i, rng.choice(words), " / ".join(rng.choices(words, k=3))] for i in range(20_000)]
    writer.writerows(rows)
    table = staged(tmp_path, out.getvalue().encode())
    expected = list(csv.reader(io.StringIO(out.getvalue()), strict=True))[1:]
    assert table.num_rows == 20_000
    assert table.column("id").to_pylist() == [int(r[0]) for r in expected]
    # As COPY reads CSV, an empty unquoted field is NULL; the csv module wrote "" unquoted for empty labels.
    assert table.column("label").to_pylist() == [r[1] or None for r in expected]
    assert table.column("comment").to_pylist() == [r[2] for r in expected]


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("latin-1", "id,city\n1,Montréal\n2,Zürich\n".encode("latin-1")),
        ("cp1252", "id,city\n1,Montréal\n2,Zürich €\n".encode("cp1252")),
        ("utf-16", "id,city\n1,Montréal\n2,Zürich\n".encode("utf-16")),
        ("utf-8", "\ufeffid,city\n1,Montréal\n2,Zürich\n".encode()),
        ("utf-8-sig", "\ufeffid,city\n1,Montréal\n2,Zürich\n".encode()),
    ],
)
def test_read_csv_declared_encoding_and_byte_order_mark(tmp_path, encoding, data):
    table = staged(tmp_path, data, encoding=encoding)
    assert table.column_names == ["id", "city"]  # no BOM left in the first name
    assert table.column("city").to_pylist()[0] == "Montréal"
    assert table.schema.field("city").type == pa.string()


def test_read_csv_utf16_in_small_pieces_keeps_every_character(tmp_path, small_pieces):
    text = "id,city\n" + "".join(f'{i},"Zürich\n{i}"\n' for i in range(50))
    table = staged(tmp_path, text.encode("utf-16"), encoding="utf-16")
    assert table.column("city").to_pylist() == [f"Zürich\n{i}" for i in range(50)]


def test_read_csv_latin1_bytes_read_as_utf8_fail_naming_line_and_offset(tmp_path):
    data = "id,city\n1,Paris\n2,Montréal\n".encode("latin-1")
    with pytest.raises(CsvDataError) as caught:
        staged(tmp_path, data, name="cities.csv")
    message = str(caught.value)
    assert "file 'cities.csv': bytes e9 are not valid utf-8 at line 3, byte offset 23" in message
    assert "declare the file's 'encoding'" in message
    assert data[23] == 0xE9


def test_read_csv_invalid_bytes_never_reach_staging_as_binary(tmp_path, small_pieces):
    # Before: Arrow inferred a binary column and b'caf\xe9' landed in a TEXT column as a BLOB.
    data = b"id,name\n" + b"".join(b"%d,ok\n" % i for i in range(40)) + b"41,caf\xe9\n"
    with pytest.raises(CsvDataError, match=r"bytes e9 are not valid utf-8 at line 42, byte offset 2\d\d"):
        staged(tmp_path, data)


def test_read_csv_bytes_the_declared_encoding_cannot_decode_are_named(tmp_path):
    data = b"id,name\n1,ok\n2,bad \x81 byte\n"  # 0x81 is undefined in cp1252
    with pytest.raises(CsvDataError, match=r"bytes 81 are not valid cp1252 at line 3, byte offset 19"):
        staged(tmp_path, data, encoding="cp1252")


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_read_csv_nul_byte_is_refused_with_its_position(tmp_path, encoding):
    data = b"id,name\n1,ok\n2,pad\x00ded\n"
    with pytest.raises(CsvDataError, match=r"NUL byte at line 3, byte offset 18: CSV files may not hold NUL"):
        staged(tmp_path, data, encoding=encoding)


def test_read_csv_nul_character_in_utf16_is_refused_with_its_byte_offset(tmp_path):
    data = "id,name\n1,a\x00b\n".encode("utf-16")
    with pytest.raises(CsvDataError, match=r"NUL byte at line 2, byte offset 24"):
        staged(tmp_path, data, encoding="utf-16")
    assert data[24:26] == b"\x00\x00"


def test_read_csv_quote_that_never_closes_is_named(tmp_path):
    data = b'id,note\n1,fine\n2,"runs away\n3,to the end\n'
    with pytest.raises(CsvDataError, match=r"quoted field opened at line 3, byte offset 17 never closes"):
        staged(tmp_path, data)


def test_read_csv_header_only_and_empty_files(tmp_path):
    header_only = list(formats.read_csv(_file(tmp_path, b"id,name\n"), batch_size=10))
    assert [(b.num_rows, b.schema.names) for b in header_only] == [(0, ["id", "name"])]
    assert list(formats.read_csv(_file(tmp_path, b""), batch_size=10)) == []
    assert list(formats.read_csv(_file(tmp_path, b"\xef\xbb\xbf\n\n"), batch_size=10)) == []


def test_read_csv_blank_and_repeated_header_names_get_usable_names(tmp_path):
    table = staged(tmp_path, b"id,amount,amount,\n1,2,3,\n")
    assert table.column_names == ["id", "amount", "amount_2", "column_4"]
    assert table.to_pylist() == [{"id": 1, "amount": 2, "amount_2": 3, "column_4": None}]


def test_read_csv_declared_types_keep_leading_zeros(tmp_path, small_pieces):
    table = staged(tmp_path, b"id,zip\n1,01234\n2,00042\n", column_types={"zip": pa.string()})
    assert table.column("zip").to_pylist() == ["01234", "00042"]


def test_read_csv_declared_type_a_value_does_not_fit_names_the_column(tmp_path):
    with pytest.raises(CsvDataError, match=r"a type declared in 'schema'.*conversion error to int64.*'n/a'"):
        staged(tmp_path, b"id,qty\n1,3\n2,n/a\n", column_types={"qty": pa.int64()})


def test_read_csv_unknown_encoding_is_named(tmp_path):
    with pytest.raises(CsvDataError, match="unknown encoding 'klingon'"):
        staged(tmp_path, b"id\n1\n", encoding="klingon")


@pytest.mark.parametrize(
    ("data", "end"),
    [
        (b"a,b\n1,2\n3,4", 8),
        (b'a,b\n1,"x\ny"\n2,"open\n', 12),
        (b'a\n"x""\n""y"\n', 12),
        (b'a\n5" x\n"p\nq', 7),
        (b"no line end", 0),
        (b'a\n"\n', 2),
    ],
)
def test_record_end_is_the_last_newline_outside_quotes(data, end):
    assert record_end(data, ord(",")) == end


def test_open_quote_finds_the_field_left_open():
    assert open_quote(b'a,b\n1,"x\n', ord(",")) == 6
    assert open_quote(b'a,b\n1,"x"\n', ord(",")) is None
    assert open_quote(b'a\n5" x\n"p', ord(",")) == 7


def _file(tmp_path, data: bytes) -> str:
    path = tmp_path / f"f{len(list(tmp_path.iterdir()))}.csv"
    path.write_bytes(data)
    return str(path)
