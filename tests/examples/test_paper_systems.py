"""The paper-style example systems (PubMedQA, HotpotQA, Amazon) over the shared data."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType

import pytest
from langchain_core.language_models import FakeListChatModel

from examples import amazon, hotpotqa, pubmedqa
from examples.paper_eval import evaluate, main
from examples.shared_data import DATA_ENV, REPO_ROOT, data_dir, data_file, seeded_split
from optimas_lg.data import Example
from optimas_lg.errors import DataError
from optimas_lg.graph.knobs import knob_specs

SYSTEMS = [pubmedqa, hotpotqa, amazon]
ROWS = {pubmedqa: 500, hotpotqa: 60, amazon: 120}


def _has_data() -> bool:
    return all((data_dir() / system.DATA_FILE).is_file() for system in SYSTEMS)


needs_data = pytest.mark.skipif(not _has_data(), reason=f"shared data not found at {data_dir()} (set {DATA_ENV})")
by_system = pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.__name__.split(".")[-1])


# --- data location --------------------------------------------------------------------------


def test_default_data_dir_is_beside_the_repo(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_dir() == REPO_ROOT.parent / "shared" / "data"


def test_missing_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(DataError, match=str(tmp_path / pubmedqa.DATA_FILE)):
        pubmedqa.load_split("val")
    with pytest.raises(DataError, match="given path"):
        data_file("x.csv", tmp_path / "nope.csv")


def test_env_points_at_another_folder(tmp_path, monkeypatch):
    row = '{"index": "p%d", "key": "1", "question": "Q?", "context": ["c"], "groundtruth": "yes"}\n'
    (tmp_path / pubmedqa.DATA_FILE).write_text("".join(row % i for i in range(170)))
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert [len(pubmedqa.load_split(name)) for name in ("train", "val", "test")] == [40, 120, 10]
    (tmp_path / pubmedqa.DATA_FILE).write_text("".join(row % i for i in range(160)))
    with pytest.raises(DataError, match="leave no test examples"):
        pubmedqa.load_split("train")


def test_seeded_split_rejects_unknown_names():
    examples = [Example(str(i), {}) for i in range(10)]
    with pytest.raises(DataError, match="unknown split"):
        seeded_split(examples, "dev", (3, 3))


# --- splits of the real files -------------------------------------------------------------


@needs_data
@by_system
def test_splits_are_disjoint_deterministic_and_cover_the_file(system: ModuleType):
    parts = {name: system.load_split(name) for name in ("train", "val", "test")}
    keys = {name: [ex.key for ex in part] for name, part in parts.items()}
    assert sum(len(k) for k in keys.values()) == len(set().union(*keys.values())) == ROWS[system]
    assert keys["val"] == [ex.key for ex in system.load_split("val")]
    assert keys["val"] != [ex.key for ex in system.load_split("val", seed=1)]
    assert [ex.key for ex in system.load_split("val", limit=3)] == keys["val"][:3]
    assert all(set(ex.labels) == {"answer"} for ex in parts["train"])


@needs_data
def test_rows_become_graph_inputs():
    pub = pubmedqa.load_split("val", limit=1)[0]
    assert set(pub.inputs) == {"question", "context"} and pub.labels["answer"] in {"yes", "no", "maybe"}
    hot = hotpotqa.load_split("val", limit=1)[0]
    assert len(hot.inputs["paragraphs"]) == 10 and ": " in hot.inputs["paragraphs"][0]
    shop = amazon.load_split("val", limit=1)[0]
    assert len(shop.inputs["choices"]) == 4 and shop.labels["answer"] in range(4)


# --- metrics -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Yes.", "yes"), ("The answer is: NO", "no"), ("maybe, the data are mixed", "maybe"),
    ("Not enough evidence; no.", "no"), ("yes or no? yes", "yes"), ("", None), (None, None),
    ("unknown", None), ("nobody knows", None), ("No, no.", "no"),  # the last: SmolLM2, verbatim
])
def test_pubmedqa_parses_the_first_decision(text, expected):
    assert pubmedqa.parse_decision(text) == expected


def test_pubmedqa_metric():
    example = Example("k", {}, {"answer": "maybe"})
    assert pubmedqa.metric(example, {"answer": "Maybe."}) == 1.0
    assert pubmedqa.metric(example, {"answer": "yes"}) == 0.0
    assert pubmedqa.metric(example, {}) == 0.0


@pytest.mark.parametrize("prediction, gold, expected", [
    ("Paris", "Paris", 1.0), ("the Paris.", "paris", 1.0), ("", "Paris", 0.0), ("London", "Paris", 0.0),
    ("Paris France", "Paris", 2 / 3), ("yes", "no", 0.0), ("yes it is", "yes", 0.0), ("No", "no", 1.0),
    ("", "", 1.0),
])
def test_hotpotqa_token_f1(prediction, gold, expected):
    assert hotpotqa.token_f1(prediction, gold) == pytest.approx(expected)


def test_hotpotqa_metric_reads_missing_answer_as_empty():
    assert hotpotqa.metric(Example("k", {}, {"answer": "Paris"}), {}) == 0.0


CHOICES = ["Oral-B Toothbrush Heads, Pack of 4", "Carnival Popcorn Box, Blue", "Acrylic Paint Pens", "Water Flosser"]


@pytest.mark.parametrize("text, expected", [
    ("2", 1), ("Candidate 3.", 2), ("I pick number 4 because", 3), ("carnival popcorn box, blue", 1),
    ("Oral-B Toothbrush Heads, Pack of 4", 0), ("the paint pens", 2), ("5", None), ("", None), (None, None),
    ("box pens", None), ("3.5 stars", None),
    ("Oral-B Heads Pack of 4", 0), ("1. Carnival Popcorn Box", 0), ("#2", 1), ("Option 3: pens", 2),
    ("Popcorn with 4 flavours", 1), ("the 4", 3), ("for the pack", None),
])
def test_amazon_parses_the_picked_candidate(text, expected):
    assert amazon.parse_choice(text, CHOICES) == expected


def test_amazon_prompts_show_recent_clicks_and_short_titles():
    titles = [f"Item {i} " + "word " * 20 for i in range(6)]
    session = "Select the next product.\nProduct Sequence: \n" + "\n".join(titles)
    clicks = amazon.agent.recent_clicks(session)
    assert len(clicks) == amazon.agent.RECENT_CLICKS and clicks[-1].startswith("Item 5")
    assert amazon.agent.recent_clicks("Product Sequence: \nOne\n\nTwo\n") == ["One", "Two"]
    title = amazon.agent.short_title(clicks[0])
    assert len(title.split()) == amazon.agent.TITLE_WORDS + 1 and title.endswith("...")
    assert amazon.agent.short_title("Water Flosser") == "Water Flosser"
    turns = amazon.agent.decider_turns({"question": session, "choices": CHOICES, "session_summary": "a flosser",
                                         "candidate_profiles": "1. no\n4. yes"})
    demo_reply, request = turns[1].content, turns[-1].content
    assert amazon.parse_choice(demo_reply, amazon.agent.DEMO_CHOICES) == 2
    assert request.index("Candidates:") < request.index("Item 5") and request.endswith("Next product:")
    assert "Fits: 1. no 4. yes" in request and "Item 1 " not in request


def test_amazon_metric():
    example = Example("k", {"choices": CHOICES}, {"answer": 1})
    assert amazon.metric(example, {"answer": "2"}) == 1.0
    assert amazon.metric(example, {"answer": "1"}) == 0.0
    assert amazon.metric(example, {}) == 0.0


# --- graphs ------------------------------------------------------------------------------


@by_system
def test_knobs_are_declared_on_graph_nodes(system: ModuleType):
    specs = knob_specs(system.AgentConfig, system.builder.nodes)
    kinds = {spec.kind for spec in specs.values()}
    expected = {pubmedqa: {"prompt", "choice", "lora"}, hotpotqa: {"prompt", "int", "choice", "demos"},
                amazon: {"prompt", "lora", "choice"}}
    assert kinds == expected[system]


def test_pubmedqa_model_options_follow_the_environment(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert pubmedqa.model_options()[0] == "local/smollm2-135m"
    assert "openai/gpt-4o-mini" not in pubmedqa.model_options()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert pubmedqa.model_options()[-1] == "openai/gpt-4o-mini"


def test_hotpotqa_retrieval_ranks_by_the_query():
    paragraphs = ["Alpha: cats purr.", "Beta: dogs bark loudly.", "Gamma: dogs and cats.", "Delta: fish swim."]
    assert hotpotqa.top_k_paragraphs("dogs bark", paragraphs, 2) == paragraphs[1:3]
    assert hotpotqa.top_k_paragraphs("nothing matches", paragraphs, 10) == paragraphs


class FakeModels:
    """Stands in for ``chat_model``: records each request and answers with a fixed reply."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.requests: list[tuple[str, int]] = []

    def __call__(self, name: str, temperature: float = 0.0, max_tokens: int = 48) -> FakeListChatModel:
        self.requests.append((name, max_tokens))
        return FakeListChatModel(responses=[self.reply])


