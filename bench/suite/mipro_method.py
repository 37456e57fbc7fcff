"""``mipro``: DSPy MIPROv2 (stock settings sized to the budget) on a faithful DSPy program
of the system; only offline_qa has one.

The program is the agent step by step and prompt by prompt: two ``dspy.Predict`` modules
(``question -> query`` with the agent's rewrite prompt as instructions, ``facts, question
-> answer`` with its answer prompt) around the agent's own BM25 retriever at its default
top_k and hops (MIPROv2 tunes instructions and demos, not those knobs). A small adapter
renders exactly the agent's user messages, stops at the first newline with the agent's
max_tokens and keeps the first line, and puts demos as earlier user/assistant turns; so
the unoptimized program sends the very requests the unoptimized graph sends. MIPROv2's
own signatures keep DSPy's ChatAdapter with its stock JSON-adapter fallback (until
2026-12-02 the fallback was turned off, on the belief that it needs ``response_format``;
DSPy 3.4.1 sends none to a model it has no capability record for, so the fallback only
asks for JSON in the prompt). No patch to MIPROv2 itself.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.suite.counting import CONCURRENCY
from bench.suite.methods import NotApplicable, Outcome, Task
from bench.suite.systems import PROPOSER_MODEL, TASK_MODEL

PROMPT_MODEL_TOKENS = 400
TRIALS_PER_200_RUNS = 9  # with 3 candidates, minibatch 10 and a full eval every 5 trials: ~180 runs at 200


def offline_qa_program(task: Task, base_url: str) -> dict[str, Any]:
    """The DSPy LM, adapter, program and scorer of offline_qa (dspy is imported here: it is optional)."""
    import dspy
    from dspy.utils.exceptions import AdapterParseError

    from examples.offline_qa.agent import ANSWER_TOKENS, REWRITE_TOKENS, AgentConfig, knowledge_base
    from examples.offline_qa.metric import token_f1

    rewrite_sig = dspy.Signature("question -> query", instructions=AgentConfig.rewrite_prompt)
    answer_sig = dspy.Signature("facts, question -> answer", instructions=AgentConfig.answer_prompt)
    task_fields = {(("question",), ("query",)), (("facts", "question"), ("answer",))}

    def is_task(signature: Any) -> bool:
        return (tuple(signature.input_fields), tuple(signature.output_fields)) in task_fields

    def render(signature: Any, values: dict[str, Any]) -> str:  # byte for byte the agent's prompts
        if "facts" in signature.input_fields:
            return f"{signature.instructions}\n\nFacts:\n{values['facts']}\n\nQuestion: {values['question']}"
        return f"{signature.instructions}\n\nQuestion: {values['question']}"

    class SamePromptAdapter(dspy.ChatAdapter):
        """The agent's prompts for the two task signatures; DSPy's ChatAdapter for the others."""

        def format(self, signature: Any, demos: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, Any]]:
            if not is_task(signature):
                return super().format(signature, demos, inputs)
            (out,) = signature.output_fields
            messages: list[dict[str, Any]] = []
            for demo in demos:
                if all(demo.get(k) is not None for k in [*signature.input_fields, out]):
                    messages += [{"role": "user", "content": render(signature, demo)},
                                 {"role": "assistant", "content": str(demo[out])}]
            return [*messages, {"role": "user", "content": render(signature, inputs)}]

        def parse(self, signature: Any, completion: str) -> dict[str, Any]:
            if not is_task(signature):
                return super().parse(signature, completion)
            (out,) = signature.output_fields
            return {out: completion.strip().split("\n", 1)[0].strip()}

    cfg, kb = AgentConfig(), knowledge_base()

    class OfflineQA(dspy.Module):
        """rewrite -> BM25 multi-hop retrieve (the agent's own) -> answer, default knobs."""

        def __init__(self) -> None:
            super().__init__()
            self.rewrite = dspy.Predict(rewrite_sig, max_tokens=REWRITE_TOKENS, stop=["\n"])
            self.answer = dspy.Predict(answer_sig, max_tokens=ANSWER_TOKENS, stop=["\n"])

        def forward(self, question: str) -> Any:
            with task.runner._lock:  # one system run
                task.runner.runs += 1
            try:  # an empty first line is an empty query in the agent, not an error
                query = self.rewrite(question=question).query or ""
            except AdapterParseError:
                query = ""
            facts = "\n".join(kb.multi_hop(query, cfg.top_k, cfg.hops)) or "(none found)"
            try:
                answer = self.answer(facts=facts, question=question).answer or ""
            except AdapterParseError:
                answer = ""
            return dspy.Prediction(query=query, facts=facts, answer=answer)

    def score(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> float:
        return token_f1(getattr(pred, "answer", "") or "", gold.answer)

    def lm(model: str, max_tokens: int, temperature: float) -> Any:
        return dspy.LM(f"openai/{model}", api_base=f"{base_url}/v1", api_key="local", temperature=temperature,
                       max_tokens=max_tokens, cache=False, num_retries=1)

    return {"dspy": dspy, "adapter": SamePromptAdapter(), "program": OfflineQA, "score": score,
            "task_lm": lm(TASK_MODEL, ANSWER_TOKENS, 0.0), "prompt_lm": lm(PROPOSER_MODEL, PROMPT_MODEL_TOKENS, 1.0)}


def mipro_search(task: Task) -> Outcome:
    import os

    if task.suite_system.name != "offline_qa":
        raise NotApplicable(f"no faithful DSPy program of {task.suite_system.name}")
    parts = offline_qa_program(task, os.environ["OPTIMAS_LG_LLM_URL"])
    dspy = parts["dspy"]

    def to_dspy(examples: list[Any]) -> list[Any]:
        return [dspy.Example(question=e["question"], answer=e["answer"]).with_inputs("question") for e in examples]

    trials = max(1, round(TRIALS_PER_200_RUNS * task.budget / 200))
    settings = dict(num_candidates=3, max_bootstrapped_demos=1, max_labeled_demos=0)
    compile_kw = dict(num_trials=trials, minibatch=True, minibatch_size=10, minibatch_full_eval_steps=5,
                      view_data_batch_size=5)
    dspy.configure(lm=parts["task_lm"], adapter=parts["adapter"])  # global: MIPROv2's worker threads read it
    optimizer = dspy.MIPROv2(metric=parts["score"], prompt_model=parts["prompt_lm"], task_model=parts["task_lm"],
                             auto=None, num_threads=CONCURRENCY, seed=task.seed, max_errors=1000, **settings)
    program = optimizer.compile(parts["program"](), trainset=to_dspy(task.train), valset=to_dspy(task.val),
                                **compile_kw)
    runs = task.runner.runs
    found = {name: {"instructions": p.signature.instructions, "demos": [dict(d) for d in p.demos]}
             for name, p in program.named_predictors()}
    knobs = {**task.defaults(), "rewrite_prompt": found["rewrite"]["instructions"],
             "answer_prompt": found["answer"]["instructions"]}

    def scorer(examples: list[Any]) -> list[float]:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            return list(pool.map(lambda ex: parts["score"](ex, program(**ex.inputs())), to_dspy(examples)))

    val = getattr(program, "score", None)  # dspy.Evaluate's score: a percentage
    return Outcome(knobs, runs, None if val is None else val / 100,
                   {"MIPROv2": {**settings, "auto": None}, "compile": compile_kw, "program": found,
                    "prompt_model_max_tokens": PROMPT_MODEL_TOKENS,
                    "note": "final_knobs carry the chosen instructions; the demos live only in the DSPy program, "
                            "which scores val and test"}, scorer=scorer)
