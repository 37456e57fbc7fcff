"""Evaluation: the split by example, the LLM-judge baseline and its parsing, the table."""

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from optimas_lg.errors import LRFError
from optimas_lg.lrf import OVERALL, PreferencePair, format_table, judge_accuracy, split_by_example
from optimas_lg.lrf.evaluate import examples_to_hold_out, parse_choice

DESCRIPTIONS = {"answer": "Answer the question.", "retrieve": "Find documents."}


def pairs(n_examples: int = 50) -> list[PreferencePair]:
    out = []
    for e in range(n_examples):
        for node in ("retrieve", "answer", "answer"):
            out.append(PreferencePair(node, f"ex{e}", {"q": f"question {e}"}, {"o": "good"}, {"o": "bad"}, 1.0, 0.0))
    return out


def test_split_by_example_never_leaks():
    data = pairs()
    train, held = split_by_example(data, eval_fraction=0.2, seed=3)
    train_ids, held_ids = {p.example_key for p in train}, {p.example_key for p in held}
    assert not train_ids & held_ids
    assert len(held_ids) == 10 and len(train) + len(held) == len(data)
    assert split_by_example(data, 0.2, seed=3) == (train, held)  # reproducible
    assert {p.example_key for p in split_by_example(data, 0.2, seed=4)[1]} != held_ids


def test_split_needs_two_examples_and_a_real_fraction():
    with pytest.raises(LRFError, match="at least 2 examples"):
        split_by_example(pairs(1), 0.5)
    with pytest.raises(LRFError, match="eval_fraction"):
        split_by_example(pairs(), 1.0)


@pytest.mark.parametrize(("held_out", "fraction", "examples"), [(4, 0.25, 14), (4, 0.2, 18), (1, 0.25, 2), (3, 0.5, 6)])
def test_examples_to_hold_out_is_the_fewest_the_split_holds_that_many_of(held_out, fraction, examples):
    assert examples_to_hold_out(held_out, fraction) == examples
    for n, wanted in ((examples, held_out), (examples - 1, held_out - 1)):
        if n >= 2:
            held = {p.example_key for p in split_by_example(pairs(n), fraction)[1]}
            assert (len(held) >= wanted) if n == examples else (len(held) < held_out)


@pytest.mark.parametrize(
    ("reply", "choice"),
    [
        ("A", "A"),
        (" b.", "B"),
        ("**B**", "B"),
        ("Answer: A", "A"),
        ("The better output is B, since it cites the source.", "B"),
        ("Output A is better than output B.", "A"),
        ("<think>A looks short, B is fuller</think>\nB", "B"),
        ("I prefer (A)", "A"),
        ("I cannot decide.", None),
        ("A or B, both fine", None),
        ("", None),
    ],
)
def test_parse_choice(reply, choice):
    assert parse_choice(reply) == choice


class OracleJudge(BaseChatModel):
    """Answers with the letter of the output that says 'good' (a perfect judge)."""

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        prompt = messages[-1].content
        letter = "A" if prompt.index("good") < prompt.index("bad") else "B"
        return ChatResult(generations=[ChatGeneration(message=AIMessage(f"Answer: {letter}"))])

    @property
    def _llm_type(self) -> str:
        return "oracle"


def test_perfect_judge_scores_one_whatever_the_order():
    result = judge_accuracy(pairs(10), OracleJudge(), DESCRIPTIONS, goal="answer correctly")
    assert result.accuracy == {"retrieve": 1.0, "answer": 1.0, OVERALL: 1.0}
    assert result.unparsed == {"retrieve": 0, "answer": 0}
    assert set(result.replies) == {"Answer: A", "Answer: B"}  # both positions were used


def test_position_biased_judge_scores_about_half():
    data = pairs(100)
    result = judge_accuracy(data, FakeListChatModel(responses=["A"]), DESCRIPTIONS, goal="g", seed=1)
    assert 0.4 <= result.accuracy[OVERALL] <= 0.6


def test_unparseable_answers_count_as_wrong_and_are_counted():
    data = pairs(4)  # 12 pairs; the fake cycles through its replies in order
    judge = FakeListChatModel(responses=["no idea", "no idea", "no idea"])
    result = judge_accuracy(data, judge, DESCRIPTIONS, goal="g", max_concurrency=1)
    assert result.accuracy[OVERALL] == 0.0
    assert result.unparsed == {"retrieve": 4, "answer": 8}


def test_judge_failure_is_an_lrf_error():
    class Broken(OracleJudge):
        def _generate(self, *args, **kwargs):
            raise ConnectionError("endpoint down")

    with pytest.raises(LRFError, match="endpoint down"):
        judge_accuracy(pairs(1), Broken(), DESCRIPTIONS, goal="g")


def test_format_table():
    data = pairs(2)
    judge = judge_accuracy(data, FakeListChatModel(responses=["maybe"]), DESCRIPTIONS, goal="g")
    table = format_table(data, {"answer": 0.75, "retrieve": 1.0, OVERALL: 5 / 6}, judge)
    lines = table.splitlines()
    assert lines[0].split() == ["node", "pairs", "LRF", "acc", "judge", "acc", "judge", "unparsed"]
    assert lines[2].split() == ["answer", "4", "0.750", "0.000", "4"]
    assert lines[3].split() == ["retrieve", "2", "1.000", "0.000", "2"]
    assert lines[4].split() == ["overall", "6", "0.833", "0.000", "6"]
    assert "judge" not in format_table(data, {"answer": 0.5})