def _examples(system: ModuleType) -> list[Example]:
    """Two real val examples when the data is here, else two made-up ones."""
    if _has_data():
        return system.load_split("val", limit=2)
    inputs = {pubmedqa: {"question": "Q?", "context": ["A.", "B."]},
              hotpotqa: {"question": "Who?", "paragraphs": [f"T{i}: text {i}." for i in range(10)]},
              amazon: {"question": "Session: a, b", "choices": CHOICES}}[system]
    label = {pubmedqa: "yes", hotpotqa: "yes", amazon: 0}[system]
    return [Example(f"k{i}", inputs, {"answer": label}) for i in range(2)]


@pytest.mark.parametrize("system, context, reply, nodes, models", [
    (pubmedqa, pubmedqa.AgentConfig(solver_model="m2"), "yes", 2, {"local/smollm2-135m", "m2"}),
    (pubmedqa, pubmedqa.AgentConfig(solver_adapter="s1"), "no", 2, {"local/smollm2-135m", "local/smollm2-135m@s1"}),
    # an adapter holds weights of the base model: another solver model runs as it is
    (pubmedqa, pubmedqa.AgentConfig(solver_model="m2", solver_adapter="s1"), "no", 2, {"local/smollm2-135m", "m2"}),
    (hotpotqa, hotpotqa.AgentConfig(top_k=2, rewrite_model="m1", extract_model="m1", respond_model="m2"), "yes", 3,
     {"m1", "m2"}),
    (amazon, amazon.AgentConfig(analyzer_adapter="a1"), "1", 3, {"local/smollm2-135m@a1", "local/smollm2-135m"}),
], ids=["pubmedqa", "pubmedqa-adapter", "pubmedqa-adapter-other-model", "hotpotqa", "amazon"])
def test_graph_runs_end_to_end_with_a_fake_model(monkeypatch, system, context, reply, nodes, models):
    fake = FakeModels(reply)
    monkeypatch.setattr(system.agent, "chat_model", fake)
    examples = _examples(system)
    scores = [score for _, score in evaluate(system, examples, context)]
    expected = [system.metric(ex, {"answer": reply}) for ex in examples]
    assert scores == expected
    assert len(fake.requests) == nodes * len(examples)
    assert {name for name, _ in fake.requests} == models
    assert all(tokens <= 64 for _, tokens in fake.requests)


