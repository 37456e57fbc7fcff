"""Where LoRA adapters live, so that the trainer saves them where the server serves them.

An adapter is a peft folder ``<home>/adapters/<adapter-id>`` (what
``PeftModel.save_pretrained`` writes); agents select it with the model name
``"<base>@<adapter-id>"``.
"""

from __future__ import annotations

import re
from pathlib import Path

from optimas_lg.errors import ModelNotFoundError
from optimas_lg.home import subdir

_ADAPTER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _adapters_dir() -> Path:
    return subdir("adapters")


def save_adapter_path(adapter_id: str) -> Path:
    """The folder to ``save_pretrained`` an adapter into (its parent is created)."""
    if not _ADAPTER_ID.fullmatch(adapter_id):
        raise ValueError(
            f"invalid adapter id {adapter_id!r}: use letters, digits, '.', '_' or '-' "
            "(at most 128 characters, starting with a letter or digit)"
        )
    return _adapters_dir() / adapter_id


def list_adapters() -> list[str]:
    """Ids of the saved adapters (folders holding an ``adapter_config.json``)."""
    return sorted(p.name for p in _adapters_dir().iterdir() if (p / "adapter_config.json").is_file())


def adapter_path(adapter_id: str) -> Path:
    """The folder of a saved adapter; ``ModelNotFoundError`` listing the existing ones if absent."""
    path = save_adapter_path(adapter_id) if _ADAPTER_ID.fullmatch(adapter_id) else None
    if path is None or not (path / "adapter_config.json").is_file():
        raise ModelNotFoundError(
            f"unknown adapter {adapter_id!r} (looked in {_adapters_dir()}); existing adapters: {list_adapters()}"
        )
    return path


def split_model_name(model: str) -> tuple[str, str | None]:
    """``"local/smollm2-135m@my-adapter"`` -> ``("local/smollm2-135m", "my-adapter")``."""
    base, sep, adapter = model.rpartition("@")
    if not sep or not base or Path(model).exists():
        return model, None
    return base, adapter
