"""CSV/TSV reading: text columns, rejects with reasons, line numbers, encodings, compression."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from headwater.core import POSITION, REJECTS_SCHEMA, FileFormatError, State
from headwater.ingest.sources import FileSource

CASES = Path(__file__).parent / "cases"


def read(path: Path, **options) -> tuple[pa.Table, pa.Table]:
    data, rejects = [], []
    for batch in FileSource(path, **options).read(path):
        data.append(batch.data)
        if batch.rejects is not None:
            rejects.append(batch.rejects)
    table = pa.concat_tables(data) if data else pa.table({})
    bad = pa.concat_tables(rejects) if rejects else REJECTS_SCHEMA.empty_table()
    return table, bad


def test_messy_csv_keeps_every_record_with_its_line():
    data, rejects = read(CASES / "messy.csv")
    assert data.column_names == ["id", "name", "amount", POSITION]
    assert all(pa.types.is_string(t) for t in data.schema.types[:-1])
    assert data.to_pylist() == [
        {"id": "1", "name": "Ann", "amount": "1,234.50", POSITION: 2},
        {"id": "3", "name": "multi\nline", "amount": "12", POSITION: 5},
        {"id": "5", "name": "y", "amount": "7", POSITION: 8},
    ]
    assert rejects.to_pylist() == [
        {POSITION: 3, "raw": "2,Bob", "reason": "expected 3 fields, found 2"},
        {POSITION: 7, "raw": '4,x,"unterminated',
         "reason": 'a quoted field opened on this line is never closed (unbalanced ")'},
    ]


def test_values_are_not_typed_or_trimmed(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text('a,b,c,d\n" 12 ",N/A,"1,234.50",\n007,-,x,""\n')
    data, rejects = read(path)
    assert rejects.num_rows == 0
    assert data.to_pylist() == [
        {"a": " 12 ", "b": "N/A", "c": "1,234.50", "d": "", POSITION: 2},
        {"a": "007", "b": "-", "c": "x", "d": "", POSITION: 3},
    ]


def test_too_many_fields_is_a_reject_with_reason(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3,4,5\n6,7\n")
    data, rejects = read(path)
    assert data[POSITION].to_pylist() == [2, 4]
    assert rejects.to_pylist() == [{POSITION: 3, "raw": "3,4,5",
                                    "reason": "expected 2 fields, found 3"}]


def test_identical_bad_lines_get_their_own_lines(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1\n1\n2,3\n1\n")
    data, rejects = read(path)
    assert rejects[POSITION].to_pylist() == [2, 3, 5]
    assert data[POSITION].to_pylist() == [4]


def test_crlf_and_bom(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("\ufeffid;name\r\n1;Zoë\r\n2;Åsa\r\n".encode())
    data, _ = read(path)
    assert data.column_names[0] == "id"
    assert data.to_pylist() == [{"id": "1", "name": "Zoë", POSITION: 2},
                                {"id": "2", "name": "Åsa", POSITION: 3}]


def test_latin1_tsv_is_decoded_to_utf8():
    data, _ = read(CASES / "latin1.tsv")
    assert data["name"].to_pylist() == ["José", "Zoë"]


def test_utf16_with_bom(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes("a,b\n1,é\n2,ß\n".encode("utf-16"))
    data, _ = read(path)
    assert data["b"].to_pylist() == ["é", "ß"]


def test_ascii_sample_then_cp1252_switches_encoding(tmp_path):
    path = tmp_path / "x.csv"
    head = "".join(f"{i},plain\n" for i in range(20_000))  # > the detection sample
    path.write_bytes(("a,b\n" + head + "99,Café\n").encode("cp1252"))
    data, rejects = read(path)
    assert rejects.num_rows == 0
    assert data["b"].to_pylist()[-1] == "Café"
    assert data[POSITION].to_pylist()[-1] == 20_002


def test_invalid_utf8_line_in_utf8_file_is_rejected(tmp_path):
    path = tmp_path / "x.csv"
    good = "".join(f"{i},Zoë\n" for i in range(10_000)).encode()  # UTF-8 past the sample
    path.write_bytes(b"a,b\n" + good + b"x," + b"\xff\xfe" + b"\ny,ok\n")
    data, rejects = read(path)
    assert data.num_rows == 10_001
    assert data[POSITION].to_pylist()[-1] == 10_003
    assert rejects[POSITION].to_pylist() == [10_002]
    assert "not valid UTF-8" in rejects["reason"][0].as_py()


def test_gzip_and_zstd(tmp_path):
    body = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(1000))
    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(body))
    (tmp_path / "y.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(body))
    for name in ("x.csv.gz", "y.csv.zst"):
        data, _ = read(tmp_path / name)
        assert data.num_rows == 1000
        assert data[POSITION].to_pylist()[-1] == 1001


def test_corrupt_gzip_fails_when_batches_are_read(tmp_path):
    body = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(200_000))
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(gzip.compress(body)[:5000])
    extracts = list(FileSource(path).extracts(State()))  # no error yet
    assert len(extracts) == 1
    with pytest.raises(FileFormatError, match="corrupt or truncated"):
        for _ in extracts[0].batches:
            pass


def test_header_detected_absent(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("1,2.5,2024-01-01\n2,3.5,2024-01-02\n")
    data, _ = read(path)
    assert data.column_names == ["column_1", "column_2", "column_3", POSITION]
    assert data[POSITION].to_pylist() == [1, 2]


def test_duplicate_and_empty_header_names(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,a,\n1,2,3\n")
    data, _ = read(path, header=True)
    assert data.column_names == ["a", "a_2", "column_3", POSITION]


def test_many_batches_keep_line_numbers(tmp_path):
    path = tmp_path / "x.csv"
    lines = [f'{i},"v{i}"' if i % 97 else f"{i},bad,extra" for i in range(1, 30_001)]
    path.write_text("id,v\n" + "\n".join(lines) + "\n")
    data, rejects = read(path, batch_rows=1000)
    assert data.num_rows + rejects.num_rows == 30_000
    ids = [int(x) for x in data["id"].to_pylist()]
    assert data[POSITION].to_pylist() == [i + 1 for i in ids]
    assert rejects[POSITION].to_pylist() == [i + 1 for i in range(97, 30_001, 97)]


def test_stray_quote_mid_file_rejects_one_line(tmp_path):
    path = tmp_path / "x.csv"
    rows = [f"{i},ok" for i in range(1, 200)]
    rows[49] = '50,"broken'
    path.write_text("id,v\n" + "\n".join(rows) + "\n")
    data, rejects = read(path)
    assert rejects[POSITION].to_pylist() == [51]
    assert data.num_rows == 198


def test_stray_quote_swallowing_many_lines_is_recovered(tmp_path):
    path = tmp_path / "x.csv"
    rows = [f"{i},ok,ok" for i in range(1, 400)]
    rows[9] = '10,"broken,ok'  # opens a quote ...
    rows[299] = '300,ok,"'     # ... that this line closes, 290 lines later: 2 fields, not 3
    path.write_text("id,v,w\n" + "\n".join(rows) + "\n")
    data, rejects = read(path)
    assert rejects[POSITION].to_pylist()[0] == 11
    assert "never closed" in rejects["reason"][0].as_py()
    assert data.num_rows + rejects.num_rows == 399
    assert data.num_rows >= 397