def test_pubmedqa_solver_is_shown_the_reply_format():
    turns = pubmedqa.agent.solver_turns("Does X help?", "X helped.")
    demos, request = turns[:-1], turns[-1]
    assert [t.type for t in demos] == ["human", "ai"] * len(pubmedqa.agent.FORMAT_DEMOS)
    assert {pubmedqa.parse_decision(str(t.content)) for t in demos if t.type == "ai"} == {"yes", "no", "maybe"}
    assert "Does X help?" in request.content and "X helped." in request.content


def test_hotpotqa_retrieves_with_the_question_when_the_rewrite_loses_it(monkeypatch):
    monkeypatch.setattr(hotpotqa.agent, "chat_model", FakeModels("Rewrite the question as a query.\nSecond line"))
    paragraphs = [f"T{i}: filler text {i}." for i in range(9)] + ["Olympics: Barcelona hosted the 1992 Olympics."]
    out = hotpotqa.graph.invoke({"question": "Which city hosted the 1992 Olympics?", "paragraphs": paragraphs},
                                context=hotpotqa.AgentConfig(top_k=1))
    assert out["passages"] == paragraphs[-1:]
    assert out["answer"] == "Rewrite the question as a query."  # the reply's first line only


def test_hotpotqa_responder_is_shown_the_format_then_the_demos():
    demo = {"input": {"question": "Who won?", "evidence": "Ann won the race."}, "output": {"answer": "Ann"},
            "source": {"call": "c1"}}
    turns = hotpotqa.agent.respond_turns("Where?", "In Oslo.", [demo])
    fixed = 2 * len(hotpotqa.agent.FORMAT_DEMOS)
    assert [t.type for t in turns] == ["human", "ai"] * (len(hotpotqa.agent.FORMAT_DEMOS) + 1) + ["human"]
    assert turns[fixed].content == "Question: Who won?\nEvidence: Ann won the race.\nAnswer:"
    assert turns[fixed + 1].content == "Ann"
    assert turns[-1].content == "Question: Where?\nEvidence: In Oslo.\nAnswer:"
    assert len(hotpotqa.agent.respond_turns("Where?", "In Oslo.")) == fixed + 1


