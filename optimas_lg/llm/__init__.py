"""Local models behind an OpenAI-compatible server, with dynamic batching and LoRA adapters.

``chat_model("local/smollm2-135m")`` is all an agent needs; see docs/local-models.md.
"""

from optimas_lg.llm.adapters import list_adapters, save_adapter_path
from optimas_lg.llm.chat import chat_model
from optimas_lg.llm.exploration import ExploringChatOpenAI, Sampling, current_sampling, sampling
from optimas_lg.llm.registry import load_model_and_tokenizer, local_model_path
from optimas_lg.llm.server import ServerHandle, ensure_server, serve, start_server

__all__ = [
    "ExploringChatOpenAI",
    "Sampling",
    "ServerHandle",
    "chat_model",
    "current_sampling",
    "ensure_server",
    "list_adapters",
    "load_model_and_tokenizer",
    "local_model_path",
    "sampling",
    "save_adapter_path",
    "serve",
    "start_server",
]
