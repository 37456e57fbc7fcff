"""Exception classes. Every error optimas-lg raises on purpose is an ``OptimasError``
whose message says what went wrong, where, and what to do about it."""

import re
from typing import Any


class OptimasError(Exception):
    """Base class of all optimas-lg errors."""


class StoreError(OptimasError):
    """The run store cannot be opened, written or read."""


class JobRunningError(StoreError):
    """A job to resume is still running in another process: two processes driving one job
    would spend its budget twice and interleave its records."""


class SchemaVersionError(StoreError):
    """The store was written by an incompatible version of optimas-lg."""


class KnobError(OptimasError):
    """A knob declaration in a context schema is invalid."""


class TargetError(OptimasError):
    """A ``path.py:attr`` / ``module:attr`` target cannot be loaded or is the wrong kind."""


class DataError(OptimasError):
    """A dataset file or row is malformed."""


class MetricError(OptimasError):
    """The user's metric raised or returned something that is not a score."""


class ModelNotFoundError(OptimasError):
    """A local model or adapter name does not resolve to anything on disk."""


class ModelServerError(OptimasError):
    """The local model server is down or answered with an error."""


class ReplayError(OptimasError):
    """A recorded node call cannot be replayed."""


class LRFError(OptimasError):
    """A local reward function cannot be trained, loaded or used."""


class SerdeError(OptimasError):
    """A recorded value cannot be turned back into a Python object."""


class SettingsError(OptimasError, ValueError):
    """An optimize setting that does not exist (a typo, or a job stored by another version)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a batch of runs part-way; ``done`` is what finished (recorded) and
    ``pending`` how many runs never finished. A ``KeyboardInterrupt``, so code that does
    not handle it stops as on any Ctrl-C."""

    def __init__(self, done: Any, pending: int) -> None:
        super().__init__(f"interrupted: {pending} runs not done")
        self.done = done
        self.pending = pending


class PublishError(OptimasError):
    """A job cannot be published: not an optimize job, not finished, or its knobs do not fit the graph."""


class ServerError(OptimasError):
    """A LangGraph Server is unreachable or refused a request."""


class RunInterrupted(OptimasError):
    """A run stopped at LangGraph's ``interrupt()`` (a human-in-the-loop pause): it has no
    final output to score, so it is a failed run, never a score."""


class StepTimeout(OptimasError):
    """A step of a run took longer than the graph's ``step_timeout`` (LangGraph's own
    setting): a failed run that names the nodes still running, and the job goes on."""


class ServerRunError(OptimasError):
    """A run failed on a LangGraph Server (a node raised there): a failed run, recorded
    like a node failing in this process, not a reason to stop the batch."""


_PYDANTIC_HEADER = re.compile(r"ValidationError: \d+ validation errors? for \S+$")
_TASK_NOTE = re.compile(r"During task with name '([^']+)' and id ")


def error_line(recorded: str) -> str:
    """The line of a recorded traceback that states the error (``Type: message``).

    The traceback's last line is not it when the error has notes: LangGraph notes every
    error raised in a node with "During task with name ... and id ...", and the node it
    names is added to the line (``TypeError: ... (in node 'answer')``); in a subgraph it
    notes the inner node first, then the parent's (``(in node 'rank' of subgraph node 'triage')``).

    A pydantic ``ValidationError`` keeps its first field and problem, which it states on
    the two lines after "N validation error(s) for Model".
    """
    lines = recorded.strip().splitlines()
    start = max((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")),
                default=-1)
    at = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()), None)
    if at is None:
        return lines[-1] if lines else ""
    line = lines[at]
    if _PYDANTIC_HEADER.search(line) and at + 2 < len(lines):
        line = f"{line}: {lines[at + 1].strip()}: {lines[at + 2].strip()}"
    nodes = list(dict.fromkeys(m.group(1) for m in map(_TASK_NOTE.match, lines[at:]) if m))  # innermost first
    if not nodes or f"node {nodes[-1]!r}" in line:
        return line
    return f"{line} (in node {' of subgraph node '.join(repr(n) for n in nodes)})"