class EchoModels(FakeModels):
    """Replies with the model's name, so that outputs differ by config."""

    def __call__(self, name: str, temperature: float = 0.0, max_tokens: int = 48) -> FakeListChatModel:
        self.requests.append((name, max_tokens))
        return FakeListChatModel(responses=[name])


def test_hotpotqa_measure_runs_each_node_once_per_upstream_knobs_and_matches_full_runs(monkeypatch):
    from examples.hotpotqa.measure import run_configs

    fake = EchoModels("")
    monkeypatch.setattr(hotpotqa.agent, "chat_model", fake)
    examples = _examples(hotpotqa)
    configs = [hotpotqa.AgentConfig(), hotpotqa.AgentConfig(respond_model="q"), hotpotqa.AgentConfig(top_k=1),
               hotpotqa.AgentConfig(extract_model="q", respond_model="q")]
    runs = run_configs(examples, configs)
    # rewrite once; extract for 3 distinct (top_k, extract_model); respond for all 4 configs
    assert len(fake.requests) == (1 + 3 + 4) * len(examples)
    for config, run in zip(configs, runs):
        expected = [hotpotqa.graph.invoke(ex.inputs, context=config) for ex in examples]
        assert [state for state, _, _ in run] == expected
    assert [run[0][0]["answer"] for run in runs] == ["local/smollm2-135m", "q", "local/smollm2-135m", "q"]


def test_graph_runs_without_a_context(monkeypatch):
    monkeypatch.setattr(hotpotqa.agent, "chat_model", FakeModels("Paris"))
    out = hotpotqa.graph.invoke(_examples(hotpotqa)[0].inputs)
    assert out["answer"] == "Paris" and len(out["passages"]) == hotpotqa.AgentConfig.top_k


def test_cli_scores_a_split(monkeypatch, capsys):
    if not _has_data():
        pytest.skip(f"shared data not found at {data_dir()}")
    monkeypatch.setattr(amazon.agent, "chat_model", FakeModels("1"))
    score = main(amazon, ["--limit", "4", "--show", "--set", "decider_model=m3", "--set", "profiler_adapter=null"])
    out = capsys.readouterr().out
    assert 0.0 <= score <= 1.0 and "n=4" in out and out.count("answer='1'") == 4


