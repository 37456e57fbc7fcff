"""The local model server end to end: one in-process server for the module, real SmolLM2.

The converted model is shared with the repo's own cache (converting takes ~15 s), while
the storage home, and so the adapters, live in a temp folder.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import httpx
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from optimas_lg.errors import ModelNotFoundError, ModelServerError
from optimas_lg.llm import chat_model, ensure_server, list_adapters, save_adapter_path, start_server
from optimas_lg.llm.engine import FOLDERS_FLAG, ChatJob, ModelPool
from optimas_lg.llm.generation import SamplingParams
from optimas_lg.llm.registry import MODEL_CACHE_ENV, load_model_and_tokenizer
from optimas_lg.llm.server import MAX_REQUEST_BYTES, URL_ENV

BASE = "local/smollm2-135m"
REPO_MODEL_CACHE = Path(__file__).resolve().parents[2] / "storage" / "models"
QUESTIONS = [
    "What is the capital of France?",
    "Name three colors.",
    "Explain gravity in one sentence, please, for a child who is five years old.",
    "What is 2+2?",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(MODEL_CACHE_ENV, str(REPO_MODEL_CACHE))
        mp.setenv("OPTIMAS_LG_HOME", str(tmp_path_factory.mktemp("home")))
        mp.delenv(URL_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def adapter(home) -> str:
    """A random-init LoRA adapter (non-zero B) that must change greedy output."""
    from peft import LoraConfig, get_peft_model

    model, _ = load_model_and_tokenizer(BASE)
    config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(save_adapter_path("rand-a"))
    return "rand-a"


@pytest.fixture(scope="module")
def server(home, adapter):
    """Without the response cache, so that asking twice decodes twice (the cache has its own test)."""
    with start_server(models=[BASE], cache_entries=0) as handle:
        yield handle


def post(server, timeout: float = 300, **body) -> httpx.Response:
    body.setdefault("model", BASE)
    body.setdefault("messages", [{"role": "user", "content": QUESTIONS[0]}])
    body.setdefault("temperature", 0)
    body.setdefault("max_tokens", 12)
    return httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=timeout)


def text_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_health_and_models(server, adapter):
    health = httpx.get(f"{server.base_url}/health").json()
    assert (health["status"], health["loaded"]) == ("ok", [BASE])
    assert health["batching"]["decode_steps"] >= 0
    assert health["cache"] == {"hits": 0, "misses": 0, "entries": 0}
    ids = [m["id"] for m in httpx.get(f"{server.base_url}/v1/models").json()["data"]]
    assert BASE in ids
    assert f"{BASE}@{adapter}" in ids
    assert list_adapters() == [adapter]


def test_raw_http_completion_has_openai_shape(server):
    body = post(server).json()
    assert body["object"] == "chat.completion" and body["model"] == BASE
    (choice,) = body["choices"]
    assert choice["message"]["role"] == "assistant" and "Paris" in choice["message"]["content"]
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 10 and 0 < usage["completion_tokens"] <= 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chatopenai_sync_async_and_stream_agree(server):
    llm = ChatOpenAI(base_url=f"{server.base_url}/v1", api_key="local", model=BASE, temperature=0, max_tokens=12)
    sync = llm.invoke(QUESTIONS[0])
    assert sync.usage_metadata["output_tokens"] > 0
    assert asyncio.run(llm.ainvoke(QUESTIONS[0])).content == sync.content
    assert "".join(chunk.content for chunk in llm.stream(QUESTIONS[0])) == sync.content
    streamed = None
    for chunk in llm.bind(stream_usage=True).stream(QUESTIONS[0]):  # what chat_model asks for
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed.usage_metadata == sync.usage_metadata


COLOR = {"type": "object", "properties": {"color": {"type": "string", "enum": ["red", "green", "blue"]}},
         "required": ["color"]}


def test_json_mode_and_json_schemas_are_enforced_while_decoding(server):
    """The prompt alone does not get JSON out of SmolLM2; the response_format does."""
    free = text_of(post(server, messages=[{"role": "user", "content": "Name a color."}], max_tokens=30))
    with pytest.raises(json.JSONDecodeError):
        json.loads(free)
    as_object = text_of(post(server, response_format={"type": "json_object"}, max_tokens=60,
                             messages=[{"role": "user", "content": QUESTIONS[1]}]))
    assert isinstance(json.loads(as_object), dict)
    sampled = post(server, temperature=1.0, n=3, seed=3, max_tokens=40,
                   messages=[{"role": "user", "content": "Name a color."}],
                   response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": COLOR}}).json()
    colors = [json.loads(c["message"]["content"])["color"] for c in sampled["choices"]]
    assert len(colors) == 3 and set(colors) <= {"red", "green", "blue"}

    class Color(BaseModel):
        color: Literal["red", "green", "blue"]

    llm = ChatOpenAI(base_url=f"{server.base_url}/v1", api_key="local", model=BASE, temperature=0, max_tokens=40)
    assert isinstance(llm.with_structured_output(Color, method="json_schema").invoke("Name a color."), Color)


def test_tool_calls_forced_named_and_in_a_conversation(server):
    """SmolLM2's template knows no tools: they are written into its turns (``llm.tools``)."""

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather in a city."""
        return f"It is sunny in {city}."

    llm = ChatOpenAI(base_url=f"{server.base_url}/v1", api_key="local", model=BASE, temperature=0, max_tokens=40)
    forced = llm.bind_tools([get_weather, add], tool_choice="required").invoke("What is 2 plus 3?")
    assert [(c["name"], set(c["args"])) for c in forced.tool_calls] == [("add", {"a", "b"})]
    assert all(isinstance(v, int) for v in forced.tool_calls[0]["args"].values())
    named = llm.bind_tools([get_weather, add], tool_choice="get_weather").invoke("Weather in Rome?")
    assert [c["name"] for c in named.tool_calls] == ["get_weather"]
    streamed = [c for chunk in llm.bind_tools([add], tool_choice="add").stream("2+3?") for c in chunk.tool_call_chunks]
    assert [c["name"] for c in streamed] == ["add"] and set(json.loads(streamed[0]["args"])) == {"a", "b"}
    result = ToolMessage(get_weather.invoke(named.tool_calls[0]["args"]), tool_call_id=named.tool_calls[0]["id"])
    answer = llm.bind_tools([get_weather, add]).invoke([HumanMessage("Weather in Rome?"), named, result])
    assert answer.content and not answer.tool_calls


@pytest.mark.slow
def test_batched_greedy_equals_single(server):
    def ask(question: str) -> str:
        return text_of(post(server, messages=[{"role": "user", "content": question}], max_tokens=10))

    alone = [ask(q) for q in QUESTIONS]
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        together = list(pool.map(ask, QUESTIONS))
    assert together == alone


def test_stop_n_seed_and_max_tokens(server):
    stopped = post(server, stop=["Paris"]).json()["choices"][0]
    assert "Paris" not in stopped["message"]["content"] and stopped["finish_reason"] == "stop"
    sampled = post(server, temperature=1.0, n=3, seed=7, max_tokens=6).json()
    again = post(server, temperature=1.0, n=3, seed=7, max_tokens=6).json()
    texts = [c["message"]["content"] for c in sampled["choices"]]
    assert len(texts) == 3 and texts == [c["message"]["content"] for c in again["choices"]]
    short = post(server, max_tokens=2, messages=[{"role": "user", "content": QUESTIONS[2]}]).json()
    assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 2


def test_adapter_is_selected_by_name_and_base_stays_clean(server, adapter):
    base_before = text_of(post(server))
    adapted = text_of(post(server, model=f"{BASE}@{adapter}"))
    assert adapted != base_before
    assert text_of(post(server)) == base_before
    via_factory = chat_model(f"{BASE}@{adapter}", max_tokens=12)  # ensure_server: the process-wide server
    assert via_factory.invoke(QUESTIONS[0]).content == adapted


@pytest.mark.reliability
def test_unknown_adapter_and_model_are_404_with_the_choices(server, adapter):
    response = post(server, model=f"{BASE}@nope")
    assert response.status_code == 404 and adapter in response.json()["error"]["message"]
    response = post(server, model="local/no-such-model")
    assert response.status_code == 404 and BASE in response.json()["error"]["message"]


@pytest.mark.reliability
@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"temperature": 5},
        {"n": 0},
        {"messages": [{"role": "robot", "content": "hi"}]},
        {"tools": [{"type": "function", "function": {}}]},
        {"tool_choice": "required"},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "colour"}}}],
         "tool_choice": "required"},
        {"stop": ["a", "b", "c", "d", "e"]},
        {"response_format": {"type": "xml"}},
        {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "colour"}}}},
    ],
)
def test_malformed_requests_are_400_with_a_message(server, body):
    response = post(server, **body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("invalid request:")


@pytest.mark.reliability
def test_non_json_body_is_400(server):
    response = httpx.post(f"{server.base_url}/v1/chat/completions", content=b"{not json", timeout=10)
    assert response.status_code == 400


def batching(server) -> dict:
    return httpx.get(f"{server.base_url}/health").json()["batching"]


@pytest.mark.reliability
def test_too_long_prompt_is_400_and_says_why_before_it_queues(server):
    batches = batching(server)["batches"]
    response = post(server, messages=[{"role": "user", "content": "hello " * 9000}])
    assert response.status_code == 400
    assert "context window" in response.json()["error"]["message"]
    assert batching(server)["batches"] == batches  # tokenized in the request, never in the batch worker


@pytest.mark.reliability
def test_a_20_mb_request_is_413_before_it_is_read(server):
    batches = batching(server)["batches"]
    started = time.monotonic()
    response = post(server, messages=[{"role": "user", "content": "hello " * ((20 << 20) // 6)}])
    assert response.status_code == 413 and time.monotonic() - started < 5
    message = response.json()["error"]["message"]
    assert f"limit of {MAX_REQUEST_BYTES} bytes" in message and "--max-request-bytes" in message
    assert batching(server)["batches"] == batches
    assert text_of(post(server, max_tokens=2))  # and the server goes on serving


@pytest.mark.reliability
def test_a_body_without_a_length_is_413_once_it_passes_the_limit(server):
    chunks = (b" " * (1 << 16) for _ in range(2 * MAX_REQUEST_BYTES >> 16))  # chunked: no Content-Length
    response = httpx.post(f"{server.base_url}/v1/chat/completions", content=chunks, timeout=30,
                          headers={"content-type": "application/json"})
    assert response.status_code == 413 and "--max-request-bytes" in response.json()["error"]["message"]


@pytest.mark.reliability
def test_a_client_that_disconnects_stops_its_decoding(server):
    before = batching(server)
    with pytest.raises(httpx.ReadTimeout):  # the client gives up, as a user pressing Ctrl-C would
        post(server, timeout=1.0, max_tokens=2000, messages=[{"role": "user", "content": "Count from 1 to 1000."}])
    deadline = time.monotonic() + 10
    while batching(server)["cancelled"] == before["cancelled"] and time.monotonic() < deadline:
        time.sleep(0.05)
    after = batching(server)
    assert after["cancelled"] == before["cancelled"] + 1
    time.sleep(0.5)
    assert batching(server)["decode_steps"] == after["decode_steps"]  # nothing decodes for nobody
    assert after["decode_steps"] - before["decode_steps"] < 200  # stopped long before 2000 tokens


@pytest.mark.reliability
def test_a_model_folder_needs_the_servers_consent(server, tmp_path):
    folder = str(REPO_MODEL_CACHE / BASE.replace("/", "--"))
    response = post(server, model=folder)
    assert response.status_code == 404
    assert "not a registered model" in response.json()["error"]["message"] and FOLDERS_FLAG in response.text
    assert httpx.get(f"{server.base_url}/health").json()["loaded"] == [BASE]  # nothing was loaded
    pool = ModelPool(allow_model_folders=True)
    try:  # with the flag, a folder gets as far as the folder check
        with pytest.raises(ModelNotFoundError, match="config.json"):
            pool.submit(str(tmp_path), ChatJob([{"role": "user", "content": "hi"}], [SamplingParams()]))
    finally:
        pool.close()


def test_a_repeated_greedy_or_seeded_job_is_answered_without_decoding(home, adapter):
    from peft import LoraConfig, get_peft_model

    pool = ModelPool(cache_entries=100)

    def ask(params: SamplingParams, model: str = BASE) -> tuple[str, int]:
        job = ChatJob([{"role": "user", "content": QUESTIONS[1]}], [params])
        text = pool.submit(model, job).result(timeout=300).choices[0].text
        return text, pool.stats.steps

    try:
        greedy, seeded, sampled = (SamplingParams(max_tokens=6), SamplingParams(1.0, max_tokens=6, seed=3),
                                   SamplingParams(1.0, max_tokens=6))
        for params in (greedy, seeded):
            text, steps = ask(params)
            assert ask(params) == (text, steps)  # the same answer, no decode step
        _, steps = ask(sampled)
        assert ask(sampled)[1] > steps  # an unseeded draw is never kept
        adapted, steps = ask(greedy, f"{BASE}@{adapter}")
        assert ask(greedy, f"{BASE}@{adapter}") == (adapted, steps)
        model, _ = load_model_and_tokenizer(BASE)  # re-saving the adapter's files makes its answers stale
        config = LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(model, config).save_pretrained(save_adapter_path(adapter))
        assert ask(greedy, f"{BASE}@{adapter}")[1] > steps
        assert (pool.cache.stats.hits, pool.cache.stats.entries) == (3, 4)
    finally:
        pool.close()


def test_chat_model_serves_a_folder_its_own_process_names(server):
    folder = str(REPO_MODEL_CACHE / BASE.replace("/", "--"))
    assert chat_model(folder, max_tokens=12).invoke(QUESTIONS[0]).content == text_of(post(server))


def test_broken_adapter_fails_that_request_only(server):
    broken = save_adapter_path("broken")
    broken.mkdir(parents=True)
    (broken / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "target_modules": ["nope"], "r": 2}))
    response = post(server, model=f"{BASE}@broken")
    assert response.status_code == 500 and "generation failed" in response.json()["error"]["message"]
    assert post(server).status_code == 200


def test_ensure_server_reuses_configured_url_and_reports_a_dead_one(server, monkeypatch):
    monkeypatch.setenv(URL_ENV, f"{server.base_url}/v1")
    assert ensure_server() == server.base_url
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9")
    with pytest.raises(ModelServerError, match="does not answer"):
        ensure_server()


def test_chat_model_fails_fast_on_bad_names(home, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelServerError, match="OPENAI_API_KEY"):
        chat_model("openai/gpt-4o-mini")
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        chat_model("local/no-such-model")
    with pytest.raises(ModelNotFoundError, match="existing adapters"):
        chat_model(f"{BASE}@nope")


@pytest.mark.slow
def test_out_of_process_server_starts_answers_and_stops(home):
    handle = start_server(models=[BASE], in_process=False)
    try:
        assert text_of(post(handle, max_tokens=4))
    finally:
        handle.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{handle.base_url}/health", timeout=2)
