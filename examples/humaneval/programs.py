"""From model replies to runnable programs and tests, and back to scores and error messages.

A test is a ``Case(call, expected)`` pair of Python expressions (``f(1, 2)`` and ``3``),
read from the problem's own docstring examples or from a test-writer's ``assert`` lines;
anything else is dropped, so a garbled test cannot crash the harness. The harness runs a
candidate against its tests in one sandboxed process and reports, per test, whether the
call returned the expected value, or what it returned or raised instead: that message is
what the repair step shows the model.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from examples.humaneval.sandbox import Limits, Outcome, result_line, run_python

CANDIDATE_LIMITS = Limits(seconds=5.0, memory_mb=512)
_FENCE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_MAIN_GUARD = re.compile(r"^if\s+__name__\s*==.*", re.MULTILINE | re.DOTALL)
# "f(x) == y", "f(x) ➞ y", "f(x) => y", "f(x) -> y", "f(x) should return y" in a docstring
_ARROW = re.compile(r"^\s*(?P<call>\w+\(.*\))\s*(?:==|➞|=>|->|should return)\s*(?P<expected>.+?)\s*$")


@dataclass(frozen=True)
class Case:
    """One check: evaluating ``call`` must give a value equal to evaluating ``expected``."""

    call: str
    expected: str

    def source(self) -> str:
        return f"assert {self.call} == {self.expected}"


@dataclass(frozen=True)
class Report:
    """A candidate's run against its tests: how many passed, and the first failure in words."""

    passed: int
    total: int
    error: str | None  # None when every test passed and the program ran

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0


def _is_expression(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return True


def _calls(expression: str, entry_point: str) -> bool:
    """Whether ``expression`` calls the function under test."""
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point
               for node in ast.walk(ast.parse(expression, mode="eval")))


def _test(call: str, expected: str, entry_point: str) -> Case | None:
    call, expected = call.strip(), expected.strip()
    if _is_expression(call) and _is_expression(expected) and _calls(call, entry_point):
        return Case(call, expected)
    return None


def doctest_tests(prompt: str, entry_point: str) -> list[Case]:
    """The examples in the problem's docstring: ``>>> call`` followed by its output line,
    or one-line ``call == / ➞ / => output`` examples."""
    lines, tests = prompt.splitlines(), []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">>>") and i + 1 < len(lines) and not lines[i + 1].strip().startswith(">>>"):
            found = _test(stripped[3:], lines[i + 1], entry_point)
        elif match := _ARROW.match(line):
            found = _test(match["call"], match["expected"], entry_point)
        else:
            found = None
        if found is not None and found not in tests:
            tests.append(found)
    return tests


def assert_tests(text: str, entry_point: str) -> list[Case]:
    """The ``assert call == expected`` lines in a test-writer's reply (other lines ignored)."""
    tests = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("assert "):
            continue
        try:
            node = ast.parse(stripped).body[0]
        except (SyntaxError, ValueError, IndexError):
            continue
        test = node.test if isinstance(node, ast.Assert) else None
        if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
            found = _test(ast.unparse(test.left), ast.unparse(test.comparators[0]), entry_point)
            if found is not None and found not in tests:
                tests.append(found)
    return tests


def extract_code(reply: str) -> str:
    """The code in a model's reply: the fenced block defining the most, else the whole reply;
    a trailing ``if __name__ == ...`` block (which would wait for input) is cut."""
    blocks = _FENCE.findall(reply) or [reply]
    code = max(blocks, key=lambda block: block.count("def "))
    return _MAIN_GUARD.sub("", textwrap.dedent(code)).rstrip() + "\n"


def program(prompt: str, entry_point: str, reply: str) -> str:
    """A runnable program from the problem's prompt and a model's reply. A reply that
    defines the function is appended to the prompt (whose function, a bare docstring, it
    redefines; the prompt's imports and helpers stay); a reply that is only a body is
    indented under the prompt's signature."""
    code = extract_code(reply)
    if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", code, re.MULTILINE):
        return f"{prompt.rstrip()}\n\n\n{code}"
    return prompt + textwrap.indent(code, "    ")


def harness(source: str, tests: list[Case]) -> str:
    """``source`` followed by code that runs each test and prints the outcomes."""
    cases = [(t.call, t.expected) for t in tests]
    return f"""{source}


def __run_tests():
    outcomes = []
    for call, expected in {cases!r}:
        try:
            want = eval(expected)
            got = eval(call)
        except Exception as exc:
            outcomes.append(f"{{call}} raised {{type(exc).__name__}}: {{exc}}"[:300])
            continue
        close = isinstance(got, float) and isinstance(want, (int, float)) and abs(got - want) <= 1e-6
        outcomes.append(None if got == want or close else f"{{call}} returned {{got!r}}, expected {{want!r}}"[:300])
    return outcomes


{result_line("__run_tests()")}
"""


def run_tests(source: str, tests: list[Case], limits: Limits = CANDIDATE_LIMITS) -> Report:
    """Run ``source`` against ``tests`` in the sandbox. A program that does not even load
    (syntax error, timeout, refused action) passes none, with its error as the message."""
    outcome: Outcome = run_python(harness(source, tests), limits)
    outcomes = outcome.result() if outcome.ok else None
    if outcomes is None:
        return Report(0, len(tests), f"the program failed: {outcome.error_line()}")
    failures = [message for message in outcomes if message is not None]
    return Report(len(tests) - len(failures), len(tests), failures[0] if failures else None)


def passes_hidden_tests(source: str, test: str, entry_point: str, limits: Limits = CANDIDATE_LIMITS) -> bool:
    """HumanEval's verdict: ``source`` followed by the problem's ``check`` function, called
    on the entry point, runs to the end without an error."""
    return run_python(f"{source}\n\n{test}\n\ncheck({entry_point})\n", limits).ok
