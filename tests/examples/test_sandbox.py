"""The code sandbox of the HumanEval example: each hostile program ends as a failed
``Outcome`` within its limits, and nothing it tries reaches outside its run."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from examples.humaneval.sandbox import Limits, Status, result_line, run_python, sandbox_kind

FAST = Limits(seconds=2.0, memory_mb=256)


def test_correct_code_passes_and_reports_its_result():
    outcome = run_python("def f(x):\n    return x + 1\nassert f(1) == 2\n" + result_line("{'n': f(2)}"), FAST)
    assert outcome.status is Status.OK and outcome.ok
    assert outcome.result() == {"n": 3}


def test_syntax_error_and_failed_assertion_fail_with_the_exception():
    syntax = run_python("def f(:\n    pass\n", FAST)
    assert syntax.status is Status.ERROR and "SyntaxError" in syntax.error_line()
    failed = run_python("assert 1 == 2, 'wrong answer'\n", FAST)
    assert failed.status is Status.ERROR and failed.error_line() == "AssertionError: wrong answer"


def test_infinite_loop_is_killed_at_the_time_limit():
    start = time.perf_counter()
    outcome = run_python("while True:\n    pass\n", Limits(seconds=1.0))
    assert outcome.status is Status.TIMEOUT
    assert time.perf_counter() - start < 5  # 1 s limit, plus process start and teardown


def test_sleeping_forever_is_killed_too():
    outcome = run_python("import time\ntime.sleep(1000)\n", Limits(seconds=0.5))
    assert outcome.status is Status.TIMEOUT and outcome.seconds < 4


def test_huge_allocation_is_a_memory_failure():
    outcome = run_python("x = bytearray(2 * 1024 ** 3)\n", FAST)
    assert outcome.status is Status.MEMORY


def test_output_flood_is_cut_at_the_file_size_limit():
    outcome = run_python("while True:\n    print('x' * 1000)\n", Limits(seconds=5.0, output_bytes=100_000))
    # Python ignores SIGXFSZ, so the write past RLIMIT_FSIZE raises, long before the time limit
    assert outcome.status is Status.ERROR and "File too large" in outcome.error_line()
    assert outcome.seconds < 4 and len(outcome.stdout) <= 4000


@pytest.mark.parametrize("source", [
    "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=1)\n",
    "import _socket\n_socket.socket().connect(('1.1.1.1', 80))\n",
])
def test_network_is_blocked(source):
    assert run_python(source, FAST).status is Status.BLOCKED


def test_network_namespace_has_no_route_even_without_the_hook():
    if sandbox_kind() != "namespaces":
        pytest.skip("unshare cannot create user/network namespaces here; the audit hook alone blocks sockets")
    import subprocess

    from examples.humaneval import sandbox

    probe = ("import socket\ntry:\n    socket.create_connection(('1.1.1.1', 80), timeout=2)\n"
             "except OSError as e:\n    print('unreachable', e.errno)\n")
    out = subprocess.run([*sandbox._UNSHARE, "python3", "-I", "-c", probe], capture_output=True, text=True,
                         timeout=30)
    assert out.stdout.startswith("unreachable")


@pytest.mark.parametrize("source", [
    "import os\nos.system('touch {target}')\n",
    "import subprocess\nsubprocess.run(['touch', '{target}'])\n",
    "import os\nos.fork()\n",
    "import ctypes\n",
    "open('{target}', 'w').write('owned')\n",
    "import os\nos.open('{target}', os.O_WRONLY | os.O_CREAT)\n",
    "import os\nos.remove('{victim}')\n",
    "import shutil\nshutil.rmtree('{victim_dir}')\n",
    "import os\nos.kill(1, 9)\n",
])
def test_escapes_are_refused_and_leave_the_outside_untouched(tmp_path: Path, source: str):
    target, victim = tmp_path / "pwned", tmp_path / "keep.txt"
    victim.write_text("precious")
    outcome = run_python(source.format(target=target, victim=victim, victim_dir=tmp_path), FAST)
    assert outcome.status is Status.BLOCKED, outcome.stderr
    assert not target.exists() and victim.read_text() == "precious"


def test_writes_inside_the_working_directory_work_and_are_removed_afterwards():
    source = ("import os\nopen('scratch.txt', 'w').write('hi')\nos.mkdir('sub')\n"
              + result_line("{'cwd': os.getcwd(), 'read': open('scratch.txt').read()}"))
    outcome = run_python(source, FAST)
    assert outcome.ok, outcome.stderr
    assert outcome.result()["read"] == "hi"
    assert not Path(outcome.result()["cwd"]).exists()


def test_no_secrets_inherited_and_stdin_closed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    source = "import os, sys\n" + result_line("{'env': sorted(os.environ), 'stdin': sys.stdin.read()}")
    outcome = run_python(source, FAST)
    assert outcome.ok, outcome.stderr
    assert "OPENAI_API_KEY" not in outcome.result()["env"] and outcome.result()["stdin"] == ""
    assert os.environ["OPENAI_API_KEY"] == "sk-secret"  # the parent's own environment is untouched