# --- real local model ----------------------------------------------------------------------


@pytest.mark.slow
@needs_data
def test_systems_run_on_the_local_model():
    """All three at once, so that the model server batches their requests together."""
    with ThreadPoolExecutor(len(SYSTEMS)) as pool:
        runs = list(pool.map(lambda system: evaluate(system, system.load_split("val", limit=2)), SYSTEMS))
    for results in runs:
        assert len(results) == 2
        assert all(isinstance(output["answer"], str) and 0.0 <= score <= 1.0 for output, score in results)


def test_amazon_lora_reward_is_a_rollout_of_the_rest_of_the_graph(monkeypatch):
    from examples.amazon.lora import rollout_reward

    fake = FakeModels("Carnival Popcorn Box")
    monkeypatch.setattr(amazon.agent, "chat_model", fake)
    examples = [Example(f"k{label}", {"question": f"Product Sequence: \nPopcorn {label}", "choices": CHOICES},
                        {"answer": label}) for label in (1, 2)]
    score = rollout_reward(examples, amazon.AgentConfig())
    pairs = [(dict(e.inputs), {"session_summary": "popcorn"}) for e in examples]
    assert score(pairs) == [1.0, 0.0]
    assert len(fake.requests) == 4  # profiler and decider per pair; the analyzer's output is given


def test_amazon_overlap_baseline_picks_the_title_most_like_the_recent_clicks():
    from examples.amazon.measure import overlap_pick

    example = Example("k", {"question": "Product Sequence: \nPaint Pens Set\nAcrylic Markers", "choices": CHOICES})
    assert overlap_pick(example) == 2


# --- the PubMedQA headroom grid -----------------------------------------------------------------


def _measured(analyst_prompt: str, solver_scores: dict[tuple[str, str], list[float]]) -> dict:
    return {"analyst_model": pubmedqa.AgentConfig.analyst_model, "analyst_prompt": analyst_prompt,
            "keys": ["a", "b"], "labels": ["yes", "no"], "seconds": 4.0, "tokens": 600, "findings": ["f", "g"],
            "solvers": [{"model": model, "prompt": prompt, "adapter": None, "seconds": 2.0, "tokens": 100,
                         "answers": ["yes", "yes"], "scores": scores}
                        for (model, prompt), scores in solver_scores.items()]}


def test_pubmedqa_grid_pairs_every_config_with_the_default():
    from examples.pubmedqa import measure

    model = pubmedqa.AgentConfig.solver_model
    other = ("local/other", "default")
    lines = measure.table([_measured("default", {(model, "default"): [1.0, 0.0], (model, "evidence"): [1.0, 1.0]}),
                           _measured("results", {(model, "default"): [1.0, 1.0], other: [0.0, 0.0]})])
    assert lines[0].startswith("n=2 labels {'yes': 1, 'no': 1}")
    assert "vs default +0.000 +- 0.000" in lines[1]
    assert "solver smollm2-135m/evidence" in lines[2] and "vs default +0.500 +- 0.500" in lines[2]
    assert "results  solver smollm2-135m/default" in lines[3] and "vs default +0.500 +- 0.500" in lines[3]
    assert "vs default -0.500 +- 0.500" in lines[4] and "per run 3.0 s, 350 tokens" in lines[4]
    with pytest.raises(SystemExit, match="no measurement of the default config"):
        measure.table([_measured("default", {(model, "evidence"): [1.0, 1.0]})])


def test_pubmedqa_grid_pairs_a_solver_only_on_the_findings_it_answered():
    from examples.pubmedqa import measure

    model = pubmedqa.AgentConfig.solver_model
    record = _measured("default", {(model, "default"): [1.0, 0.0, 1.0], (model, "evidence"): [0.0, 0.0]})
    record["keys"], record["labels"] = ["a", "b", "c"], ["yes", "no", "yes"]
    lines = measure.table([record])
    assert lines[0].startswith("n=3 labels {'yes': 2, 'no': 1}")
    assert "solver smollm2-135m/evidence" in lines[2] and "n=2" in lines[2] and "vs default -0.500" in lines[2]


