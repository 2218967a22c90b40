"""Property tests: messy CSV and JSON Lines; every record lands in data or rejects, valid rows
arrive unchanged with their line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.core import POSITION
from headwater.ingest.sources import FileSource

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Values with the characters that make CSV hard: delimiters, quotes, spaces, newlines, accents.
value = st.text(alphabet=st.sampled_from(list('ab1 ,;"\n\r.-é€\t')), max_size=8)
clean = st.text(alphabet=st.sampled_from(list("abcXYZ019 .-é€")), min_size=1, max_size=8)


def _quote(field: str) -> str:
    if any(ch in field for ch in ',"\n\r') or field != field.strip():
        return '"' + field.replace('"', '""') + '"'
    return field


def _read(path: Path, **options):
    data, rejects = [], []
    for batch in FileSource(path, **options).read(path):
        data.append(batch.data)
        if batch.rejects is not None:
            rejects.append(batch.rejects)
    return pa.concat_tables(data, promote_options="permissive"), (
        pa.concat_tables(rejects) if rejects else None)


@SETTINGS
@given(rows=st.lists(st.tuples(st.lists(value, min_size=3, max_size=3),
                               st.sampled_from(["ok", "ok", "ok", "short", "long"])),
                     min_size=1, max_size=40),
       crlf=st.booleans())
def test_csv_conservation_and_valid_rows_unchanged(tmp_path_factory, rows, crlf):
    newline = "\r\n" if crlf else "\n"
    lines, expected, starts = [], [], []
    line = 2
    bad_lines = []
    for fields, kind in rows:
        if kind == "short":
            fields = fields[:2]
        elif kind == "long":
            fields = [*fields, "x"]
        text = ",".join(_quote(f) for f in fields)
        if kind == "ok":
            expected.append(fields)
            starts.append(line)
        else:
            bad_lines.append(line)
        lines.append(text)
        line += text.count("\n") + 1
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_bytes((newline.join(["c1,c2,c3", *lines]) + newline).encode())
    data, rejects = _read(path, header=True, delimiter=",", encoding="utf-8")
    n_rejects = rejects.num_rows if rejects is not None else 0
    assert data.num_rows + n_rejects == len(rows)
    got = [[r["c1"], r["c2"], r["c3"]] for r in data.to_pylist()]
    # Quoted CR LF pairs inside values are kept as written; the parser normalises nothing.
    assert got == [[f.replace("\r\n", "\r\n") for f in fields] for fields in expected]
    assert data[POSITION].to_pylist() == starts
    if rejects is not None:
        assert rejects[POSITION].to_pylist() == bad_lines


@SETTINGS
@given(records=st.lists(st.one_of(
    st.fixed_dictionaries({"id": st.integers(-10**9, 10**9), "name": clean}),
    st.sampled_from(["not json", "[1, 2]", '{"id": ', "42", ""]),
), min_size=1, max_size=40))
def test_jsonl_conservation_and_valid_rows_unchanged(tmp_path_factory, records):
    lines = [json.dumps(r) if isinstance(r, dict) else r for r in records]
    path = tmp_path_factory.mktemp("jsonl") / "x.jsonl"
    path.write_text("\n".join(lines) + "\n")
    valid = [(i + 1, r) for i, r in enumerate(records) if isinstance(r, dict)]
    invalid = [i + 1 for i, r in enumerate(records) if isinstance(r, str) and r]
    if not valid:
        return  # a file without one object is detected as text, not JSON Lines
    data, rejects = _read(path, format="jsonl")
    assert data.num_rows == len(valid)
    assert data.select(["id", "name"]).to_pylist() == [r for _, r in valid]
    assert data[POSITION].to_pylist() == [i for i, _ in valid]
    assert (rejects[POSITION].to_pylist() if rejects is not None else []) == invalid
