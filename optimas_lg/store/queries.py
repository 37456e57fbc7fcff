"""Named queries over the run store: every read the rest of optimas-lg makes.

Callers ask for "the latest collect call of node k per example" or "a job's events of
one kind", never build SQL themselves; a new store backend then only has to answer
these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select

from optimas_lg.store import models as m
from optimas_lg.store.store import Store

# -- jobs and their spend ---------------------------------------------------------------
UNBUDGETED = ("test",)
"""Purposes of runs no budget counts: the test set's scoring, so that it cannot steer a decision."""


def _runs_of(job_id: int, budgeted: bool) -> list[Any]:
    where = [m.Run.job_id == job_id]
    return where + [m.Run.purpose.not_in(UNBUDGETED)] if budgeted else where


def job_spend(store: Store, job_id: int, budgeted: bool = True) -> tuple[int, int]:
    """(system runs, LLM tokens) recorded for a job so far: those its budget counts, or
    (``budgeted=False``) all of them, the test set's scoring included."""
    where = _runs_of(job_id, budgeted)
    with store.session() as s:
        runs = s.scalar(select(func.count()).select_from(m.Run).where(*where)) or 0
        tokens = s.scalar(
            select(func.coalesce(func.sum(m.LLMCall.prompt_tokens + m.LLMCall.completion_tokens), 0))
            .join(m.Run, m.Run.id == m.LLMCall.run_id).where(*where)
        ) or 0
    return int(runs), int(tokens)


def token_usage(store: Store, job_id: int | None = None, config_id: int | None = None,
                purpose: str | None = None, budgeted: bool = False) -> list[tuple[str | None, str, int, int]]:
    """(node, model, prompt tokens, completion tokens) summed over a job's LLM calls (or the
    whole store's; with ``config_id``/``purpose``, only those runs'; with ``budgeted``, only
    the runs the budget counts); ``node`` is None for a call made outside any node."""
    lc, nc = m.LLMCall, m.NodeCall
    query = (select(nc.node, lc.model, func.coalesce(func.sum(lc.prompt_tokens), 0),
                    func.coalesce(func.sum(lc.completion_tokens), 0))
             .outerjoin(nc, nc.id == lc.node_call_id).group_by(nc.node, lc.model))
    if job_id is not None:
        query = query.join(m.Run, m.Run.id == lc.run_id).where(*_runs_of(job_id, budgeted))
        if config_id is not None:
            query = query.where(m.Run.config_id == config_id)
        if purpose is not None:
            query = query.where(m.Run.purpose == purpose)
    with store.session() as s:
        return [(node, model, int(p), int(c)) for node, model, p, c in s.execute(query).all()]


def node_profile(store: Store, job_id: int, config_id: int, purpose: str
                 ) -> tuple[int, dict[str, tuple[int, float | None]], list[tuple[str | None, str, int, int]]]:
    """How a job's ``purpose`` runs under ``config_id`` went, node by node: the number of
    runs, per node (calls, mean latency in seconds; node calls only, not the state snapshots
    or routes recorded beside them), and (node, model, prompt tokens,
    completion tokens) summed over their LLM calls."""
    runs = (select(m.Run.id).where(m.Run.job_id == job_id, m.Run.config_id == config_id,
                                   m.Run.purpose == purpose)).scalar_subquery()
    nc = m.NodeCall
    with store.session() as s:
        n_runs = s.scalar(select(func.count()).where(m.Run.job_id == job_id, m.Run.config_id == config_id,
                                                     m.Run.purpose == purpose)) or 0
        latency = {node: (int(n), None if mean is None else float(mean)) for node, n, mean in s.execute(
            select(nc.node, func.count(), func.avg(nc.latency_s)).where(nc.run_id.in_(runs), nc.kind == "node")
            .group_by(nc.node))}
    return n_runs, latency, token_usage(store, job_id, config_id, purpose)


def last_event_id(store: Store, job_id: int) -> int:
    """The id of a job's newest optimizer event (0 for none)."""
    with store.session() as s:
        return s.scalar(select(func.max(m.OptimizerEvent.id)).where(m.OptimizerEvent.job_id == job_id)) or 0


def delete_events_after(store: Store, job_id: int, event_id: int) -> int:
    """Drop a job's optimizer events newer than ``event_id``; returns how many."""
    with store.engine.begin() as conn:
        return conn.execute(delete(m.OptimizerEvent).where(m.OptimizerEvent.job_id == job_id,
                                                           m.OptimizerEvent.id > event_id)).rowcount