def test_pubmedqa_grid_extends_findings_and_answers_only_what_a_solver_lacks(monkeypatch):
    from examples.pubmedqa import measure

    model = pubmedqa.AgentConfig.solver_model
    done = _measured("default", {(model, "default"): [1.0, 0.0]})
    new = _measured("default", {})
    new["keys"], new["findings"] = ["c", "d"], ["h", "i"]
    record = measure.extend(done, new)
    assert record["keys"] == ["a", "b", "c", "d"] and record["seconds"] == 8.0 and record["tokens"] == 1200
    assert record["findings"] == ["f", "g", "h", "i"]
    fake = FakeModels("no")
    monkeypatch.setattr(pubmedqa.agent, "chat_model", fake)
    examples = {k: Example(k, {"question": f"Q{k}?", "context": ["c"]}, {"answer": "no"}) for k in "abcd"}
    entry = measure.measure_solver(record, examples, model, "default")
    assert entry["answers"] == ["yes", "yes", "no", "no"] and entry["scores"] == [1.0, 0.0, 1.0, 1.0]
    assert len(fake.requests) == 2  # only the two new findings
    assert measure.measure_solver(record, examples, model, "default") is entry and len(fake.requests) == 2
    fresh = measure.measure_solver(record, examples, "local/other", "default")
    assert fresh["prompt"] == "default" and len(fresh["answers"]) == 4 and len(record["solvers"]) == 2
    adapted = measure.measure_solver(record, examples, model, "default", adapter="s1")
    assert adapted["adapter"] == "s1" and len(record["solvers"]) == 3
    assert {name for name, _ in fake.requests[-4:]} == {f"{model}@s1"}
    assert "solver smollm2-135m@s1/default  n=4" in measure.table([record])[-1]


def test_pubmedqa_lora_rewards_the_solvers_answer_with_the_metric_on_the_label():
    from examples.pubmedqa.lora import label_reward

    examples = [Example("a", {"question": "Qa?", "context": ["c"]}, {"answer": "yes"}),
                Example("b", {"question": "Qb?", "context": ["c"]}, {"answer": "maybe"})]
    score = label_reward(examples)
    pairs = [({"question": "Qb?"}, {"answer": "Maybe."}), ({"question": "Qa?"}, {"answer": "no"}),
             ({"question": "Qa?"}, {"answer": "Yes, it does"})]
    assert score(pairs) == [1.0, 0.0, 1.0]


def test_pubmedqa_lora_trains_the_solver_on_its_requests_with_cached_findings(monkeypatch, tmp_path):
    from examples.pubmedqa import lora
    from optimas_lg.proposers.lora import LoRAProposer

    examples = [Example(k, {"question": f"Q{k}?", "context": ["c"]}, {"answer": "no"}) for k in "ab"]
    findings = tmp_path / "findings.json"
    findings.write_text(json.dumps({"keys": ["b", "a"], "findings": ["found b", "found a"]}))
    seen = {}

    def train(self, ctx, knob):
        seen.update(ctx=ctx, knob=knob, config=self.config)
        return "s1", [0.5], 10

    monkeypatch.setattr(LoRAProposer, "train", train)
    assert lora.train_adapter(examples, findings, lora.TRAINING) == ("s1", [0.5], 10)
    ctx = seen["ctx"]
    assert ctx.node == "solver" and seen["knob"].name == "solver_adapter" and ctx.writes == ["answer"]
    assert seen["config"].max_completion_length == pubmedqa.agent.SOLVER_MAX_TOKENS
    state, messages = ctx.llm_prompts[0]
    assert state["analysis"] == "found a"
    assert messages[0] == {"role": "system", "content": pubmedqa.AgentConfig.solver_prompt}
    assert "Qa?" in messages[-1]["content"] and "found a" in messages[-1]["content"]
    assert ctx.score([(state, {"answer": "No."})]) == [1.0]
    with pytest.raises(lora.FindingsError, match="no findings for 1"):
        lora.solver_states([*examples, Example("c", {"question": "Qc?", "context": []}, {"answer": "no"})], findings)


