"""The CLI's one-line failures: the error itself, whole, on one line."""

from __future__ import annotations

import json
import traceback

from langgraph.graph import START, StateGraph
from pydantic import BaseModel, ValidationError
from typer.testing import CliRunner
from typing_extensions import TypedDict

from optimas_lg.cli import app
from optimas_lg.errors import error_line

AGENT = '''
from typing_extensions import TypedDict
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    q: str


def fail(state: State) -> dict:
    raise ValueError(f"cannot answer {state['q']!r}")


builder = StateGraph(State)
builder.add_node("fail", fail)
builder.add_edge(START, "fail")
builder.add_edge("fail", END)


def metric(example, output):
    return 1.0
'''


def test_a_failed_run_shows_the_error_not_langgraphs_note(tmp_path, store):
    (tmp_path / "agent.py").write_text(AGENT)
    (tmp_path / "data.jsonl").write_text(json.dumps({"id": "e1", "q": "hi"}) + "\n")
    agent = tmp_path / "agent.py"
    result = CliRunner().invoke(app, ["run", f"{agent}:builder", "--data", str(tmp_path / "data.jsonl"),
                                      "--metric", f"{agent}:metric", "--store", store.url])
    assert result.exit_code == 1, result.output  # no run was scored
    assert "  failed e1: ValueError: cannot answer 'hi' (in node 'fail')\n" in result.stdout
    assert "During task" not in result.stdout


def test_a_cli_error_is_one_line_with_brackets_kept(tmp_path, store):
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    missing = tmp_path / "[run-7]" / ("a-long-folder-name-" * 6) / "data.jsonl"
    result = CliRunner().invoke(app, ["run", f"{agent}:builder", "--data", str(missing), "--metric",
                                      f"{agent}:metric", "--store", store.url])
    assert result.exit_code == 1
    assert result.stderr == f"error: data file {missing} does not exist\n"


def test_error_line_skips_notes_and_finds_the_last_chained_error():
    try:
        try:
            raise KeyError("docs")
        except KeyError as inner:
            error = RuntimeError("retrieval failed\nsecond line of the message")
            error.add_note("During task with name 'retrieve' and id '1234'")
            raise error from inner
    except RuntimeError as exc:
        recorded = "".join(traceback.format_exception(exc))
    assert recorded.strip().splitlines()[-1].startswith("During task")
    assert error_line(recorded) == "RuntimeError: retrieval failed (in node 'retrieve')"
    assert error_line("plain message\n") == "plain message"


def test_error_line_names_the_node_inside_a_subgraph_and_the_subgraph_node():
    """LangGraph notes the failing task of the subgraph, then the parent's task that ran it."""

    class State(TypedDict):
        x: int

    def broken(state: State) -> dict:
        raise ValueError("no priority")

    inner = StateGraph(State)
    inner.add_node("rank", broken)
    inner.add_edge(START, "rank")
    outer = StateGraph(State)
    outer.add_node("triage", inner.compile())
    outer.add_edge(START, "triage")
    try:
        outer.compile().invoke({"x": 1})
    except ValueError as exc:
        recorded = "".join(traceback.format_exception(exc))
    assert error_line(recorded) == "ValueError: no priority (in node 'rank' of subgraph node 'triage')"


def test_error_line_of_a_pydantic_state_names_the_field_and_the_problem():
    class State(BaseModel):
        x: int

    try:
        State(x="abc")
    except ValidationError as exc:
        exc.add_note("During task with name 'answer' and id '1234'")
        recorded = "".join(traceback.format_exception(exc))
    line = error_line(recorded)
    assert line.startswith("pydantic_core._pydantic_core.ValidationError: 1 validation error for State: x: "
                           "Input should be a valid integer"), line
    assert line.endswith("(in node 'answer')")


def test_a_store_database_that_fails_mid_command_is_one_line_saying_what_is_kept(capsys):
    import psycopg
    import pytest
    import typer
    from sqlalchemy.exc import OperationalError

    from optimas_lg.cli.common import friendly_errors

    @friendly_errors
    def command() -> None:  # what the store raised when its PostgreSQL server was stopped mid-job
        refused = psycopg.OperationalError('connection failed: connection to server at "127.0.0.1", port 54329 '
                                           "failed: Connection refused\n\tIs the server running on that host?")
        raise OperationalError("SELECT 1", {}, refused)

    with pytest.raises(typer.Exit):
        command()
    err = capsys.readouterr().err
    assert err.startswith("error: the store's database failed: OperationalError: connection failed: connection to "
                          'server at "127.0.0.1", port 54329 failed: Connection refused (what was recorded before is '
                          "kept; once it works again")
    assert err.count("\n") == 1 and "Is the server running" not in err
