"""The LRF model: scoring keeps ids, any backbone works, checkpoints round-trip."""

import json

import pytest
import torch
from transformers import AutoTokenizer, GPT2Config, GPT2Model

from optimas_lg.errors import LRFError
from optimas_lg.lrf import LocalRewardModel, LRFConfig, ScoreRequest, load, save
from optimas_lg.lrf.checkpoint import read_meta
from optimas_lg.lrf.model import default_backbone

NODES = {"retrieve": "Find documents for the question.", "answer": "Answer from the documents."}


def requests() -> list[ScoreRequest]:
    return [
        ScoreRequest(f"r{i}", node, {"question": "q" * (i + 1) + " " + "word " * (7 * i)}, {"out": f"o{i}"})
        for i, node in enumerate(["answer", "retrieve", "answer", "retrieve", "answer", "answer"])
    ]


@pytest.fixture(scope="module")
def frozen() -> LocalRewardModel:
    return LocalRewardModel(NODES, LRFConfig(freeze_backbone=True, eval_batch_size=4, progress=False)).eval()


@pytest.fixture(scope="module")
def tiny_decoder(tmp_path_factory) -> str:
    """A 2-layer GPT-2 with random weights (and MiniLM's tokenizer): the decoder path, offline."""
    path = tmp_path_factory.mktemp("tiny-gpt2")
    tok = AutoTokenizer.from_pretrained(default_backbone(), local_files_only=True)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=tok.vocab_size, n_embd=32, n_layer=2, n_head=2, n_positions=256)
    GPT2Model(config).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_score_many_keeps_request_order_and_ids(frozen):
    items = requests()
    alone = [frozen.score(it.node, it.inputs, it.output) for it in items]
    batched = frozen.score_many(items)  # sorted by length and batched by 4 inside
    assert batched == pytest.approx(alone, abs=1e-5)
    assert frozen.score_many(items[::-1]) == pytest.approx(alone[::-1], abs=1e-5)
    assert len(set(round(s, 6) for s in batched)) == len(items)  # distinct scores: a mix-up would show


def test_score_many_rejects_duplicate_ids_and_unknown_nodes(frozen):
    with pytest.raises(LRFError, match="distinct ids"):
        frozen.score_many([ScoreRequest("x", "answer", {}, {}), ScoreRequest("x", "answer", {}, {})])
    with pytest.raises(LRFError, match="no head for node 'plan'"):
        frozen.score("plan", {}, {})


def test_score_many_batches_by_token_count_not_characters(frozen, monkeypatch):
    # few tokens in many characters (a word over 100 characters is one [UNK]) vs many tokens in few
    long_few = [ScoreRequest(f"a{i}", "answer", {"q": "x" * 150 + " " + "y" * 150}, {"o": str(i)}) for i in range(4)]
    short_many = [ScoreRequest(f"b{i}", "answer", {"q": ", ".join("abcdefghij")}, {"o": str(i)}) for i in range(4)]
    items = [x for pair in zip(short_many, long_few) for x in pair]
    alone = [frozen.score(it.node, it.inputs, it.output) for it in items]
    batches: list[list[int]] = []
    forward = frozen.forward

    def spy(nodes, texts):
        batches.append([len(frozen.tokenizer(t)["input_ids"]) for t in texts])
        return forward(nodes, texts)

    monkeypatch.setattr(frozen, "forward", spy)
    assert frozen.score_many(items) == pytest.approx(alone, abs=1e-5)
    assert [len(b) for b in batches] == [4, 4] and max(batches[0]) < min(batches[1])  # padding only within a length


def test_score_many_of_nothing_and_training_mode_restored(frozen):
    assert frozen.score_many([]) == []
    frozen.train()
    try:
        frozen.score_many(requests())
        assert frozen.training
    finally:
        frozen.eval()
    assert not frozen.training


def test_heads_differ_per_node(frozen):
    assert frozen.score("answer", {"q": "a"}, {"o": "b"}) != frozen.score("retrieve", {"q": "a"}, {"o": "b"})


def test_zero_heads_score_every_output_alike_until_trained(tiny_decoder):
    model = LocalRewardModel(NODES, LRFConfig(backbone=tiny_decoder, head_init="zeros", progress=False)).eval()
    assert set(model.score_many(requests())) == {0.0}
    random_heads = LocalRewardModel(NODES, LRFConfig(backbone=tiny_decoder, progress=False)).eval()
    assert len(set(random_heads.score_many(requests()))) == len(requests())


def test_decoder_backbone_uses_last_token_pooling(tiny_decoder):
    model = LocalRewardModel(NODES, LRFConfig(backbone=tiny_decoder, progress=False)).eval()
    assert model.pooling == "last"
    items = requests()
    alone = [model.score(it.node, it.inputs, it.output) for it in items]
    assert model.score_many(items) == pytest.approx(alone, abs=1e-5)  # padding does not move the pooled token


def test_lora_checkpoint_saves_adapter_and_heads_only(tiny_decoder, tmp_path):
    config = LRFConfig(backbone=tiny_decoder, lora=True, lora_target_modules=["c_attn"], progress=False)
    model = LocalRewardModel(NODES, config)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("heads.") for n in trainable)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.add_(0.5)  # as if trained: the adapter now changes the scores
    before = model.eval().score_many(requests())
    meta = save(model, tmp_path)
    assert meta["saved"] == "trainable" and set(meta["tensors"]) == trainable
    assert load(tmp_path).score_many(requests()) == pytest.approx(before, abs=1e-5)


def test_frozen_checkpoint_round_trip_is_heads_only(frozen, tmp_path):
    before = frozen.score_many(requests())
    meta = save(frozen, tmp_path)
    assert meta["saved"] == "trainable" and all(t.startswith("heads.") for t in meta["tensors"])
    assert (tmp_path / "weights.safetensors").stat().st_size < 10_000
    assert meta["backbone"] is None  # the bundled default: found again wherever the venv lives
    loaded = load(tmp_path, expected_nodes={"retrieve", "answer"})
    assert loaded.score_many(requests()) == pytest.approx(before, abs=1e-5)


def test_full_checkpoint_round_trip(tmp_path):
    model = LocalRewardModel(NODES, LRFConfig(progress=False))
    with torch.no_grad():
        model.backbone.encoder.layer[0].attention.self.query.weight.mul_(1.5)  # as if fine-tuned
    before = model.eval().score_many(requests())
    assert save(model, tmp_path)["saved"] == "full"
    assert load(tmp_path).score_many(requests()) == pytest.approx(before, abs=1e-5)


def test_node_set_change_names_added_and_missing(frozen, tmp_path):
    save(frozen, tmp_path)
    with pytest.raises(LRFError, match=r"added nodes \['plan'\] and is missing nodes \['retrieve'\]"):
        load(tmp_path, expected_nodes={"answer", "plan"})
    assert read_meta(tmp_path)["node_hash"] == json.loads((tmp_path / "meta.json").read_text())["node_hash"]


def test_missing_or_foreign_checkpoint(tmp_path):
    with pytest.raises(LRFError, match="no LRF checkpoint"):
        load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(LRFError, match="format 99"):
        load(tmp_path)