def test_lora_reward_curve_means_the_first_and_last_quarter():
    from examples.lora_training import quarter_means

    assert quarter_means([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 1.0, 1.0]) == (0.125, 1.0)
    assert quarter_means([0.5, 1.0]) == (0.5, 1.0)
    with pytest.raises(ValueError, match="no rewards"):
        quarter_means([])


def test_pubmedqa_cost_case_frees_only_the_model_knobs_under_a_cost_weight():
    from examples.pubmedqa import cost, measure
    from optimas_lg.loop.config import OptimizeConfig
    from optimas_lg.proposers.choice import ChoiceProposer
    from optimas_lg.proposers.registry import build_proposers

    settings = OptimizeConfig.from_dict(cost.SETTINGS)
    assert settings.kinds == ["choice"] and settings.objective.lambda_cost > 0
    assert isinstance(build_proposers(settings.proposers)["choice"], ChoiceProposer)
    assert cost.start_value("analyst_prompt=results") == ("analyst_prompt", measure.RESULTS_PROMPT)
    assert cost.start_value("solver_model=local/x") == ("solver_model", "local/x")
def test_demos_ab_reads_the_reports_demo_sources():
    from examples.demos_ab import demo_sources, sources_heading

    heading = sources_heading("answer_demos")
    table = "| example | run score |\n|---|---|\n| `5a8` | 1.000 |"
    report = f"# Report\n\n## Knobs\n\ntext\n\n{heading}\n\n{table}\n\n## Rounds\n\n| iter |"
    assert demo_sources(report, "answer_demos") == f"{heading}\n\n{table}"
    assert demo_sources(report, "other_demos") == ""
    assert demo_sources("# Report\n\nno demos", "answer_demos") == "" and demo_sources(None, "answer_demos") == ""


def test_demos_ab_finds_the_systems_demos_knob_and_the_sets_the_gate_tested():
    import examples.hotpotqa
    import examples.offline_qa
    from examples.demos_ab import demos_knob, tested_sets
    from optimas_lg.loop.records import Change, Decision

    assert demos_knob(examples.hotpotqa) == demos_knob(examples.offline_qa) == "answer_demos"
    demo = [{"input": {"question": "Q?", "evidence": "E."}, "output": {"answer": "A"}}]

    def decision(changes: dict, accepted: bool) -> Decision:
        return Decision("respond", changes, 8, accepted, 0.1, 0.0, -0.1, 0.05, "rule", "reason")

    decisions = [decision({"answer_demos": Change([], demo)}, False), decision({"top_k": Change(3, 5)}, True),
                 decision({"answer_demos": Change(demo, [])}, True)]
    assert tested_sets(decisions, "answer_demos") == [demo, []]


def test_lora_command_line_maps_its_flags_onto_the_loops_grpo_settings(capsys):
    from examples.lora_training import main as lora_main
    from optimas_lg.proposers.lora import LoRAConfig

    seen = {}

    def train(args, lora):
        seen.update(args=args, lora=lora)
        return "a1", [0.0, 0.5, 0.5, 1.0], 42

    lora_main("test", LoRAConfig(max_steps=24), train, lambda p: p.add_argument("--extra", default="x"),
              ["--limit", "5", "--generations", "8", "--prompts-per-step", "3", "--lr", "1e-4"])
    lora = seen["lora"]
    assert (lora.max_steps, lora.num_generations, lora.per_device_train_batch_size) == (24, 8, 24)
    assert lora.learning_rate == 1e-4 and seen["args"].limit == 5 and seen["args"].extra == "x"
    out = capsys.readouterr().out
    assert out.startswith("adapter a1: 4 steps of 3 prompts x 8 completions") and "last quarter 1.000" in out
