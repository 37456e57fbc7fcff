"""Publish an optimize job's best config as an assistant on a LangGraph Server.

An assistant is the server's saved configuration of a graph: runs of it get its
``context``, so the knobs the job chose reach every run without a code change, and each
update is a new assistant version the server keeps (and can roll back to). The job's
numbers go into the assistant's metadata, so whoever looks at the assistant can find the
job, its store and what it measured.

Only a finished job is published: its final event holds the best config and the val/test
scores the gate and the final test measured. A running, failed or interrupted job's best
config so far has no final test score and may still change, so it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from optimas_lg.errors import PublishError, ServerError, StoreError
from optimas_lg.execution.server import server_request
from optimas_lg.loop.records import Change, Final, changes_between
from optimas_lg.store import Store, queries
from optimas_lg.store import models as m

META_PREFIX = "optimas_lg_"
TIMEOUT = 30.0  # seconds per request; publishing moves a few kilobytes


@dataclass(frozen=True)
class Published:
    """What ``publish`` did (or, on a dry run, would do) to the server's assistant."""

    server: str
    graph_id: str
    name: str
    assistant_id: str | None  # None: a dry run that would create the assistant
    version: int | None  # the assistant's version after publishing; None on a dry run
    created: bool  # the assistant did not exist before
    dry_run: bool
    context: dict[str, Any]  # the assistant's context after publishing
    changes: dict[str, Change]  # knob -> (value runs used before, published value)
    metadata: dict[str, Any]


@dataclass(frozen=True)
class _BestConfig:
    job: m.Job
    final: Final
    values: dict[str, Any]
    initial: dict[str, Any]  # the knob values the job started from


def _best_config(store: Store, job_id: int) -> _BestConfig:
    job = store.job(job_id)
    if job.kind != "optimize":
        raise PublishError(f"job {job_id} in store {store.display_url!r} is a {job.kind!r} job, not an optimize "
                           "job: only an optimize job has a best config to publish")
    finals = queries.job_events(store, job_id, Final.kind)
    if job.status != "done" or not finals:
        raise PublishError(f"job {job_id} in store {store.display_url!r} is {job.status!r} with no final result: "
                           f"only a finished job is published (wait for it, or continue it with "
                           f"`optimas-lg optimize --resume {job_id}`)")
    final = Final.from_json(finals[-1].payload)
    config = store.get(m.ConfigVersion, final.best_config_id)
    if config is None:
        raise StoreError(f"job {job_id}'s best config {final.best_config_id} is missing from store "
                         f"{store.display_url!r}")
    initial = store.get(m.ConfigVersion, final.initial_config_id)
    return _BestConfig(job, final, dict(config.values), dict(initial.values) if initial else {})


def _find(client: SyncLangGraphClient, server: str, graph_id: str, name: str) -> dict[str, Any] | None:
    """The graph's assistant with exactly this name, if any (the server's name filter is a substring match)."""
    with server_request(server, f"list the assistants of graph {graph_id!r}"):
        found = [a for a in client.assistants.search(graph_id=graph_id, name=name, limit=100) if a["name"] == name]
    if len(found) > 1:
        ids = ", ".join(a["assistant_id"] for a in found)
        raise ServerError(f"{len(found)} assistants of graph {graph_id!r} on {server} are named {name!r} ({ids}); "
                          "give --assistant a name that only one has")
    return dict(found[0]) if found else None


def _context_fields(client: SyncLangGraphClient, server: str, graph_id: str,
                    assistant: dict[str, Any] | None) -> dict[str, Any]:
    """The graph's context schema fields (name -> JSON schema), read through one of its assistants."""
    with server_request(server, f"read the context schema of graph {graph_id!r}"):
        if assistant is None:  # a server makes one assistant per graph it serves
            found = client.assistants.search(graph_id=graph_id, limit=1)
            if not found:
                raise ServerError(f"graph {graph_id!r} on {server} has no assistant to read its context schema "
                                  "through; create one or restart the server")
            assistant = dict(found[0])
        schema = client.assistants.get_schemas(assistant["assistant_id"]).get("context_schema")
    return dict((schema or {}).get("properties") or {})


def publish(job_id: int, *, server: str, graph_id: str, assistant: str | None = None, dry_run: bool = False,
            store: Store | str | None = None) -> Published:
    """Create or update (by name) an assistant of ``graph_id`` whose context is job ``job_id``'s best config.

    Updating makes a new assistant version. Context fields that are not knobs of the job
    are kept. The metadata names the job, the store (identity and URL, never a password)
    and the val/test scores before and after. ``dry_run`` changes nothing and returns
    the knob values that would change (a value the assistant does not set counts as the
    graph's declared default, or without one as the value the job started from). The
    default assistant name is ``GRAPH_ID-optimized``.

    Raises ``StoreError`` (no such job), ``PublishError`` (not a finished optimize job,
    or knobs the graph's context does not have) and ``ServerError`` (server unreachable,
    unknown graph, request refused).
    """
    server = server.rstrip("/")
    name = assistant or f"{graph_id}-optimized"
    own = Store.open(store)
    try:
        best = _best_config(own, job_id)
        final = best.final
        metadata = {f"{META_PREFIX}{k}": v for k, v in {
            "job_id": job_id, "target": best.job.target, "config_id": final.best_config_id,
            "store_id": own.identity, "store_url": own.display_url,
            "val_before": final.val_before, "val_after": final.val_after,
            "test_before": final.test_before, "test_after": final.test_after}.items()}
    finally:
        if own is not store:
            own.close()

    with get_sync_client(url=server, timeout=TIMEOUT) as client:
        current = _find(client, server, graph_id, name)
        fields = _context_fields(client, server, graph_id, current)
        unknown = sorted(set(best.values) - set(fields))
        if unknown:
            raise PublishError(f"graph {graph_id!r} on {server} has no context field(s) {unknown} for job {job_id}'s "
                               f"knobs (its context fields: {sorted(fields)}); was the job run on another graph?")
        before = dict(current["context"] or {}) if current else {}
        defaults = {k: spec["default"] for k, spec in fields.items() if "default" in spec}
        # a field the assistant does not set and whose schema declares no default (a
        # default_factory) counts as the value the job started from
        changes = changes_between({**best.initial, **defaults, **before}, best.values)
        context = {**before, **best.values}
        if dry_run:
            return Published(server, graph_id, name, current["assistant_id"] if current else None, None,
                             current is None, True, context, changes, metadata)
        if current is None:
            with server_request(server, f"create assistant {name!r} of graph {graph_id!r}"):
                saved = client.assistants.create(graph_id, context=context, metadata=metadata, name=name)
        else:
            with server_request(server, f"update assistant {name!r} ({current['assistant_id']})"):
                saved = client.assistants.update(current["assistant_id"], context=context, metadata=metadata)
    return Published(server, graph_id, name, saved["assistant_id"], saved["version"], current is None, False,
                     dict(saved["context"] or {}), changes, dict(saved["metadata"] or {}))
