"""What the optimizer loop keeps between steps (``LoopState``, checkpointed, shown in
Studio) and what one run of it is given (``LoopContext``, LangGraph's run context)."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any

from typing_extensions import TypedDict

from optimas_lg.errors import OptimasError
from optimas_lg.loop.config import JobSpec, OptimizeConfig
from optimas_lg.loop.workspace import Workspace
from optimas_lg.lrf.collect import stored_pairs
from optimas_lg.store import Store
from optimas_lg.store import models as m


class LoopState(TypedDict, total=False):
    """Ids, scores and the JSON of the loop's records (``optimas_lg.loop.records``);
    ``history`` holds one entry per finished stage or round (``records.entry``)."""

    job_id: int
    iteration: int
    initial_config_id: int
    current_config_id: int
    current_knobs: dict[str, Any]
    current_val: float
    current_val_scores: list[float | None]
    baseline_val: float
    baseline_error: str | None  # the first failed baseline val run's error line, if any failed
    test_before: float | None
    test_after: float | None
    lrf_path: str | None
    node: str | None
    proposal: dict[str, Any] | None
    decision: dict[str, Any] | None
    rounds_without_gain: int
    round_started: float  # seconds spent when this round's pick_node began
    slowest_round: float  # the longest wall time of a finished round: whether another fits in max_seconds
    rejected: list[dict[str, Any]]  # changes the gate rejected since the last accepted one, with the LRF then
    spent: dict[str, Any]
    last_event_id: int  # the job's newest event when the last step finished (newer ones: a killed attempt's)
    history: Annotated[list[dict[str, Any]], operator.add]
    stop_reason: str | None
    report: str | None


@dataclass
class LoopContext:
    """The run context of the optimizer loop (LangGraph's ``Runtime.context``).

    From Python and the CLI, ``workspace`` carries the live job. From Studio the other
    fields name the job's pieces (the assistant's editable configuration) under the names
    the API and the CLI use: ``settings`` (``--settings``), ``config`` (the knob values to
    start from, ``--config``), ``seed`` and the budget limits override it. The first node
    that needs the workspace builds it from them (or, for a job that exists, from the
    spec stored with the job), and it lives as long as this run.
    """

    target: str | None = None
    metric: str | None = None
    train: str | None = None
    val: str | None = None
    test: str | None = None
    inputs: list[str] | None = None
    labels: list[str] | None = None
    key: str = "id"
    store: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    max_iterations: int | None = None
    max_system_runs: int | None = None
    max_llm_tokens: int | None = None
    max_seconds: float | None = None
    patience: int | None = None
    workspace: Any = None

    def spec(self) -> JobSpec:
        """The job's pieces as named by this context (Studio's new jobs)."""
        missing = [name for name in ("target", "metric", "train") if not getattr(self, name)]
        if missing:
            raise OptimasError(f"the optimizer's context names no {', '.join(missing)}: set them in the "
                               "assistant's configuration (e.g. target 'path/agent.py:builder')")
        return JobSpec(self.target, self.metric, self.train, self.val, self.test, self.inputs,  # type: ignore[arg-type]
                       self.labels, self.key)

    def options(self) -> OptimizeConfig:
        """The job's settings with this context's seed, warm start and limits applied."""
        return OptimizeConfig.from_dict(self.settings).with_options(
            seed=self.seed, initial_knobs=self.config, max_iterations=self.max_iterations,
            max_system_runs=self.max_system_runs, max_llm_tokens=self.max_llm_tokens, max_seconds=self.max_seconds,
            patience=self.patience)

    def job(self, state: LoopState) -> Workspace:
        """The live workspace of the job in ``state``, with the LRF version the state names."""
        ws = self.workspace
        if ws is None or ws.job_id != state["job_id"]:
            ws = self.workspace = _workspace_of_job(Store(self.store), state["job_id"])
        if state.get("lrf_path") and ws.rewards.path != state["lrf_path"]:
            ws.rewards.load(state["lrf_path"], stored_pairs(ws.store, ws.job_id, types=ws.system.types))
        return ws


def _workspace_of_job(store: Store, job_id: int) -> Workspace:
    job = store.get(m.Job, job_id)
    if job is None or "spec" not in (job.meta or {}):
        raise OptimasError(f"job {job_id} in store {store.display_url} names no target and data to rebuild it from; "
                           f"resume it with optimas_lg.optimize(..., resume={job_id}) and the same objects")
    return Workspace.from_spec(JobSpec(**job.meta["spec"]), OptimizeConfig.from_dict(job.meta["config"]), store,
                               job_id)
