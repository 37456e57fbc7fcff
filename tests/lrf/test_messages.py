"""A ``MessagesState`` agent's pairs: stored through serde, decoded on read, shown to the LRF
as a conversation, and trained on (issue 13, "MessagesState")."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel
from transformers import AutoTokenizer
from typer.testing import CliRunner

from optimas_lg.cli import app
from optimas_lg.errors import SerdeError
from optimas_lg.graph import serde
from optimas_lg.lrf.collect import pair_row, stored_pairs
from optimas_lg.lrf.model import default_backbone
from optimas_lg.lrf.pairs import PreferencePair, canonical_json
from optimas_lg.lrf.text import serialize
from optimas_lg.store import models as m
from tests.graphs import orders

GRAPH = "tests/graphs/orders.py"


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(default_backbone(), local_files_only=True)


def test_pairs_of_a_messages_state_agent_round_trip_and_train(tmp_path, store, tok):
    data = tmp_path / "orders.jsonl"
    data.write_text("".join(json.dumps({"id": e.key, **e.inputs, **e.labels}) + "\n" for e in orders.examples(12)))
    out = _cli("pairs", f"{GRAPH}:graph", "--data", str(data), "--metric", f"{GRAPH}:resolved", "--labels", "expect",
               "--config", '{"refund_policy": "approve"}', "--samples", "2", "--store", store.url, "--json")
    job_id = json.loads(out)["job_id"]
    rows = store.select(m.PreferencePairRow)
    assert {r.node for r in rows} == {"triage", "lookup"}
    pairs = stored_pairs(store, job_id)
    assert [serde.to_json(p.inputs) for p in pairs] == [r.inputs for r in rows]
    triage = [p for p in pairs if p.node == "triage"]
    assert all(isinstance(p.inputs["messages"][0], HumanMessage) for p in triage)
    refund = next(p for p in triage if "refund" in p.inputs["messages"][0].content)
    assert (refund.chosen, refund.rejected) == ({"intent": "refund"}, {"intent": "status"})
    lookup = next(p for p in pairs if p.node == "lookup")
    assert isinstance(lookup.chosen["messages"][-1], AIMessage)
    text = serialize("lookup", "Find the order.", lookup.inputs, lookup.chosen, tok, 256)
    assert f"- messages: human: {lookup.inputs['messages'][0].content}" in text
    assert f"ai: {lookup.chosen['messages'][-1].content}" in text and "additional_kwargs" not in text
    out = _cli("lrf", "train", str(job_id), "--epochs", "1", "--max-tokens", "96", "--store", store.url, "--json")
    result = json.loads(out)
    assert result["train_pairs"] + result["eval_pairs"] == len(pairs) and result["final_loss"] is not None


def test_messages_compare_by_what_they_say(tok):
    a, b = AIMessage("shipped", id="run-1"), AIMessage("shipped", id="run-2")
    assert canonical_json({"messages": [a]}) == canonical_json({"messages": [b]})
    assert canonical_json([a]) != canonical_json([AIMessage("delayed", id="run-1")])
    call = AIMessage("", tool_calls=[{"name": "track", "args": {"order": "c1-0"}, "id": "call-9"}])
    text = serialize("agent", "", {"messages": [HumanMessage("where?", name="ada")]}, {"messages": [call]}, tok, 64)
    assert text.endswith('- messages: ada: where?\nwrites:\n- messages: ai:  [calls track({"order": "c1-0"})]')


class Order(BaseModel):
    id: str
    status: str


def test_pairs_holding_the_graphs_own_types_decode_with_them(store):
    job_id = store.create_job("pairs")
    pair = PreferencePair("lookup", "m0", {"messages": [HumanMessage("where?")]}, {"order": Order(id="a", status="ok")},
                          {"order": None}, 1.0, 0.0)
    store.insert_many(m.PreferencePairRow, [pair_row(pair, job_id)])
    (back,) = stored_pairs(store, job_id, types=serde.Types.reachable(Order))
    assert back.chosen == {"order": Order(id="a", status="ok")} and back.inputs["messages"][0].content == "where?"
    with pytest.raises(SerdeError, match="does not declare"):
        stored_pairs(store, job_id)
