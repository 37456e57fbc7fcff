"""text(x, y): the token budget is respected and both the inputs and the output stay in view."""

import pytest
from transformers import AutoTokenizer

from optimas_lg.errors import LRFError
from optimas_lg.lrf.model import default_backbone
from optimas_lg.lrf.text import serialize


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(default_backbone(), local_files_only=True)


def n_tokens(tok, text: str) -> int:
    return len(tok(text)["input_ids"])


def test_short_call_is_shown_whole(tok):
    text = serialize("answer", "Answer from the context.", {"question": "Who?", "k": 3}, {"answer": "Ada"}, tok, 128)
    assert text == (
        "node: answer\nrole: Answer from the context.\nreads:\n- question: Who?\n- k: 3\nwrites:\n- answer: Ada"
    )


def test_long_input_loses_its_middle_but_output_survives(tok):
    context = "START " + " ".join(f"filler{i}" for i in range(2000)) + " END"
    answer = "The answer is Lovelace. " + "because " * 300 + "FINAL"
    inputs = {"question": "Who wrote it?", "context": context}
    text = serialize("answer", "Answer.", inputs, {"answer": answer}, tok, 200)
    assert n_tokens(tok, text) <= 200
    assert "Who wrote it?" in text  # short values are kept whole
    assert "START" in text and "END" in text and " ... " in text  # head and tail of the long input
    assert "The answer is Lovelace" in text and "FINAL" in text  # head and tail of the long output
    reads, writes = text.split("writes:")
    assert n_tokens(tok, writes) > 60 and n_tokens(tok, reads) > 60  # the budget is shared


def test_output_takes_what_inputs_leave(tok):
    long_output = " ".join(f"w{i}" for i in range(1000))
    text = serialize("n", "", {"q": "hi"}, {"out": long_output}, tok, 120)
    assert 110 <= n_tokens(tok, text) <= 120  # nothing wasted on the short side


def test_structured_values_and_empty_sides(tok):
    text = serialize("route", "Pick a tool.", {}, {"tool": {"name": "search", "args": [1, 2]}}, tok, 64)
    assert '- (nothing)' in text and '{"args": [1, 2], "name": "search"}' in text


def test_budget_too_small_for_the_key_names(tok):
    with pytest.raises(LRFError, match="max_tokens"):
        serialize("n", "", {f"key{i}": "v" for i in range(20)}, {"out": "x"}, tok, 32)


def test_what_a_node_wrote_from_dicts_commands_and_lists_of_them():
    """``create_agent``'s model node returns ``[Command(update=...)]``; the LRF sees the update."""
    from langgraph.types import Command

    from optimas_lg.lrf.text import written

    assert written({"answer": "x"}) == {"answer": "x"}
    assert written(Command(update={"answer": "x"}, goto="end")) == {"answer": "x"}
    assert written([Command(update={"a": 1}), Command(update=[("b", 2)])]) == {"a": 1, "b": 2}
    assert written(Command(goto="end")) == {}
    assert written("plain") == {"output": "plain"}
