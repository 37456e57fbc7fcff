"""Run ``optimas-lg`` commands as real processes, cheaply, and kill them at exact points.

Importing optimas-lg (torch, transformers, LangGraph) costs ~10 s of CPU, so a fresh
interpreter per command would not fit the suite's time budget on 2 cores. Commands run
instead in processes forked from a server that imported everything once (the standard
library's ``forkserver``, which itself never runs torch, so forking it is safe). Each
command is a separate process with its own environment, file descriptors and exit code,
and a kill is a real SIGKILL: no ``finally``, no flush, no atexit.

``kill_at`` arms a test-side wrapper around one of the loop's nodes (``optimas_lg.loop.nodes``),
so the process dies at a chosen step deterministically, without hooks in the library.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRELOAD = ["optimas_lg.cli", "optimas_lg.api", "optimas_lg.lrf.model", "optimas_lg.loop.report",
           "transformers.models.bert.modeling_bert", "tests.reliability.harness"]

_context: multiprocessing.context.ForkServerContext | None = None


@dataclass(frozen=True)
class KillAt:
    """Kill -9 the process the first time it reaches ``step`` of the loop: ``before`` the
    step's body runs (its predecessor's checkpoint may still be in flight) or at its
    ``end`` (all its records written, its checkpoint not)."""

    step: str
    when: str = "end"

    def __str__(self) -> str:
        return f"{self.step}:{self.when}"


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    @property
    def killed(self) -> bool:
        return self.code == -signal.SIGKILL


def context() -> multiprocessing.context.ForkServerContext:
    """The fork server, preloaded with optimas-lg (started on first use, once per session)."""
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _context = ctx
    return _context


class Running:
    """A command started with ``launch``; ``wait`` for its ``Outcome``."""

    def __init__(self, proc: multiprocessing.process.BaseProcess, args: list[str], out: Path) -> None:
        self.proc, self.args, self.out = proc, args, out

    def wait(self, timeout: float = 300) -> Outcome:
        self.proc.join(timeout)
        if self.proc.exitcode is None:
            self.proc.kill()
            self.proc.join()
            raise TimeoutError(f"optimas-lg {' '.join(self.args)} ran over {timeout:.0f} s; stderr:\n"
                               f"{(self.out / 'stderr').read_text()}")
        return Outcome(self.proc.exitcode, (self.out / "stdout").read_text(), (self.out / "stderr").read_text())


def launch(args: list[str], env: dict[str, str], out: Path, kill_at: KillAt | None = None,
           start_at: float | None = None) -> Running:
    """Start ``optimas-lg *args`` in its own process with ``env``, its output in files under
    ``out``; with ``start_at`` (a ``time.time()``), it waits for that moment first."""
    out.mkdir(parents=True, exist_ok=True)
    proc = context().Process(target=_main, args=(args, env, str(out), kill_at, start_at))
    proc.start()
    return Running(proc, args, out)


def cli(args: list[str], env: dict[str, str], out: Path, kill_at: KillAt | None = None,
        timeout: float = 300) -> Outcome:
    """``optimas-lg *args`` in its own process, to the end (or its kill)."""
    return launch(args, env, out, kill_at).wait(timeout)


def _main(args: list[str], env: dict[str, str], out: str, kill_at: KillAt | None, start_at: float | None) -> None:
    """The child: the environment and output files of a fresh process, then the CLI."""
    os.chdir(REPO)
    os.environ.clear()
    os.environ.update(env)
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    if kill_at is not None:
        _arm(kill_at)
    import torch

    torch.set_num_threads(1)  # the suite's processes share 2 cores with everything else
    from optimas_lg.cli import app

    sys.argv = ["optimas-lg", *args]
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.time()))
    app(args, prog_name="optimas-lg")


def _arm(kill_at: KillAt) -> None:
    from optimas_lg.loop import nodes

    real = getattr(nodes, kill_at.step)

    def node(state, runtime):
        if kill_at.when == "before":
            _die()
        real(state, runtime)  # its records are written; its checkpoint never will be
        _die()

    node.__name__, node.__doc__ = real.__name__, real.__doc__
    setattr(nodes, kill_at.step, node)


def _die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