def find_config(store: Store, values: dict[str, Any], target: str, parent_id: int | None, note: str) -> int | None:
    """The id of a config version with exactly these values, target, parent and note, if any."""
    parent = m.ConfigVersion.parent_id.is_(None) if parent_id is None else m.ConfigVersion.parent_id == parent_id
    rows = store.select(m.ConfigVersion, m.ConfigVersion.target == target, m.ConfigVersion.note == note, parent)
    return next((r.id for r in rows if r.values == values), None)


def latest_job(store: Store, kind: str, status: str | None = None) -> int | None:
    """The id of the newest job of ``kind`` (with ``status``, if given)."""
    where = [m.Job.kind == kind] + ([m.Job.status == status] if status else [])
    with store.session() as s:
        return s.scalar(select(m.Job.id).where(*where).order_by(m.Job.id.desc()).limit(1))


def recent_jobs(store: Store, limit: int) -> list[m.Job]:
    """The newest ``limit`` jobs, newest first."""
    with store.session() as s:
        return list(s.scalars(select(m.Job).order_by(m.Job.id.desc()).limit(limit)))


def job_events(store: Store, job_id: int, kind: str | None = None) -> list[m.OptimizerEvent]:
    """A job's optimizer events (of one ``kind``, or all) in recorded order."""
    where = [m.OptimizerEvent.job_id == job_id]
    if kind is not None:
        where.append(m.OptimizerEvent.kind == kind)
    return store.select(m.OptimizerEvent, *where)


def lrf_checkpoints(store: Store, job_id: int) -> list[m.LRFCheckpoint]:
    """A job's LRF checkpoints, oldest first."""
    return store.select(m.LRFCheckpoint, m.LRFCheckpoint.job_id == job_id)


# -- recorded runs and node calls -------------------------------------------------------
def node_calls(store: Store, job_id: int, node: str, example_keys: Sequence[str] | None = None,
               purpose: str = "collect") -> tuple[list[m.NodeCall], dict[str, str]]:
    """Every successful call of ``node`` in each example's latest finished run of ``purpose``
    in a job, by example and step, and a map from run id to example key.

    The latest run: an example runs again after an accepted change (the adapt step), or
    when a step killed midway is redone, and only its newest run shows the node's inputs
    under the config in force. Every call of that run, not only its last: in an agent loop
    (agent -> tools -> agent) the call that chooses a tool and the one that writes the final
    answer read different states, and a knob may matter to only one."""
    where = [m.Run.job_id == job_id, m.Run.purpose == purpose, m.Run.status == "done"]
    if example_keys is not None:
        where.append(m.Run.example_key.in_(list(example_keys)))
    with store.session() as s:
        rows = s.execute(
            select(m.NodeCall, m.Run.example_key).join(m.Run, m.Run.id == m.NodeCall.run_id)
            .where(*where, m.NodeCall.node == node, m.NodeCall.kind == "node", m.NodeCall.error.is_(None))
            .order_by(m.NodeCall.started_at)
        ).all()
    latest = {key: call.run_id for call, key in rows}  # rows are in start order: the last run wins
    kept = [(call, key) for call, key in rows if latest[key] == call.run_id]
    kept.sort(key=_replayable_order)
    return [call for call, _ in kept], {call.run_id: key for call, key in kept}


def _replayable_order(row: tuple[m.NodeCall, str]) -> tuple[str, int, str]:
    """By example, then step, then inputs: not by start time, which concurrent runs make differ
    from one run of a job to the next, so a seeded sample of the calls drew other inputs."""
    call, key = row
    return key, call.step if call.step is not None else -1, json.dumps(call.inputs, sort_keys=True, default=str)


def run_scores(store: Store, run_ids: Sequence[str]) -> dict[str, float | None]:
    """The final score of each given run (``None`` for a failed or unscored one)."""
    if not run_ids:
        return {}
    with store.session() as s:
        return dict(s.execute(select(m.Run.id, m.Run.score).where(m.Run.id.in_(list(run_ids)))).all())


