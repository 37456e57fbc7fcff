"""The models a server holds: base models loaded once, LoRA adapters attached by name.

Each base model is loaded on first use (in the batch worker, never on the event loop)
and wrapped in one ``PeftModel`` the first time an adapter is asked for; further
adapters are added to that wrapper, so serving several adapters never reloads the base.
An adapter re-saved on disk (a trainer's next checkpoint) is reloaded on its next use.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimas_lg.errors import ModelNotFoundError, OptimasError
from optimas_lg.llm.adapters import adapter_path, list_adapters, split_model_name
from optimas_lg.llm.batching import Batcher
from optimas_lg.llm.generation import Completion, SamplingParams, generate_batch
from optimas_lg.llm.registry import REGISTRY, check_model, known_models, load_model_and_tokenizer


class RequestError(OptimasError):
    """The request cannot be served as given (too long for the context window, no chat template...)."""


@dataclass(frozen=True)
class ChatJob:
    messages: list[dict[str, str]]
    params: list[SamplingParams]  # one per choice


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


class ModelPool:
    """Resolves model names, queues chat jobs on one ``Batcher`` and runs their batches."""

    def __init__(self, max_batch: int = 8, max_wait: float = 0.02):
        _limit_threads()
        self._loaded: dict[str, _Loaded] = {}
        self._batcher = Batcher(self._run_batch, max_batch=max_batch, max_wait=max_wait)

    def preload(self, names: list[str]) -> None:
        """Load (converting if needed) these base models now rather than on first request."""
        for name in names:
            self._base(split_model_name(name)[0])

    def loaded(self) -> list[str]:
        return list(self._loaded)

    def model_ids(self) -> list[str]:
        """Served names for ``/v1/models``: bases, and ``base@adapter`` for each saved adapter."""
        adapters = [(_adapter_base(a), a) for a in list_adapters()]
        return list(dict.fromkeys(known_models() + self.loaded())) + [f"{b}@{a}" for b, a in adapters if b]

    def submit(self, model: str, job: ChatJob) -> Future:
        """Check the names now (fast, raises ``ModelNotFoundError``); generate later in a batch."""
        base, adapter = split_model_name(model)
        check_model(base)
        if adapter is not None:
            adapter_path(adapter)
        return self._batcher.submit((base, adapter), job, size=len(job.params))

    def close(self) -> None:
        self._batcher.close()

    def _base(self, name: str) -> _Loaded:
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

    def _run_batch(self, key: tuple[str, str | None], jobs: list[ChatJob]) -> list[ChatResult | Exception]:
        base, adapter = key
        loaded = self._base(base)
        results: list[ChatResult | Exception | None] = []
        prompts, params, owners = [], [], []
        for index, job in enumerate(jobs):
            try:
                prompt = self._encode(loaded, base, job)
            except RequestError as exc:
                results.append(exc)
                continue
            results.append(None)
            for p in job.params:
                prompts.append(prompt)
                params.append(_clamp(p, loaded.context - len(prompt)))
                owners.append(index)
        if prompts:
            with self._select(loaded, adapter):
                completions = generate_batch(loaded.peft or loaded.model, loaded.tokenizer, prompts, params)
            for index in sorted(set(owners)):
                rows = [i for i, owner in enumerate(owners) if owner == index]
                results[index] = ChatResult(len(prompts[rows[0]]), [completions[i] for i in rows])
        return results  # type: ignore[return-value]

    @staticmethod
    def _encode(loaded: _Loaded, base: str, job: ChatJob) -> list[int]:
        tokenizer = loaded.tokenizer
        if not tokenizer.chat_template:
            raise RequestError(f"model {base!r} has no chat template, so it cannot serve chat completions")
        text = tokenizer.apply_chat_template(job.messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False).input_ids
        if len(ids) >= loaded.context:
            raise RequestError(
                f"the prompt is {len(ids)} tokens but the context window of {base!r} is {loaded.context} "
                "tokens (prompt plus completion); shorten the messages"
            )
        return ids


def _clamp(params: SamplingParams, room: int) -> SamplingParams:
    if params.max_tokens <= room:
        return params
    return SamplingParams(params.temperature, params.top_p, room, params.stop, params.seed)


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
