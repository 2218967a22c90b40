"""JSON Lines, JSON documents, Parquet, xlsx, XML; detection; paths, hashing and skipping."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from headwater.core import POSITION, FileFormatError, SourceError, State
from headwater.ingest.sources import FileSource, detect

CASES = Path(__file__).parent / "cases"


def batches(path: Path, **options):
    return list(FileSource(path, **options).read(path))


def data_of(bs) -> pa.Table:
    return pa.concat_tables([b.data for b in bs], promote_options="permissive")


def rejects_of(bs) -> list[dict]:
    return [r for b in bs if b.rejects is not None for r in b.rejects.to_pylist()]


def test_jsonl_flattens_and_rejects_bad_lines():
    bs = batches(CASES / "orders.jsonl")
    data = data_of(bs)
    assert data.column_names == ["a", "b_c", POSITION]
    assert data["a"].to_pylist() == [1, 2, 3]
    assert pa.types.is_integer(data.schema.field("a").type)
    assert data[POSITION].to_pylist() == [1, 2, 6]
    reasons = {r[POSITION]: r["reason"] for r in rejects_of(bs)}
    assert set(reasons) == {3, 4}
    assert reasons[3].startswith("invalid JSON")
    assert "found an array" in reasons[4]


def test_jsonl_nested_as_json_text(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a":1,"b":{"c":2},"l":[{"x":1}]}\n{"a":2,"b":null,"l":[]}\n')
    data = data_of(batches(path, nested="json"))
    assert data["b"].to_pylist() == ['{"c":2}', None]
    assert data["l"].to_pylist() == ['[{"x":1}]', "[]"]


def test_jsonl_types_widen_across_chunks(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    lines = [b'{"v": %d}' % i for i in range(5000)] + [b'{"v": 1.5}']
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    bs = batches(path, batch_rows=1000)
    assert sum(b.data.num_rows for b in bs) == 5001
    assert bs[-1].data["v"].to_pylist()[-1] == 1.5


def test_json_document_with_record_path_and_child_tables():
    bs = batches(CASES / "records.json", nested="child_tables")
    data = data_of(bs)
    assert data.column_names == ["a", POSITION]
    assert data[POSITION].to_pylist() == [1, 2]
    children = bs[0].children["items"]
    assert children.to_pylist() == [{POSITION: 1, "x": 1}, {POSITION: 1, "x": 2}]
    assert [r[POSITION] for r in rejects_of(bs)] == [3]


def test_json_array_pretty_printed_with_escapes(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('[\n  {"s": "a \\"quoted\\" ], {x", "n": 1},\n  {"s": "back\\\\", "n": 2}\n]\n')
    data = data_of(batches(path))
    assert data["s"].to_pylist() == ['a "quoted" ], {x', "back\\"]
    assert data[POSITION].to_pylist() == [1, 2]


def test_json_truncated_is_a_file_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('[{"a": 1}, {"a": 2')
    with pytest.raises(FileFormatError, match="do not balance"):
        batches(path)


def test_parquet_natural_types(tmp_path):
    path = tmp_path / "x.data"
    pq.write_table(pa.table({"a": [1, 2, 3], "b": [0.5, None, 2.0]}), path)
    bs = batches(path, batch_rows=2)
    assert [b.data.num_rows for b in bs] == [2, 1]
    data = data_of(bs)
    assert data.schema.field("a").type == pa.int64()
    assert data[POSITION].to_pylist() == [1, 2, 3]


def test_xlsx_first_sheet_and_missing_sheet(tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "orders"
    sheet.append(["id", "name"])
    sheet.append([1, "Ann"])
    sheet.append([2, "Bob"])
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    data = data_of(batches(path))
    assert data["name"].to_pylist() == ["Ann", "Bob"]
    assert data[POSITION].to_pylist() == [1, 2]
    with pytest.raises(FileFormatError, match="no sheet 'nope'; sheets: orders"):
        batches(path, sheet="nope")


def test_xml_records_and_attributes():
    data = data_of(batches(CASES / "orders.xml"))
    assert data.to_pylist() == [{"@id": "1", "amount": "1.5", POSITION: 1},
                                {"@id": "2", "amount": "2", POSITION: 2}]


def test_xml_record_path_and_bad_xml(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("<r><meta><n>1</n></meta><items><i><v>a</v></i><i><v>b</v></i></items></r>")
    data = data_of(batches(path, record_path="items/i"))
    assert data["v"].to_pylist() == ["a", "b"]
    bad = tmp_path / "bad.xml"
    bad.write_text("<r><i><v>a</v></i><i><v>b</i></r>")
    with pytest.raises(FileFormatError, match="not well-formed XML at line 1"):
        batches(bad)


@pytest.mark.parametrize(("content", "expected"), [
    (b"a,b\n1,2\n", ("csv", ",")),
    (b"a;b;c\n1;2,5;3\n", ("csv", ";")),
    (b"a\tb\n1\t2\n", ("tsv", "\t")),
    (b"a|b\n1|2\n", ("csv", "|")),
    (b'{"a": 1}\n{"a": 2}\n', ("jsonl", None)),
    (b'  [{"a": 1}]', ("json", None)),
    (b'{\n "records": [{"a": 1}]\n}', ("json", None)),
    (b'<?xml version="1.0"?><r/>', ("xml", None)),
])
def test_detect_from_content_not_extension(tmp_path, content, expected):
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    found = detect(path)
    assert (found.format, found.delimiter) == expected


def test_detect_compression_and_parquet_magic(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(gzip.compress(b'{"a": 1}\n'))
    found = detect(path)
    assert (found.format, found.compression) == ("jsonl", "gzip")
    pq.write_table(pa.table({"a": [1]}), tmp_path / "p.csv")
    assert detect(tmp_path / "p.csv").format == "parquet"


@pytest.mark.parametrize(("content", "match"), [
    (b"", "empty"),
    (b"\x00\x01\x02\x03binary\x00\x00" * 50, "binary"),
    (b"%PDF-1.4 ...", "PDF"),
    (b"\xd0\xcf\x11\xe0legacy", "xls"),
    (b"PK\x03\x04notazip", "corrupt zip"),
])
def test_unreadable_files_fail_alone(tmp_path, content, match):
    (tmp_path / "bad.csv").write_bytes(content)
    (tmp_path / "good.csv").write_text("a\n1\n")
    extracts = list(FileSource(".", root=tmp_path).extracts(State()))
    assert [e.source for e in extracts] == ["bad.csv", "good.csv"]
    with pytest.raises(FileFormatError, match=match):
        list(extracts[0].batches)
    assert sum(b.data.num_rows for b in extracts[1].batches) == 1


def test_paths_globs_folders_hidden_and_sorted(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / ".hidden").mkdir()
    for name in ("in/b.csv", "in/a.csv", "in/sub/c.csv", "in/.x.csv", "in/.hidden/d.csv"):
        (tmp_path / name).write_text("a\n1\n")
    source = FileSource("in", root=tmp_path)
    assert [shown for shown, _ in source.files()] == ["in/a.csv", "in/b.csv", "in/sub/c.csv"]
    glob = FileSource(["in/*.csv", "in/a.csv"], root=tmp_path)
    assert [shown for shown, _ in glob.files()] == ["in/a.csv", "in/b.csv"]
    with pytest.raises(SourceError, match=r"no file matches 'in/\*\.json'"):
        FileSource("in/*.json", root=tmp_path).files()


def test_unchanged_file_is_skipped_changed_file_is_read(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a\n1\n")
    source = FileSource("a.csv", root=tmp_path)
    (extract,) = source.extracts(State())
    assert extract.key == str(path.resolve())
    assert extract.position["format"] == "csv" and extract.position["bytes"] == 4
    assert extract.unit == "line"
    # a file never loaded is hashed while it is read: the digest is there once it is read
    assert extract.position["sha256"] is None
    list(extract.batches)
    assert len(extract.position["sha256"]) == 64
    state = State({extract.key: extract.position})
    assert list(source.extracts(state)) == []
    path.write_text("a\n1\n2\n")
    (again,) = source.extracts(state)
    assert again.position["sha256"] != extract.position["sha256"]


def test_from_spec(tmp_path):
    from headwater.config import FilesSpec

    spec = FilesSpec(path="data/*.csv", delimiter=";", nested="json")
    source = FileSource.from_spec(spec, tmp_path)
    assert (source.paths, source.delimiter, source.nested, source.root) == (
        "data/*.csv", ";", "json", tmp_path)


def test_a_file_that_grows_while_it_is_read_fails(tmp_path, monkeypatch):
    import headwater.ingest.sources._files as files

    path = tmp_path / "a.csv"
    path.write_text("a\n1\n")
    hash_file = files._timed_sha256

    def grow_then_hash(p, shown):  # the writer appends while headwater reads
        with open(p, "a") as fh:
            fh.write("2\n")
        return hash_file(p, shown)

    monkeypatch.setattr(files, "_timed_sha256", grow_then_hash)
    (extract,) = FileSource("a.csv", root=tmp_path).extracts(State())
    with pytest.raises(SourceError, match="changed while it was read"):
        list(extract.batches)