def run_usage(store: Store, run_ids: Sequence[str]) -> dict[str, tuple[float | None, list[tuple[str, int, int]]]]:
    """Per run: its wall time and (model, prompt tokens, completion tokens) per model it called."""
    if not run_ids:
        return {}
    lc = m.LLMCall
    with store.session() as s:
        out = {rid: (latency, []) for rid, latency in
               s.execute(select(m.Run.id, m.Run.latency_s).where(m.Run.id.in_(list(run_ids)))).all()}
        rows = s.execute(select(lc.run_id, lc.model, func.coalesce(func.sum(lc.prompt_tokens), 0),
                                func.coalesce(func.sum(lc.completion_tokens), 0))
                         .where(lc.run_id.in_(list(run_ids))).group_by(lc.run_id, lc.model)).all()
    for rid, model, p, c in rows:
        out[rid][1].append((model, int(p), int(c)))
    return out


def llm_calls_of(store: Store, node_call_ids: Sequence[str]) -> list[m.LLMCall]:
    """The LLM calls made inside the given node calls, in the order of those calls (then as
    each node made them), so a seeded draw of prompts is the same on every run of a job."""
    if not node_call_ids:
        return []
    position = {call_id: i for i, call_id in enumerate(node_call_ids)}
    found = store.select(m.LLMCall, m.LLMCall.node_call_id.in_(list(node_call_ids)))
    return sorted(found, key=lambda r: (position[r.node_call_id], r.started_at))


def step_calls(store: Store, run_id: str, step: int, kind: str | None = None) -> list[m.NodeCall]:
    """The top-level records of one step of a run (node calls, routes, state snapshots)."""
    nc = m.NodeCall
    where = [nc.run_id == run_id, nc.namespace == "", nc.step == step]
    if kind is not None:
        where.append(nc.kind == kind)
    return store.select(nc, *where)


def state_snapshot(store: Store, run_id: str, step: int) -> m.NodeCall | None:
    """The recorded graph state at the start of a step, if the run streamed it."""
    nc = m.NodeCall
    found = store.select(nc, nc.run_id == run_id, nc.kind == "state", nc.step == step)
    return found[0] if found else None


def top_level_calls(store: Store, run_id: str) -> list[m.NodeCall]:
    """Every top-level record of a run (outside subgraphs)."""
    return store.select(m.NodeCall, m.NodeCall.run_id == run_id, m.NodeCall.namespace == "")


# -- preference pairs -------------------------------------------------------------------
def job_pairs(store: Store, job_id: int, nodes: Sequence[str] | None = None) -> list[m.PreferencePairRow]:
    """A job's stored preference pairs (of ``nodes``, or all)."""
    where: list[Any] = [m.PreferencePairRow.job_id == job_id]
    if nodes is not None:
        where.append(m.PreferencePairRow.node.in_(list(nodes)))
    return store.select(m.PreferencePairRow, *where)


def delete_pairs_of_stage(store: Store, job_id: int, stage: str) -> int:
    """Drop the pairs one collection stage of a job stored; returns how many."""
    ids = [r.id for r in job_pairs(store, job_id) if (r.provenance or {}).get("stage") == stage]
    if ids:
        with store.engine.begin() as conn:
            conn.execute(delete(m.PreferencePairRow).where(m.PreferencePairRow.id.in_(ids)))
    return len(ids)


def run_cost(store: Store, job_id: int, purposes: Sequence[str] = ("collect", "eval")) -> tuple[int, float, int]:
    """(finished runs, their seconds, their LLM tokens) of a job's full system runs of ``purposes``."""
    where = [m.Run.job_id == job_id, m.Run.purpose.in_(list(purposes)), m.Run.status == "done"]
    with store.session() as s:
        runs, seconds = s.execute(select(func.count(), func.coalesce(func.sum(m.Run.latency_s), 0.0))
                                  .where(*where)).one()
        tokens = s.scalar(
            select(func.coalesce(func.sum(func.coalesce(m.LLMCall.prompt_tokens, 0)
                                          + func.coalesce(m.LLMCall.completion_tokens, 0)), 0))
            .join(m.Run, m.Run.id == m.LLMCall.run_id).where(*where)
        ) or 0
    return int(runs), float(seconds), int(tokens)


def nodes_called(store: Store, job_id: int, config_id: int) -> set[str]:
    """The top-level nodes that ran (without error) in a job's runs under one config version."""
    with store.session() as s:
        rows = s.scalars(
            select(m.NodeCall.node).join(m.Run, m.Run.id == m.NodeCall.run_id)
            .where(m.Run.job_id == job_id, m.Run.config_id == config_id, m.NodeCall.kind == "node",
                   m.NodeCall.namespace == "", m.NodeCall.error.is_(None)).distinct()
        ).all()
    return set(rows)
