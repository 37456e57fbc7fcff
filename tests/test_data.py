"""Reading data files (a malformed row is an error naming file and line) and calling metrics."""

from __future__ import annotations

import pytest

from optimas_lg.data import read_rows
from optimas_lg.errors import DataError, MetricError


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


@pytest.mark.parametrize("line, n", [("b,2", 2), ("c", 1), ("d,4,extra", 3)])
def test_a_csv_row_with_more_or_fewer_values_than_columns_is_named(tmp_path, line, n):
    path = tmp_path / "train.csv"
    path.write_text(f"text,gold\na,1\n{line}\n")
    if n == 2:
        assert read_rows(path)[1] == {"text": "b", "gold": "2"}  # CSV values are strings
        return
    with pytest.raises(DataError, match=rf"train.csv:3: {n} values for the header's 2 columns"):
        read_rows(path)


def test_a_metric_may_return_any_real_number_or_be_async():
    import numpy as np

    from optimas_lg.data import Example, evaluate_metric

    example = Example("e", {}, {})
    for value in (np.float32(0.5), np.int64(1), np.bool_(True), np.array(0.25), 1, True):
        assert evaluate_metric(lambda e, o, v=value: v, example, None).value == float(value)

    async def graded(e, o):
        return {"score": np.float32(0.5), "feedback": "half"}

    score = evaluate_metric(graded, example, None)
    assert (score.value, score.feedback) == (0.5, "half")
    with pytest.raises(MetricError, match="expected a finite number"):
        evaluate_metric(lambda e, o: "0.5", example, None)


def test_a_metric_reading_a_field_that_is_not_a_label_says_how_to_make_it_one():
    from optimas_lg.data import Example, evaluate_metric

    def metric(example, output):
        return float(output["answer"] == example.labels["answer"])

    with pytest.raises(MetricError, match=r"KeyError: 'answer' \('answer' is an input of the example, not a label; "
                                          r"its labels are \[\]: add it to --labels"):
        evaluate_metric(metric, Example("e", {"question": "q", "answer": "a"}, {}), {"answer": "a"})
    with pytest.raises(MetricError, match=r"KeyError: 'answer' \(the example has no labels: name the data's label"):
        evaluate_metric(metric, Example("e", {"question": "q"}, {}), {"answer": "a"})
    with pytest.raises(MetricError, match=r"KeyError: 'answer'$"):  # the output's key: nothing to say about labels
        evaluate_metric(metric, Example("e", {"question": "q"}, {"answer": "a"}), {})


def test_a_metric_that_cannot_take_example_and_output_is_refused_before_any_run():
    from optimas_lg.data import check_metric

    def three(example, pred, trace):
        return 1.0

    with pytest.raises(MetricError, match=r"metric three\(example, pred, trace\) cannot be called as "
                                          r"metric\(example, output\).*default"):
        check_metric(three)
    with pytest.raises(MetricError, match="not a function"):
        check_metric(3, "m.py:m")
    check_metric(lambda example, output, trace=None: 1.0)
