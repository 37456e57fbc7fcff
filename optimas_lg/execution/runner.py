"""Run a dataset through a system under one knob assignment, record every run, score it.

Runs go concurrently: on threads with ``invoke`` for ordinary graphs, on one event
loop with ``ainvoke`` when some node is async-only (sync nodes would block the loop,
so threads are the default). Results keep the examples' order and ids; they are never
matched to inputs by completion order. A node or metric that raises makes a *failed*
run (status ``failed``, the traceback in ``error``, score ``None``), never a score.

Every run is the user's own top-level run: it never inherits the config of a graph it
is called from (``isolated``), and async runs share one event loop per process
(``event_loop``). Ctrl-C stops a batch at once: queued runs are dropped, runs in flight
on threads finish (async ones are cancelled), and ``Interrupted`` carries what finished.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.runnables.config import var_child_runnable_config
from tqdm.auto import tqdm

from optimas_lg.data import Example, Metric, evaluate_metric
from optimas_lg.errors import Interrupted, MetricError, OptimasError, RunInterrupted, ServerError, StepTimeout
from optimas_lg.execution.recorder import Recorder, arecord_stream, record_stream
from optimas_lg.execution.server import Server, ServerGraph
from optimas_lg.graph import serde
from optimas_lg.graph.system import System, with_runtime
from optimas_lg.store import Store
from optimas_lg.store.models import utcnow

T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


def isolated(fn: F) -> F:
    """Run ``fn`` outside any enclosing LangGraph run.

    LangChain hands a node's config to everything invoked inside it through a context
    variable, so a graph run from a node of another graph (the optimizer loop, Studio)
    would become its subgraph: the outer checkpointer (a ``SqliteSaver`` has no async
    methods and is not thread-safe), thread, namespace, callbacks and recursion limit.
    """
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            token = var_child_runnable_config.set(None)
            try:
                return await fn(*args, **kwargs)
            finally:
                var_child_runnable_config.reset(token)

        return awrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = var_child_runnable_config.set(None)
        try:
            return fn(*args, **kwargs)
        finally:
            var_child_runnable_config.reset(token)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class RunResult:
    """One example's run: the final output and its score, or the error that stopped it."""

    run_id: str
    example_key: str
    output: Any
    score: float | None
    feedback: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RunSummary:
    """All runs of a dataset pass, in the order of the examples."""

    results: list[RunResult]
    job_id: int | None = None
    config_id: int | None = None
    n_node_calls: int = 0
    n_llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    elapsed_s: float = 0.0

    @property
    def n_runs(self) -> int:
        return len(self.results)

    @property
    def n_failed(self) -> int:
        return sum(not r.ok for r in self.results)

    @property
    def scores(self) -> list[float]:
        return [r.score for r in self.results if r.score is not None]

    @property
    def mean(self) -> float | None:
        """Mean score over successful runs (``None`` when every run failed)."""
        scores = self.scores
        return sum(scores) / len(scores) if scores else None

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "n_runs": self.n_runs, "n_failed": self.n_failed, "job_id": self.job_id,
                "config_id": self.config_id, "n_node_calls": self.n_node_calls, "n_llm_calls": self.n_llm_calls,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "elapsed_s": round(self.elapsed_s, 3)}


