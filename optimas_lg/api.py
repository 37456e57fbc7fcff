"""``optimas_lg.optimize`` and friends: the Python entry points of the optimizer loop.

Every entry point loads and checks everything a job needs (settings, target, metric,
data, proposers) before the job exists in the store, runs the loop graph with the job's
``Workspace`` in its run context, and records how the job ended: ``done``, ``failed``
(with the error) or ``interrupted`` (Ctrl-C or SIGTERM), never left ``running``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from optimas_lg.data import Example, Metric
from optimas_lg.errors import OptimasError, SettingsError
from optimas_lg.execution.server import Server
from optimas_lg.graph.system import System
from optimas_lg.loop.budget import Spent
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.graph import build_optimizer_graph
from optimas_lg.loop.progress import ProgressFn, printer
from optimas_lg.loop.records import Decision, Record, entry, read_history
from optimas_lg.loop.state import LoopContext, LoopState
from optimas_lg.loop.workspace import Workspace
from optimas_lg.proposers import ProposerArg
from optimas_lg.store import Store
from optimas_lg.store import models as m
from optimas_lg.store.checkpoints import checkpointer
from optimas_lg.store.lifecycle import job_guard, sigterm_as_interrupt

Progress = ProgressFn | bool | None
"""``True``: print one line per loop step to stderr; ``False``/``None``: silent; or a callable."""


@dataclass
class Result:
    """The outcome of an optimization: the best knob values (also as an instance of the
    graph's context schema, ready for ``graph.invoke(x, context=result.best_config)``),
    scores before and after, the loop's records in order, what the job spent (system
    runs, tokens by source, cost, seconds) and the store job id."""

    job_id: int
    best_knobs: dict[str, Any]
    best_config: Any
    initial_knobs: dict[str, Any]
    val_before: float
    val_after: float
    test_before: float | None
    test_after: float | None
    history: list[Record]
    stop_reason: str | None
    report: str | None
    spent: Spent

    @property
    def decisions(self) -> list[Decision]:
        """The gate's decision of every round, in order."""
        return [r for r in self.history if isinstance(r, Decision)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (without ``best_config``, which is the context schema's own type)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "best_config"}
        return {**data, "history": [entry(r) for r in self.history], "spent": self.spent.to_json()}


def optimize(
    target: Any,
    trainset: Sequence[Example],
    metric: Metric,
    valset: Sequence[Example] | None = None,
    testset: Sequence[Example] | None = None,
    *,
    config: Mapping[str, Any] | Any = None,
    context: Mapping[str, Any] | None = None,
    settings: OptimizeConfig | Mapping[str, Any] | None = None,
    seed: int | None = None,
    store: Store | str | None = None,
    resume: int | None = None,
    proposers: Mapping[str, ProposerArg] | None = None,
    server: Server | None = None,
    progress: Progress = True,
    **budget: Any,
) -> Result:
    """Optimize the knobs of a LangGraph graph end to end.

    ``target`` is a ``StateGraph`` builder, a compiled graph, a factory or a
    ``"file.py:attr"`` name; ``metric(example, output) -> float``. ``config`` warm-starts
    the loop from these knob values (a mapping or an instance of the context schema)
    instead of the defaults; ``context`` fixes the context schema's fields that are not
    knobs (an API key, a user id: the CLI's ``--context``); ``settings`` is every loop
    setting (an ``OptimizeConfig`` or its JSON, as the CLI's ``--settings``); ``seed`` and
    the budget limits
    (``max_iterations``, ``max_system_runs``, ``max_llm_tokens``, ``max_seconds``,
    ``max_cost``, ``patience``) override it by keyword, under the names the CLI and Studio use.
    ``proposers`` replaces the proposer of a knob kind (``{"prompt": MyProposer()}``,
    instances or ``Proposer`` subclasses). ``resume=job_id`` continues a stopped job from
    its last completed step under its own settings (pass the same target, data and metric;
    settings, seed, warm start or budget given again must be the job's, else ``SettingsError``).
    ``server`` runs every system run, node replay and rollout on a LangGraph Server
    (``Server(url, graph_id)``) serving the same graph, the knobs passed as each run's context.
    ``progress`` prints one line per step to stderr; ``False`` silences it, a callable
    ``(step, state)`` replaces it (``optimas_lg.loop.progress.step_line`` words a step).
    """
    if isinstance(config, OptimizeConfig):
        raise SettingsError("optimize(config=...) takes the knob values to start from; pass the OptimizeConfig "
                            "as optimize(settings=...)")
    system = System.load(target, context=dict(context) if context else None)
    store = Store.open(store)
    job = None if resume is None else _resumable(store, resume)
    chosen = settings if isinstance(settings, OptimizeConfig) else OptimizeConfig.from_dict(settings or {})
    chosen = chosen.with_options(seed=seed, initial_knobs=system.knob_values_of(config), **budget)
    if job is not None:
        given = settings is not None or seed is not None or config is not None or any(
            v is not None for v in budget.values())
        chosen = _resumed_config(job, chosen if given else None)
    ws = Workspace.create(system, metric, trainset, valset, testset, store, chosen, proposers=proposers,
                          server=server)
    ws.check_gate_can_decide()
    ws.bind(job.id if job is not None else
            store.create_job("optimize", _target_label(target, ws.system), _job_meta(chosen, proposers, server)))
    return _drive(ws, job is not None, progress)


def optimize_spec(spec: JobSpec, config: OptimizeConfig, store: Store | str | None = None,
                  progress: Progress = True, proposers: Mapping[str, ProposerArg] | None = None,
                  server: Server | None = None) -> Result:
    """Start a job from named targets and data files, so that it can be resumed by id
    (the CLI's ``optimize``); with a ``server``, resuming uses it again."""
    config.validate()
    store = Store.open(store)
    ws = Workspace.from_spec(spec, config, store, proposers=proposers, server=server)
    ws.check_gate_can_decide()
    ws.bind(spec.create_job(store, config, server.to_dict() if server else None))
    return _drive(ws, False, progress)


def resume_job(job_id: int, store: Store | str | None = None, progress: Progress = True,
               proposers: Mapping[str, ProposerArg] | None = None, server: Server | None = None) -> Result:
    """Continue a job started from named targets and data files (the CLI's ``--resume``),
    on the server it ran on unless ``server`` names another."""
    store = Store.open(store)
    job = _resumable(store, job_id)
    if "spec" not in job.meta:
        raise OptimasError(f"job {job_id} was started from Python objects; resume it with "
                           f"optimas_lg.optimize(..., resume={job_id}) and the same objects")
    if server is None and job.meta.get("server"):
        server = Server(**job.meta["server"])
    ws = Workspace.from_spec(JobSpec(**job.meta["spec"]), OptimizeConfig.from_dict(job.meta["config"]), store,
                             job_id, proposers, server)
    return _drive(ws, True, progress)


def _resumed_config(job: m.Job, given: OptimizeConfig | None) -> OptimizeConfig:
    """The settings a resumed job ran under. Settings given again must be the same: a job
    continued under others would be two jobs in one record (its budget, its seed)."""
    stored = OptimizeConfig.from_dict(job.meta["config"])
    if given is None or given == stored:
        return stored
    old, new = _flat(stored.to_dict()), _flat(given.to_dict())
    changed = ", ".join(f"{k} {old.get(k)!r} → {new.get(k)!r}" for k in sorted(old.keys() | new.keys())
                        if old.get(k) != new.get(k))
    raise SettingsError(f"job {job.id} runs under its own settings; resuming it under others ({changed}) would mix "
                        f"two jobs: pass none (or the same), or start a new job")


def _flat(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"budget": {"max_iterations": 3}}`` as ``{"budget.max_iterations": 3}``."""
    flat: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, Mapping) and v:
            flat.update(_flat(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _job_meta(config: OptimizeConfig, proposers: Mapping[str, ProposerArg] | None,
              server: Server | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"config": config.to_dict()}
    if server is not None:
        meta["server"] = server.to_dict()
    if proposers:  # not JSON: named, so the report says which ran
        meta["proposer_overrides"] = {kind: _qualname(p) for kind, p in proposers.items()}
    return meta


def _qualname(proposer: ProposerArg) -> str:
    cls = proposer if isinstance(proposer, type) else type(proposer)
    return f"{cls.__module__}:{cls.__qualname__}"


def _target_label(target: Any, system: System) -> str:
    """What ``store jobs`` shows as the target of a job started from Python: a factory's
    ``module:name``, else the graph's name and first nodes (every unnamed graph is
    "LangGraph", so the nodes tell one agent's jobs from another's)."""
    if isinstance(target, str):
        return target
    name = getattr(target, "__qualname__", None)
    if callable(target) and name and "<" not in name:  # not a lambda or a local function
        return f"{target.__module__}:{name}"
    nodes = list(system.graph.nodes)
    shown = ", ".join(nodes[:4]) + (f" +{len(nodes) - 4}" if len(nodes) > 4 else "")
    return f"{system.name} ({shown})"


def _resumable(store: Store, job_id: int) -> m.Job:
    job = store.get(m.Job, job_id)
    if job is None:
        raise OptimasError(f"no optimization job {job_id} in store {store.display_url}")
    if job.kind != "optimize":
        raise OptimasError(f"job {job_id} in store {store.display_url} is a {job.kind!r} job; only optimize jobs "
                           f"resume (run the `optimas-lg {job.kind}` command again instead)")
    return job


def _drive(ws: Workspace, resuming: bool, progress: Progress) -> Result:
    """Run (or continue) the loop graph for the workspace's job; record how it ended."""
    job_id = ws.job_id
    assert job_id is not None, "bind the workspace to its job first"
    report = printer() if progress is True else (progress or None)
    # the thread is keyed by the store's identity too: a store recreated at the same path
    # (or another store's job with the same id) never continues this job's thread
    thread = {"configurable": {"thread_id": f"optimize-{ws.store.identity}-{job_id}"}, "recursion_limit": 100_000}
    context = LoopContext(store=ws.store.url, workspace=ws)
    if resuming and ws.store.get(m.Job, job_id).status != "done":
        ws.store.claim_job(job_id)  # running again, owned by this process
    with job_guard(ws.store, job_id), sigterm_as_interrupt(), checkpointer(ws.store) as saver:
        graph = build_optimizer_graph().compile(checkpointer=saver)
        snapshot = graph.get_state(thread)
        # A finished thread has no tasks left. (``next`` alone is not enough: it omits a
        # task whose writes were saved just before a kill, which resuming still applies.)
        if not (resuming and snapshot.values and not snapshot.tasks):
            # a job killed before its first checkpoint starts over
            start = None if resuming and snapshot.values else {"job_id": job_id}
            # closing() stops the loop (and its pending checkpoint writes) before the
            # saver's connection closes, even when the progress callback raises
            with contextlib.closing(graph.stream(start, thread, context=context, stream_mode="updates")) as steps:
                for chunk in steps:
                    for node, update in chunk.items():
                        if report is not None and update:
                            report(node, {**graph.get_state(thread).values, **update})
        values: LoopState = graph.get_state(thread).values  # type: ignore[assignment]
    return _result(ws, values)


def _result(ws: Workspace, values: LoopState) -> Result:
    initial = ws.store.get(m.ConfigVersion, values["initial_config_id"]).values
    return Result(
        job_id=values["job_id"], best_knobs=values["current_knobs"],
        best_config=ws.system.context(values["current_knobs"]), initial_knobs=initial,
        val_before=values["baseline_val"], val_after=values["current_val"],
        test_before=values.get("test_before"), test_after=values.get("test_after"),
        history=read_history(values.get("history")), stop_reason=values.get("stop_reason"),
        report=values.get("report"), spent=Spent.from_json(values.get("spent") or {}))
