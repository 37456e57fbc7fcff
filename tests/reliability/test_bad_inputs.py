"""Bad inputs of every kind, each one a row of a table: the command exits 1 with ONE
line naming what is wrong and where (no traceback), creates no job or marks its job
``failed`` (never leaves it ``running``), and loses nothing the store already held."""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from optimas_lg.store import Store
from optimas_lg.store import models as m
from tests.reliability.conftest import METRIC, TARGET, cli_env
from tests.reliability.harness import cli

pytestmark = pytest.mark.reliability

BAD = "tests/reliability/targets.py"
ROW = {"id": "a", "question": "where does alda live?", "answer": "oslo"}
FILES = {  # name -> content of a bad data or settings file
    "malformed.jsonl": json.dumps(ROW) + '\n{"id": "b", "question": \n',
    "missing_field.jsonl": json.dumps({"id": "a", "question": "where does alda live?"}) + "\n",
    "duplicate_key.jsonl": json.dumps(ROW) + "\n" + json.dumps(ROW) + "\n",
    "duplicate_field.jsonl": '{"id": "a", "question": "q", "answer": "x", "answer": "y"}\n',
    "empty.jsonl": "",
    "not_rows.json": '["where does alda live?"]',
    "duplicate_column.csv": "id,question,answer,answer\na,q,x,y\n",
    "format.txt": "where does alda live?\n",
    "settings_syntax.json": '{"budget": ',
    "settings_list.json": "[1, 2]",
    "settings_unknown.json": '{"budgett": {"max_iterations": 1}}',
    "settings_type.json": '{"budget": {"max_iterations": "three"}}',
    "settings_section.json": '{"gate": "strict"}',
    "settings_proposer_kind.json": '{"proposers": {"voice": {}}}',
    "settings_proposer_field.json": '{"proposers": {"choice": {"temprature": 2}}}',
    "settings_proposer_class.json": '{"proposers": {"choice": {"use": "tests/graphs/lookup.py:nope"}}}',
    "settings_knob_kind.json": '{"kinds": ["choice", "voice"]}',
    "corrupt.db": "this is not a database\n" * 100,
    "small_gate.json": '{"gate": {"min_examples": 5}}',  # the good validation file has 8 rows
}
SMALL_GATE = ("--settings", "{small_gate.json}")
PROGRESS = re.compile(r"  \[runs \d+ · tokens \d+ · \d+s\]$")  # a loop step's progress line, before the error


@dataclass(frozen=True)
class Case:
    """``args`` with ``{name}`` for the files above, ``{store}`` for the case's store and
    ``{good:...}`` for the good lookup files; the error line must contain every ``says``."""

    name: str
    args: list[str]
    says: tuple[str, ...]
    job: str | None = None  # None: no job is created; "failed": the new job ends failed


def _optimize(*extra: str, data: str = "{good:train}", target: str = TARGET, metric: str = METRIC) -> list[str]:
    return ["optimize", target, "--data", data, "--val", "{good:val}", "--metric", metric, "--labels", "answer",
            "--store", "{store}", "--max-iterations", "1", *extra]


