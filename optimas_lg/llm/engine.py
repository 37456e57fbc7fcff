"""The models a server holds: base models loaded once, LoRA adapters attached by name,
and the chat batches that decode on them.

Each base model is loaded on first use (in the request's thread, never on the event
loop) and wrapped in one ``PeftModel`` the first time an adapter is asked for; further
adapters are added to that wrapper, so serving several adapters never reloads the base.
An adapter re-saved on disk (a trainer's next checkpoint) is reloaded on its next use.

Prompts are tokenized in the request's thread too, before they queue: a long prompt
costs its own request time, not every other client's decode steps. A pool serves the
registered models and the adapters saved by optimas-lg; a model folder on disk only
when the server was started with ``allow_model_folders`` or was given that folder. A
deterministic job asked again is answered from a ``ResponseCache`` without decoding.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from concurrent.futures import Future
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from optimas_lg.errors import ModelNotFoundError, OptimasError
from optimas_lg.llm.adapters import adapter_path, list_adapters, split_model_name
from optimas_lg.llm.batching import Batcher
from optimas_lg.llm.generation import Completion, DecodeBatch, DecodeStats, SamplingParams
from optimas_lg.llm.registry import REGISTRY, check_model, known_models, load_model_and_tokenizer
from optimas_lg.llm.response_cache import ResponseCache, job_key
from optimas_lg.llm.tools import Tools, hermes_messages, knows_tools

FOLDERS_FLAG = "--allow-model-folders"


class RequestError(OptimasError):
    """The request cannot be served as given (too long for the context window, no chat template...)."""


@dataclass(frozen=True)
class ChatJob:
    messages: list[dict[str, Any]]
    params: list[SamplingParams]  # one per choice
    tools: Tools | None = None


@dataclass(frozen=True)
class _Prompt:
    """A chat job once tokenized: what the batch worker decodes."""

    ids: list[int]
    params: list[SamplingParams]


@dataclass(frozen=True)
class ChatResult:
    prompt_tokens: int
    choices: list[Completion]


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    context: int
    peft: Any = None
    adapters: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (peft name, stamp)


THREADS_ENV = "OPTIMAS_LG_LLM_THREADS"


def _limit_threads() -> None:
    """Cap torch's intra-op threads at the cores (or ``$OPTIMAS_LG_LLM_THREADS``): more
    threads than cores makes batched decoding slower, not faster."""
    import torch

    cap = int(os.environ.get(THREADS_ENV) or os.cpu_count() or 1)
    if torch.get_num_threads() > cap:
        torch.set_num_threads(cap)


def _stamp(path: Path) -> int:
    return max(f.stat().st_mtime_ns for f in path.iterdir() if f.is_file())


@dataclass
class BatchStats(DecodeStats):
    """How full the decode batches ran, over every batch the server opened: the figure
    to read when throughput disappoints."""

    batches: int = 0
    cancelled: int = 0  # jobs dropped mid-decode because their client left

    def to_dict(self) -> dict[str, float]:
        mean = self.row_steps / self.steps if self.steps else 0.0
        return {"batches": self.batches, "decode_steps": self.steps, "row_steps": self.row_steps,
                "mean_rows_per_step": round(mean, 3), "cancelled": self.cancelled}


class ModelPool:
    """Resolves model names, queues chat jobs on one ``Batcher`` and opens its batches."""

    def __init__(self, max_batch: int = 8, max_wait: float = 0.02, allow_model_folders: bool = False,
                 cache_entries: int = 0):
        _limit_threads()
        self._loaded: dict[str, _Loaded] = {}
        self._load_lock = threading.Lock()
        self._allow_model_folders = allow_model_folders
        self._folders: set[Path] = set()  # folders whoever started the pool named
        self.stats = BatchStats()
        self.cache: ResponseCache[ChatResult] = ResponseCache(cache_entries)
        self._batcher = Batcher(self._open_batch, max_batch=max_batch, max_wait=max_wait)

    def allow(self, folder: str) -> None:
        """Serve the model folder ``folder`` (named by whoever started the server, not by a client)."""
        self._folders.add(Path(folder).expanduser().resolve())

    def preload(self, names: list[str]) -> None:
        """Load (converting if needed) these base models now rather than on first request."""
        for name in names:
            base = split_model_name(name)[0]
            if base not in REGISTRY:
                self.allow(base)
            self._base(base)

    def loaded(self) -> list[str]:
        return list(self._loaded)

    def model_ids(self) -> list[str]:
        """Served names for ``/v1/models``: bases, and ``base@adapter`` for each saved adapter."""
        adapters = [(_adapter_base(a), a) for a in list_adapters()]
        return list(dict.fromkeys(known_models() + self.loaded())) + [f"{b}@{a}" for b, a in adapters if b]

    def submit(self, model: str, job: ChatJob) -> Future:
        """Check the names and tokenize now, in the caller's thread (raises ``ModelNotFoundError``
        or ``RequestError``); answer from the cache, or generate later in a batch."""
        base, adapter = split_model_name(model)
        self._check(base)
        version = "" if adapter is None else f"{adapter}@{_stamp(adapter_path(adapter))}"
        prompt = _encode(self._base(base), base, job)
        key = job_key(base, version, prompt, job.params)
        kept = self.cache.get(key)
        if kept is not None:
            answered: Future = Future()
            answered.set_result(kept)
            return answered
        future = self._batcher.submit((base, adapter), _Prompt(prompt, job.params), size=len(job.params))
        future.add_done_callback(partial(self._keep, key))
        return future

    def _keep(self, key: bytes | None, future: Future) -> None:
        if not future.cancelled() and future.exception() is None:
            self.cache.put(key, future.result())

    def cancel(self, future: Future) -> None:
        """Stop a submitted job whose client left (see ``Batcher.cancel``)."""
        self._batcher.cancel(future)

    def close(self) -> None:
        self._batcher.close()

    def _check(self, base: str) -> None:
        """Registered names, folders the server was given, or any folder with ``allow_model_folders``."""
        if (base not in REGISTRY and not self._allow_model_folders
                and Path(base).expanduser().resolve() not in self._folders):
            raise ModelNotFoundError(
                f"model {base!r} is not a registered model ({', '.join(sorted(REGISTRY))}); this server loads "
                f"a model folder only when started with {FOLDERS_FLAG} or --model FOLDER"
            )
        check_model(base)

    def _base(self, name: str) -> _Loaded:
        if name in self._loaded:  # no lock: the batch worker must not wait for another model's load
            return self._loaded[name]
        with self._load_lock:  # request threads race for a model's first use: load it once
            if name not in self._loaded:
                model, tokenizer = load_model_and_tokenizer(name)
                context = getattr(model.config, "max_position_embeddings", None) or tokenizer.model_max_length
                self._loaded[name] = _Loaded(model, tokenizer, int(context))
            return self._loaded[name]

    def _select(self, loaded: _Loaded, adapter: str | None) -> AbstractContextManager:
        """Activate ``adapter`` (loading or refreshing it), or disable adapters for the base."""
        if adapter is None:
            return loaded.peft.disable_adapter() if loaded.peft is not None else nullcontext()
        from peft import PeftModel

        path = adapter_path(adapter)
        stamp = _stamp(path)
        current = loaded.adapters.get(adapter)
        if current is None or current[1] != stamp:
            peft_name = f"a{len(loaded.adapters)}_{stamp}"  # module keys cannot hold '.'
            if loaded.peft is None:
                loaded.peft = PeftModel.from_pretrained(loaded.model, path, adapter_name=peft_name).eval()
            else:
                loaded.peft.load_adapter(path, adapter_name=peft_name)
            loaded.peft.set_adapter(peft_name)
            if current is not None:
                loaded.peft.delete_adapter(current[0])
            loaded.adapters[adapter] = (peft_name, stamp)
        loaded.peft.set_adapter(loaded.adapters[adapter][0])
        return nullcontext()

    def _open_batch(self, key: tuple[str, str | None]) -> "ChatBatch":
        base, adapter = key
        loaded = self._base(base)
        self.stats.batches += 1
        return ChatBatch(base, loaded, self._select(loaded, adapter), self.stats)


class ChatBatch:
    """Chat jobs decoding together on one base model with one adapter (or none).

    A job's ``n`` choices are ``n`` rows of the same prompt; the job finishes when all
    of them have. The adapter stays selected until the batch closes.
    """

    def __init__(self, base: str, loaded: _Loaded, adapter: AbstractContextManager, stats: BatchStats):
        self.base, self.loaded, self.stats = base, loaded, stats
        self._adapter = ExitStack()
        self._adapter.enter_context(adapter)
        self._decode = DecodeBatch(loaded.peft or loaded.model, loaded.tokenizer, stats)
        self._rows: dict[int, tuple[int, int]] = {}  # row id -> (job id, choice index)
        self._jobs: dict[int, tuple[int, list[Completion | None]]] = {}  # job id -> (prompt tokens, choices)

    def __len__(self) -> int:
        return len(self._decode)

    def add(self, jobs: list[tuple[int, _Prompt]]) -> list[tuple[int, BaseException]]:
        prompts, params, owners = [], [], []
        for job_id, job in jobs:
            self._jobs[job_id] = (len(job.ids), [None] * len(job.params))
            for choice, p in enumerate(job.params):
                prompts.append(job.ids)
                params.append(_clamp(p, self.loaded.context - len(job.ids)))
                owners.append((job_id, choice))
        try:
            row_ids = self._decode.add(prompts, params)
        except Exception as exc:  # noqa: BLE001 - a failed prefill fails the joining jobs, not the running ones
            for job_id, _ in jobs:
                del self._jobs[job_id]
            return [(job_id, exc) for job_id, _ in jobs]
        self._rows.update(zip(row_ids, owners, strict=True))
        return []

    def remove(self, job_ids: list[int]) -> None:
        gone = set(job_ids)
        rows = [row_id for row_id, (job_id, _) in self._rows.items() if job_id in gone]
        self._decode.remove(rows)
        for row_id in rows:
            del self._rows[row_id]
        for job_id in gone:
            self._jobs.pop(job_id, None)
        self.stats.cancelled += len(gone)

    def step(self) -> list[tuple[int, ChatResult]]:
        finished = []
        for row_id, completion in self._decode.step():
            job_id, choice = self._rows.pop(row_id)
            prompt_tokens, choices = self._jobs[job_id]
            choices[choice] = completion
            if all(c is not None for c in choices):
                del self._jobs[job_id]
                finished.append((job_id, ChatResult(prompt_tokens, choices)))
        return finished

    def close(self) -> None:
        self._adapter.close()


def _encode(loaded: _Loaded, base: str, job: ChatJob) -> list[int]:
    tokenizer = loaded.tokenizer
    if not tokenizer.chat_template:
        raise RequestError(f"model {base!r} has no chat template, so it cannot serve chat completions")
    if knows_tools(tokenizer):
        tools = None if job.tools is None else [{"type": "function", "function": f} for f in job.tools.functions]
        text = tokenizer.apply_chat_template(job.messages, tools=tools, tokenize=False, add_generation_prompt=True)
    else:  # the tools, calls and results written into plain turns
        messages = hermes_messages(job.messages, job.tools) if _has_tool_parts(job) else job.messages
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    text += job.tools.prefill if job.tools is not None else ""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) >= loaded.context:
        raise RequestError(
            f"the prompt is {len(ids)} tokens but the context window of {base!r} is {loaded.context} "
            "tokens (prompt plus completion); shorten the messages"
        )
    return ids


def _has_tool_parts(job: ChatJob) -> bool:
    return job.tools is not None or any(m["role"] == "tool" or m.get("tool_calls") for m in job.messages)


def _clamp(params: SamplingParams, room: int) -> SamplingParams:
    if params.max_tokens <= room:
        return params
    return dataclasses.replace(params, max_tokens=room)


def _adapter_base(adapter: str) -> str | None:
    """The registered name (or folder) an adapter was trained on, from its peft config."""
    try:
        config = json.loads((adapter_path(adapter) / "adapter_config.json").read_text())
    except (ModelNotFoundError, OSError, ValueError):
        return None
    base = config.get("base_model_name_or_path")
    if not base:
        return None
    for name in REGISTRY:
        if base == name or Path(base).name == name.replace("/", "--"):
            return name
    return base