class Counts:
    """Thread-safe totals of recorded node calls, LLM calls and tokens over runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values = {"n_node_calls": 0, "n_llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def add(self, rec: Recorder | None) -> None:
        if rec is not None:
            with self.lock:
                for key in self.values:
                    self.values[key] += getattr(rec, key)


@dataclass
class Invocation:
    """Everything one recorded run needs besides the graph: input, knobs and the ``Run`` row fields."""

    example: Example
    knobs: dict[str, Any]
    inputs: Any
    config: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _prepare(system: System, graph: Any, inv: Invocation,
             store: Store | None) -> tuple[dict[str, Any], Any, Recorder | None]:
    config = system.config(inv.knobs, **inv.config)
    if not isinstance(graph, ServerGraph):  # a server run uses the server's store
        config = with_runtime(config, store=system.run_store())
    recorder = Recorder(store, inv.run_id, system.knob_values(inv.knobs), system.knobs,
                        from_stream=isinstance(graph, ServerGraph)) if store else None
    return config, system.context(inv.knobs), recorder


def _conclude(inv: Invocation, metric: Metric, recorder: Recorder | None, output: Any,
              error: BaseException | None, t0: float, started: Any, counts: Counts | None) -> RunResult:
    score = feedback = err = None
    if error is None and isinstance(output, Mapping) and output.get("__interrupt__"):
        error = RunInterrupted(
            f"the run stopped at interrupt() ({_shown(output['__interrupt__'])}): a human-in-the-loop pause has no "
            "final output to score. optimas-lg runs each example start to end, so answer the interrupt inside the "
            "graph when optimizing (e.g. from the example's inputs) or leave it out")
    if error is None:
        try:
            result = evaluate_metric(metric, inv.example, output)
            score, feedback = result.value, result.feedback
        except MetricError as exc:
            error = exc
    if error is not None:
        err = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    if recorder is not None:
        recorder.finish(example_key=inv.example.key, inputs=serde.to_json(inv.example.inputs),
                        output=serde.to_json(output), status="failed" if err else "done", score=score,
                        feedback=feedback, error=err, started_at=started, latency_s=time.perf_counter() - t0,
                        **inv.run)
        if counts is not None:
            counts.add(recorder)
    return RunResult(inv.run_id, inv.example.key, output, score, feedback, err)


def _timed_out(error: Exception, graph: Any, recorder: Recorder | None) -> Exception:
    """LangGraph's own ``TimeoutError`` for a step past ``step_timeout`` (one a node raised
    carries LangGraph's "During task" note), said as a ``StepTimeout`` naming the limit and
    the nodes that ran that long; other errors as they are."""
    limit = getattr(graph, "step_timeout", None)
    if limit is None or not isinstance(error, TimeoutError) or getattr(error, "__notes__", None):
        return error
    slow = recorder.nodes_slower_than(limit) if recorder is not None else []
    where = f" (in node {', '.join(repr(n) for n in slow)})" if slow else ""
    return StepTimeout(f"a step of the run took longer than the graph's step_timeout of {limit:g} s and was "
                       f"abandoned{where}; raise graph.step_timeout if the step needs more time"
                       ).with_traceback(error.__traceback__)


def _shown(interrupts: Any) -> str:
    values = [getattr(i, "value", i) for i in (interrupts if isinstance(interrupts, (list, tuple)) else [interrupts])]
    text = ", ".join(repr(v) for v in values)
    return text if len(text) <= 200 else text[:197] + "..."


@isolated
def run_one(system: System, graph: Any, inv: Invocation, metric: Metric, store: Store | None,
            counts: Counts | None = None) -> RunResult:
    """Invoke once (recorded when ``store`` is given), score, and write the run.

    ``graph`` is the compiled graph or a ``ServerGraph``; a server that cannot be reached
    or refuses the run raises ``ServerError`` (no run to record), while a run that fails
    on it is a failed run like any other."""
    config, context, recorder = _prepare(system, graph, inv, store)
    t0, started, output, error = time.perf_counter(), utcnow(), None, None
    try:
        if recorder is None:
            output = graph.invoke(inv.inputs, config, context=context)
        else:
            output = record_stream(graph, inv.inputs, config, context, recorder)
    except ServerError:
        raise
    except Exception as exc:  # a failing node is a failed run, recorded with its traceback
        error = _timed_out(exc, graph, recorder)
    return _conclude(inv, metric, recorder, output, error, t0, started, counts)


@isolated
async def arun_one(system: System, graph: Any, inv: Invocation, metric: Metric, store: Store | None,
                   counts: Counts | None = None) -> RunResult:
    """The async form of ``run_one``."""
    config, context, recorder = _prepare(system, graph, inv, store)
    t0, started, output, error = time.perf_counter(), utcnow(), None, None
    try:
        if recorder is None:
            output = await graph.ainvoke(inv.inputs, config, context=context)
        else:
            output = await arecord_stream(graph, inv.inputs, config, context, recorder)
    except Exception as exc:
        error = _timed_out(exc, graph, recorder)
    return _conclude(inv, metric, recorder, output, error, t0, started, counts)


class _LoopThread:
    """One event loop on a daemon thread, started on first use (again after a fork)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None

    def get(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None or self.thread is None or not self.thread.is_alive():
                self.loop = asyncio.new_event_loop()
                self.thread = threading.Thread(target=self.loop.run_forever, name="optimas-async", daemon=True)
                self.thread.start()
            return self.loop


_LOOP = _LoopThread()


def event_loop() -> asyncio.AbstractEventLoop:
    """The event loop every async run of this process uses.

    One loop for the process, not one per batch: async clients (httpx, OpenAI) bind their
    connections to the loop that first used them, so a model built at import time fails
    with "Event loop is closed" once a batch's loop is gone.
    """
    return _LOOP.get()


def run_coroutine(make: Callable[[], Awaitable[T]]) -> T:
    """Run ``make()`` on ``event_loop()`` and wait for it, from any thread but that loop's.

    The coroutine sees the caller's context variables. On Ctrl-C it is cancelled and
    awaited before ``KeyboardInterrupt`` propagates.
    """
    loop = event_loop()
    if threading.current_thread() is _LOOP.thread:
        raise OptimasError("optimas-lg runs cannot be started from a coroutine on its own event loop; "
                           "await the graph directly or start them from a thread")
    finished = threading.Event()
    box: dict[str, asyncio.Task[Any]] = {}

    def start() -> None:  # runs on the loop, in a copy of the caller's context
        box["task"] = loop.create_task(make())  # type: ignore[arg-type]
        box["task"].add_done_callback(lambda _: finished.set())

    loop.call_soon_threadsafe(start)
    try:
        finished.wait()
    except KeyboardInterrupt:
        loop.call_soon_threadsafe(lambda: box["task"].cancel())
        finished.wait()
        raise
    return box["task"].result()


def map_concurrent(items: Sequence[T], sync_fn: Callable[[T], R], async_fn: Callable[[T], Awaitable[R]],
                   use_async: bool, concurrency: int, on_done: Callable[[R], None] | None = None) -> list[R]:
    """Apply ``sync_fn`` on threads or ``async_fn`` on one loop; results in the order of ``items``.

    ``on_done`` sees each result as it finishes. On Ctrl-C nothing new starts, runs in
    flight on threads finish (async ones are cancelled), and ``Interrupted`` carries the
    finished results in order.
    """
    concurrency = max(1, concurrency)
    results: list[Any] = [None] * len(items)
    finished = [False] * len(items)

    def done(i: int, result: Any) -> None:
        results[i], finished[i] = result, True
        if on_done:
            on_done(result)

    try:
        if use_async:
            async def main() -> None:
                sem = asyncio.Semaphore(concurrency)

                async def one(i: int) -> None:
                    async with sem:
                        result = await async_fn(items[i])
                    done(i, result)

                await asyncio.gather(*(one(i) for i in range(len(items))))

            run_coroutine(main)
        else:
            _map_threads(items, sync_fn, concurrency, done)
    except KeyboardInterrupt as exc:
        kept = [r for r, ok in zip(results, finished) if ok]
        raise Interrupted(kept, len(items) - len(kept)) from exc
    return results


def _map_threads(items: Sequence[T], fn: Callable[[T], R], concurrency: int,
                 done: Callable[[int, R], None]) -> None:
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="optimas-run")
    futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
    pending = set(futures)
    try:
        while pending:
            ready, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(ready, key=futures.__getitem__):
                done(futures[future], future.result())
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)  # drop the queued runs, let those in flight finish
        for future in sorted(pending, key=futures.__getitem__):
            if future.done() and not future.cancelled() and future.exception() is None:
                done(futures[future], future.result())
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@isolated
def run_examples(system: System, examples: Sequence[Example], metric: Metric, knobs: dict[str, Any] | None,
                 store: Store, job_id: int | None = None, config_id: int | None = None, concurrency: int = 8,
                 purpose: str = "eval", progress: bool = True, server: Server | None = None) -> RunSummary:
    """Run every example under ``knobs`` (defaults for the rest), record and score each run.

    Every run is one ``Run`` row (``purpose``, ``job_id``, ``config_id``) with its node and
    LLM calls. The store's writer is flushed before returning, so the rows can be read.
    On Ctrl-C, raises ``Interrupted`` whose ``done`` is the ``RunSummary`` of the finished runs.
    With a ``server``, the runs execute there (``concurrency`` of them in flight).
    """
    knobs = system.knob_values(knobs)  # fail fast on a bad assignment, before any run
    graph = system.compile() if server is None else ServerGraph(server, system.compile().output_channels)
    writer = store.writer  # start the writer here, not lazily from several run threads at once
    run = {"job_id": job_id, "config_id": config_id, "purpose": purpose}
    invocations = [Invocation(ex, knobs, ex.inputs, run=run) for ex in examples]
    counts = Counts()
    bar = tqdm(total=len(invocations), disable=not progress, desc=f"{purpose} runs", unit="run")
    scores: list[float] = []

    def done(result: RunResult) -> None:
        if result.score is not None:
            scores.append(result.score)
        bar.update(1)
        bar.set_postfix(mean=f"{sum(scores) / len(scores):.3f}" if scores else "-",
                        failed=bar.n - len(scores))

    def sync_fn(inv: Invocation) -> RunResult:
        return run_one(system, graph, inv, metric, store, counts)

    async def async_fn(inv: Invocation) -> RunResult:
        return await arun_one(system, graph, inv, metric, store, counts)

    t0 = time.perf_counter()
    try:
        results = map_concurrent(invocations, sync_fn, async_fn, system.is_async and server is None, concurrency,
                                 done)
    except Interrupted as stop:
        summary = RunSummary(stop.done, job_id, config_id, elapsed_s=time.perf_counter() - t0, **counts.values)
        raise Interrupted(summary, stop.pending) from stop.__cause__
    finally:
        bar.close()
        writer.flush()
        if isinstance(graph, ServerGraph):
            graph.close()
    return RunSummary(results, job_id, config_id, elapsed_s=time.perf_counter() - t0, **counts.values)