CASES = [
    # data
    Case("malformed JSONL", _optimize(data="{malformed.jsonl}"), ("malformed.jsonl:2", "not valid JSON")),
    Case("a row missing a field", _optimize(data="{missing_field.jsonl}"), ("missing_field.jsonl", "row 1 ",
                                                                            "answer")),
    Case("duplicate example keys", _optimize(data="{duplicate_key.jsonl}"), ("duplicate_key.jsonl", "'a'")),
    Case("a field twice in a row", _optimize(data="{duplicate_field.jsonl}"), ("duplicate_field.jsonl:1",
                                                                               "answer")),
    Case("a CSV column twice", _optimize(data="{duplicate_column.csv}"), ("duplicate_column.csv:1", "answer")),
    Case("an empty dataset", _optimize(data="{empty.jsonl}"), ("empty.jsonl", "no rows")),
    Case("rows that are not objects", _optimize(data="{not_rows.json}"), ("not_rows.json", "row 1 ", "str")),
    Case("an unknown file format", _optimize(data="{format.txt}"), ("format.txt", "unsupported format")),
    Case("a missing data file", _optimize(data="{nowhere.jsonl}"), ("nowhere.jsonl", "does not exist")),
    Case("a missing validation file", _optimize("--val", "{nowhere.jsonl}"), ("nowhere.jsonl", "does not exist")),
    Case("a label the data lacks", _optimize("--labels", "city"), ("train.jsonl", "city")),
    Case("no data, target or metric", ["optimize", "--store", "{store}"], ("give TARGET",)),
    # settings
    *[Case(f"settings: {kind}", _optimize("--settings", "{" + file + "}"), says) for kind, file, says in [
        ("a missing file", "nowhere.json", ("nowhere.json", "cannot read")),
        ("bad syntax", "settings_syntax.json", ("settings_syntax.json", "not JSON")),
        ("not an object", "settings_list.json", ("must be an object", "list")),
        ("an unknown section", "settings_unknown.json", ("budgett",)),
        ("a wrong type", "settings_type.json", ("budget.max_iterations", "three")),
        ("a section that is not an object", "settings_section.json", ("gate", "str")),
        ("an unknown proposer kind", "settings_proposer_kind.json", ("voice",)),
        ("an unknown proposer field", "settings_proposer_field.json", ("temprature",)),
        ("a proposer class that does not load", "settings_proposer_class.json", ("lookup.py", "nope")),
        ("an unknown knob kind", "settings_knob_kind.json", ("voice",)),
    ]],
    # targets
    Case("a target file that does not exist", _optimize(target="tests/graphs/nope.py:builder"), ("nope.py",)),
    Case("a target attribute that does not exist", _optimize(target="tests/graphs/lookup.py:nope"),
         ("lookup.py", "nope")),
    Case("a target without a colon", _optimize(target="lookup"), ("'lookup'", "path/to/file.py:name")),
    Case("a graph with no knobs", _optimize(target=f"{BAD}:no_knobs"), ("no knobs",)),
    Case("a metric that does not exist", _optimize(metric="tests/graphs/lookup.py:scorer"), ("scorer",)),
    Case("a metric that is not a function", _optimize(metric=f"{BAD}:not_a_function"), ("not_a_function",
                                                                                        "not a function")),
    Case("a validation set the gate cannot decide on", _optimize(),
         ("8 validation examples", "gate.min_examples")),
    Case("a budget that cannot pay for one decision", _optimize(*SMALL_GATE, "--max-system-runs", "5"),
         ("max_system_runs 5 cannot pay for one decision", "8 runs each", "allow at least")),
    # the user's code failing at run time: the job exists and ends failed
    Case("a node that raises", _optimize(*SMALL_GATE, target=f"{BAD}:raising_node"),
         ("every val run", "answer node is broken"), "failed"),
    Case("a metric that raises", _optimize(*SMALL_GATE, metric=f"{BAD}:raising_metric"),
         ("every val run", "raising_metric", "KeyError"), "failed"),
    Case("a metric that returns text", _optimize(*SMALL_GATE, metric=f"{BAD}:text_metric"),
         ("every val run", "'good'"), "failed"),
    Case("a state value with no JSON form", _optimize(*SMALL_GATE, target=f"{BAD}:opaque_state"),
         ("node 'answer' cannot be optimized", "_Handle", "stored only as its repr"), "failed"),
    Case("a model server that is down", _optimize(*SMALL_GATE, target=f"{BAD}:model_server_node"),
         ("every val run", "OPTIMAS_LG_LLM_URL", "does not answer"), "failed"),
    # jobs and stores
    Case("resuming a job that does not exist", ["optimize", "--resume", "99", "--store", "{store}"], ("job 99",)),
    Case("resuming a job that is not an optimization", ["optimize", "--resume", "1", "--store", "{store}"],
         ("job 1",)),
    Case("a store URL that is not one", _optimize("--store", "nonsense://x"), ("nonsense://x",)),
    Case("a store file that is not a database", _optimize("--store", "sqlite:///{corrupt.db}"), ("corrupt.db",)),
    Case("an in-memory SQLite store", _optimize("--store", "sqlite://"), ("in-memory SQLite", "give a file")),
    # run
    Case("run: a knob value out of range", ["run", TARGET, "--data", "{good:train}", "--metric", METRIC, "--labels",
                                            "answer", "--config", '{"top_k": 9}', "--store", "{store}"],
         ("top_k", "9")),
    Case("run: knob values that are not JSON", ["run", TARGET, "--data", "{good:train}", "--metric", METRIC,
                                                "--labels", "answer", "--config", '{"top_k": ', "--store", "{store}"],
         ("--config",)),
    Case("run: malformed JSONL", ["run", TARGET, "--data", "{malformed.jsonl}", "--metric", METRIC, "--labels",
                                  "answer", "--store", "{store}"], ("malformed.jsonl:2",)),
]


