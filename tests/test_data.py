"""Reading data files: a field repeated within a row is an error naming file, line and field."""

from __future__ import annotations

import pytest

from optimas_lg.data import read_rows
from optimas_lg.errors import DataError


def test_a_repeated_field_in_a_jsonl_row_names_file_line_and_field(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"id": "a", "q": "x"}\n\n{"id": "b", "q": "y", "q": "z"}\n')
    with pytest.raises(DataError, match=rf"^{path}:3: field 'q' appears twice in one row"):
        read_rows(path)


def test_a_repeated_field_in_a_json_list_names_the_line_of_its_row(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[\n  {"id": "a", "meta": {"k": 1}},\n  {"id": "b",\n   "meta": {"k": 1, "k": 2}}\n]\n')
    with pytest.raises(DataError, match=rf"^{path}:4: field 'k' appears twice"):
        read_rows(path)


def test_a_repeated_csv_column_is_refused(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("id,q,q\na,x,y\n")
    with pytest.raises(DataError, match=rf"^{path}:1: column 'q' appears twice"):
        read_rows(path)


def test_rows_without_repeats_read_as_before(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "a", "q": {"x": 1}}\n')
    (tmp_path / "a.json").write_text('[{"id": "a", "q": {"x": 1}}]')
    (tmp_path / "a.csv").write_text("id,q\na,x\n")
    assert read_rows(tmp_path / "a.jsonl") == read_rows(tmp_path / "a.json") == [{"id": "a", "q": {"x": 1}}]
    assert read_rows(tmp_path / "a.csv") == [{"id": "a", "q": "x"}]


def test_bad_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"q": "a"}\n{"q": "b\n')
    with pytest.raises(DataError, match=rf"^{path}:2:7: not valid JSON \(Unterminated string .* at column 7\)"):
        read_rows(path)
    whole = tmp_path / "d.json"
    whole.write_text('[{"q": "a"},\n {"q": }]')
    with pytest.raises(DataError, match=rf"^{whole}:2:8: not valid JSON \(Expecting value at line 2, column 8\)"):
        read_rows(whole)
