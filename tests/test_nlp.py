"""BERT-class workloads: built from configs, tokenized offline, 512-word inputs."""

from __future__ import annotations

import pytest

from tuner.config import BATCH_SIZE, Config
from tuner.errors import ConfigError
from workloads.nlp import VOCAB_SIZE, BertClassifier, generated_texts, generated_vocab

pytest.importorskip("transformers")


def test_the_generated_vocabulary_is_berts_shape_and_inputs_are_512_words():
    vocab = generated_vocab()
    assert len(vocab) == VOCAB_SIZE == len(set(vocab))
    assert [vocab[i] for i in (0, 100, 101, 102, 103)] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    texts = generated_texts(3, seed=1)
    assert len(texts) == 3 and all(len(t.split()) == 512 for t in texts) and texts != generated_texts(3, seed=2)


@pytest.mark.parametrize("graph", ["eager", "script"])
def test_bert_tiny_runs_exactly_the_inferences_asked_with_512_token_inputs(graph):
    wl = BertClassifier("bert_tiny")
    wl.setup(Config({BATCH_SIZE: 2, "graph": graph}))
    try:
        ids, mask = wl._batch(__import__("torch"), 2)
        assert ids.shape == (2, 512) and int(mask.sum()) == 1024  # truncated to 512 tokens, no padding
        assert int((ids == 100).sum()) == 0  # every word is in the vocabulary: no [UNK]
        out = wl.run(5)
    finally:
        wl.teardown()
    assert out.inferences == 5 and len(out.batch_latencies_s) == 3 and wl.load_s > 0


def test_distilbert_with_short_inputs_and_a_users_vocabulary_and_texts(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "edge", "##s"]))
    texts = tmp_path / "texts.txt"
    texts.write_text("hello edges\n\nhello world\n")
    wl = BertClassifier("distilbert", tokenizer=str(vocab), texts=str(texts), max_tokens=16)
    wl.setup(Config({BATCH_SIZE: 2}))
    try:
        ids, _ = wl._batch(__import__("torch"), 2)
        assert ids.tolist() == [[2, 5, 6, 7, 3], [2, 5, 1, 3, 0]]  # [CLS] hello edge ##s [SEP] / ... [UNK] ... [PAD]
        assert wl.run(3).inferences == 3
    finally:
        wl.teardown()
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\nworld\n")
    with pytest.raises(ConfigError, match="no \\[UNK\\]"):
        BertClassifier("bert_tiny", tokenizer=str(bad)).setup(Config({BATCH_SIZE: 1}))
    with pytest.raises(ConfigError, match="does not exist"):
        BertClassifier("bert_tiny", checkpoint=str(tmp_path / "nope"))


def test_a_local_checkpoint_gives_the_weights(tmp_path):
    import torch
    import transformers

    config = transformers.BertConfig(vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=64, num_labels=2)
    torch.manual_seed(3)
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path / "ckpt")
    wl = BertClassifier("bert_tiny", checkpoint=str(tmp_path / "ckpt"), max_tokens=8)
    wl.setup(Config({BATCH_SIZE: 1}))
    try:
        assert wl.model.config.hidden_size == 32  # the checkpoint's shape, not BERT-Tiny's
        assert wl.run(2).inferences == 2
    finally:
        wl.teardown()