@pytest.fixture(scope="module")
def recorded(lookup_files, tmp_path_factory) -> Path:
    """A store that already holds a finished run job (what a bad input must not damage)."""
    folder = tmp_path_factory.mktemp("recorded")
    args = ["run", TARGET, "--data", str(lookup_files["train"]), "--metric", METRIC, "--labels", "answer",
            "--store", f"sqlite:///{folder / 'optimas.db'}", "--json"]
    done = cli(args, cli_env(folder / "home"), folder / "out")
    assert done.code == 0, done.stderr
    return folder / "optimas.db"


def _facts(db: Path) -> dict:
    with Store(f"sqlite:///{db}") as store:
        return {"jobs": [(j.id, j.kind, j.status) for j in store.select(m.Job)],
                "runs": sorted((r.id, r.status, r.score) for r in store.select(m.Run)),
                "node_calls": store.count(m.NodeCall), "configs": store.count(m.ConfigVersion)}


def _fill(arg: str, folder: Path, store: str, good: dict[str, Path]) -> str:
    arg = arg.replace("{store}", store)
    for name, path in good.items():
        arg = arg.replace("{good:" + name + "}", str(path))
    for name in [*FILES, "nowhere.jsonl", "nowhere.json"]:
        arg = arg.replace("{" + name + "}", str(folder / name))
    return arg


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_bad_input_fails_cleanly(case, recorded, lookup_files, tmp_path):
    for name, content in FILES.items():
        (tmp_path / name).write_text(content)
    db = tmp_path / "optimas.db"
    with sqlite3.connect(recorded) as src, sqlite3.connect(db) as dst:
        src.backup(dst)
    before = _facts(db)
    args = [_fill(a, tmp_path, f"sqlite:///{db}", lookup_files) for a in case.args]
    env = cli_env(tmp_path / "home", OPTIMAS_LG_LLM_URL="http://127.0.0.1:9")  # nothing listens on port 9
    outcome = cli(args, env, tmp_path / "out")

    assert outcome.code == 1, outcome.stderr
    lines = [line for line in outcome.stderr.splitlines() if line.strip() and not PROGRESS.search(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    assert all(s in lines[0] for s in case.says), lines[0]
    after = _facts(db)
    new_jobs = after["jobs"][len(before["jobs"]):]
    assert after["jobs"][:len(before["jobs"])] == before["jobs"]  # nothing recorded is lost or changed
    assert set(before["runs"]) <= set(after["runs"])
    assert after["node_calls"] >= before["node_calls"] and after["configs"] >= before["configs"]
    if case.job is None:
        assert new_jobs == [] and after == before
    else:
        assert [status for _, _, status in new_jobs] == [case.job]
        with Store(f"sqlite:///{db}") as store:
            assert all(s in store.get(m.Job, new_jobs[0][0]).meta["error"] for s in case.says[1:])
