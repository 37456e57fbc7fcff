"""``optimas_lg.optimize``: the Python entry point of the optimizer loop."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

from optimas_lg.data import Example, Metric
from optimas_lg.errors import OptimasError
from optimas_lg.graph.system import System
from optimas_lg.home import storage_dir
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.graph import LoopState, build_optimizer_graph, register_workspace, workspace_for
from optimas_lg.loop.workspace import Workspace
from optimas_lg.store import Store
from optimas_lg.store import models as m

ProgressFn = Callable[[str, dict[str, Any]], None]


@dataclass
class Result:
    """The outcome of an optimization: the best knob values (also as an instance of the
    graph's context schema, ready for ``graph.invoke(x, context=result.best_config)``),
    scores before and after, the decision history and the store job id."""

    job_id: int
    best_knobs: dict[str, Any]
    best_config: Any
    initial_knobs: dict[str, Any]
    val_before: float
    val_after: float
    test_before: float | None
    test_after: float | None
    history: list[dict[str, Any]]
    stop_reason: str | None
    report: str | None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("best_config")
        return data


def checkpointer() -> SqliteSaver:
    """The loop's LangGraph checkpointer: ``checkpoints.db`` in the storage home."""
    conn = sqlite3.connect(storage_dir() / "checkpoints.db", check_same_thread=False)
    return SqliteSaver(conn)


def _thread(job_id: int) -> dict[str, Any]:
    return {"configurable": {"thread_id": f"optimize-{job_id}"}, "recursion_limit": 100_000}


def optimize(
    target: Any,
    trainset: Sequence[Example],
    metric: Metric,
    valset: Sequence[Example] | None = None,
    testset: Sequence[Example] | None = None,
    *,
    config: OptimizeConfig | None = None,
    store: Store | str | None = None,
    resume: int | None = None,
    progress: ProgressFn | None = None,
    **budget: Any,
) -> Result:
    """Optimize the knobs of a LangGraph graph end to end.

    ``target`` is a ``StateGraph`` builder, a compiled graph, a factory or a
    ``"file.py:attr"`` name; ``metric(example, output) -> float``. Budget limits
    (``max_iterations``, ``max_system_runs``, ``max_llm_tokens``, ``max_seconds``,
    ``patience``) may be given as keywords. ``resume=job_id`` continues a stopped job
    from its last completed step.
    """
    config = config or OptimizeConfig()
    if budget:
        config = dataclasses.replace(config, budget=dataclasses.replace(config.budget, **budget))
    store = Store.open(store)
    system = System.load(target)
    if resume is None:
        job_id = store.create_job("optimize", system.name, {"config": config.to_dict()})
    else:
        job_id = _check_resumable(store, resume)
    register_workspace(Workspace.create(system, metric, trainset, valset, testset, store, config, job_id))
    return _drive(store, job_id, resume is not None, progress)


def resume_job(job_id: int, store: Store | str | None = None, progress: ProgressFn | None = None) -> Result:
    """Continue a job started from named targets and data files (the CLI's ``--resume``)."""
    store = Store.open(store)
    job = store.get(m.Job, _check_resumable(store, job_id))
    if "spec" not in job.meta:
        raise OptimasError(f"job {job_id} was started from Python objects; resume it with "
                           f"optimas_lg.optimize(..., resume={job_id}) and the same objects")
    spec = JobSpec(**job.meta["spec"])
    config = OptimizeConfig.from_dict(job.meta["config"])
    register_workspace(Workspace.from_spec(spec, config, store, job_id))
    return _drive(store, job_id, True, progress)


def optimize_spec(spec: JobSpec, config: OptimizeConfig, store: Store | str | None = None,
                  progress: ProgressFn | None = None) -> Result:
    """Start a job from named targets and data files, so that it can be resumed by id."""
    store = Store.open(store)
    job_id = spec.create_job(store, config)
    register_workspace(Workspace.from_spec(spec, config, store, job_id))
    return _drive(store, job_id, False, progress)


def _check_resumable(store: Store, job_id: int) -> int:
    job = store.get(m.Job, job_id)
    if job is None or job.kind != "optimize":
        raise OptimasError(f"no optimization job {job_id} in store {store.url}")
    return job_id


def _drive(store: Store, job_id: int, resuming: bool, progress: ProgressFn | None) -> Result:
    saver = checkpointer()
    try:
        graph = build_optimizer_graph().compile(checkpointer=saver)
        thread = _thread(job_id)
        snapshot = graph.get_state(thread)
        # A finished thread has no tasks left. (``next`` alone is not enough: it omits a
        # task whose writes were saved just before a kill, which resuming still applies.)
        if resuming and snapshot.values and not snapshot.tasks:
            values = snapshot.values
        else:
            stream = graph.stream(None if resuming else {"job_id": job_id}, thread, stream_mode="updates")
            for chunk in stream:
                for node, update in chunk.items():
                    if progress is not None and update:
                        progress(node, {**graph.get_state(thread).values, **update})
            values = graph.get_state(thread).values
    finally:
        saver.conn.close()
    return _result(values)


def _result(values: LoopState) -> Result:
    ws = workspace_for(values["job_id"])
    initial = ws.store.get(m.ConfigVersion, values["initial_config_id"]).values
    return Result(
        job_id=values["job_id"], best_knobs=values["current_knobs"],
        best_config=ws.system.context(values["current_knobs"]), initial_knobs=initial,
        val_before=values["baseline_val"], val_after=values["current_val"],
        test_before=values.get("test_before"), test_after=values.get("test_after"),
        history=values.get("history", []), stop_reason=values.get("stop_reason"), report=values.get("report"))

