"""Text classification with BERT-class models: BERT-Tiny and DistilBERT (transformers).

Models are built from their configurations (no download): BERT-Tiny is
google/bert_uncased_L-2_H-128_A-2's shape (2 layers, hidden 128, 2 heads),
DistilBERT is distilbert-base-uncased's (6 layers, hidden 768, 12 heads),
both with BERT's 30,522-token vocabulary and a two-class head, random weights
unless ``checkpoint=DIR`` names a local Hugging Face model directory.

Inputs are strings of 512 words, as in the reference study, tokenized on the
CPU for every batch (WordPiece, truncated to 512 tokens) — tokenization is
real pre-processing work, as on a deployment. The tokenizer works offline: a
WordPiece vocabulary is generated here (specials, characters, sub-words and
common English words, 30,522 entries, so the embedding has BERT's size), or
``tokenizer=PATH`` gives a ``vocab.txt`` or a tokenizer directory.
``texts=FILE`` gives the inputs, one per line; by default they are generated
from the same word list with a seeded generator.
"""

from __future__ import annotations

import itertools
import random
import string
from pathlib import Path
from typing import Any

from tuner.errors import ConfigError, EdgetuneError
from workloads.inputs import existing_file
from workloads.torchbase import TorchWorkload

VOCAB_SIZE = 30522
MAX_TOKENS = 512
WORDS_PER_INPUT = 512
N_TEXTS = 64  # distinct generated inputs, cycled

WORDS = """the of and to in is was for that on as with by he at it from his an were are which this be or
has had first one their its new after but who not they have her she two been other when there all during into
school time may years more most only over city some world would where later up such used many can state about
national out known university united then made part under while between three so him age game season north
south east west system film music team group year second also series public include people life united government
before well each both through these work early number several however them since because same city history any
make day even long way high find house world use water call back little man good small great under place last
much different right think big sound help low line turn cause mean move show answer found study still learn
plant cover food sun four thought let keep eye never light grow start city earth book hear stop without watch
far color face wood main open seem together next white children begin got walk example ease paper often always
music those both mark list song measure state product black short numeral class wind question happen complete
ship area half rock order fire problem piece told knew pass farm top whole king size heard best hour better true
during hundred remember step morning reach fast five sing listen table travel less ten simple vowel toward war
lay against pattern slow center love person money serve appear road map science rule govern pull cold notice
voice fall power town fine certain fly unit lead cry dark machine note wait plan figure star box noun field rest
correct able pound done beauty drive stood contain front teach week final gave green quick develop sleep warm
free minute strong special mind behind clear tail produce fact street inch lot nothing course stay wheel full
force blue object decide surface deep moon island foot yet busy test record boat common gold possible plane age
dry wonder laugh thousand ago ran check game shape yes hot miss brought heat snow bed bring sit perhaps fill
east weight language among energy model board battery device frequency inference network camera image signal""".split()


def generated_vocab(size: int = VOCAB_SIZE) -> list[str]:
    """A WordPiece vocabulary laid out like BERT's (``[PAD]`` 0, ``[UNK]`` 100, ``[CLS]`` 101,
    ``[SEP]`` 102, ``[MASK]`` 103), filled with characters, common words and sub-words."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = itertools.chain(
        chars, (f"##{c}" for c in chars), dict.fromkeys(WORDS),
        ("".join(p) for p in itertools.product(string.ascii_lowercase, repeat=2)),
        ("##" + "".join(p) for p in itertools.product(string.ascii_lowercase, repeat=2)),
        ("".join(p) for p in itertools.product(string.ascii_lowercase, repeat=3)),
        ("##" + "".join(p) for p in itertools.product(string.ascii_lowercase, repeat=3)),
    )
    seen = set(vocab)
    for piece in pieces:
        if len(vocab) >= size:
            break
        if piece not in seen:
            seen.add(piece)
            vocab.append(piece)
    return vocab


def generated_texts(n: int, words: int = WORDS_PER_INPUT, seed: int = 0) -> list[str]:
    """``n`` seeded inputs of ``words`` words from the word list, with punctuation after every 12th,
    so tokenising them splits punctuation as real prose does."""
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        body = [rng.choice(WORDS) for _ in range(words)]
        for i in range(11, words, 12):
            body[i] += rng.choice(".,;")
        texts.append(" ".join(body))
    return texts


ARCHS: dict[str, dict[str, Any]] = {
    "bert_tiny": {"family": "bert", "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "intermediate_size": 512},
    "distilbert": {"family": "distilbert", "dim": 768, "n_layers": 6, "n_heads": 12, "hidden_dim": 3072},
}


class BertClassifier(TorchWorkload):
    """BERT-Tiny or DistilBERT with a two-class head, built from its configuration (or a local
    checkpoint), its text inputs tokenised on the CPU every batch."""

    extra = "nlp"

    def __init__(self, name: str, *, checkpoint: str | None = None, tokenizer: str | None = None,
                 texts: str | None = None, max_tokens: int | str = MAX_TOKENS, device: str | None = None,
                 seed: int = 0) -> None:
        super().__init__(name, device=device, seed=seed)
        self.arch = ARCHS[name]
        self.checkpoint = Path(checkpoint) if checkpoint else None
        if self.checkpoint is not None and not self.checkpoint.is_dir():
            raise ConfigError(f"checkpoint directory {self.checkpoint} does not exist")
        self.tokenizer_path = Path(tokenizer) if tokenizer else None
        if self.tokenizer_path is not None and not self.tokenizer_path.exists():
            raise ConfigError(f"tokenizer {self.tokenizer_path} does not exist")
        text_file = existing_file(texts, "text file")
        self.texts = [t for t in text_file.read_text().splitlines() if t.strip()] if text_file else \
            generated_texts(N_TEXTS, seed=seed)
        if not self.texts:
            raise ConfigError(f"no lines of text in {text_file}")
        self.max_tokens = int(max_tokens)
        self._tok: Any = None
        self._next = 0

    def _build(self, torch):
        try:
            import transformers
        except ImportError:
            raise EdgetuneError("this workload needs transformers: pip install 'edgetune[nlp]'") from None
        transformers.logging.set_verbosity_error()  # its config notices are not the user's business here
        self._tok = self._tokenizer()
        if self.checkpoint is not None:
            try:
                return transformers.AutoModelForSequenceClassification.from_pretrained(
                    str(self.checkpoint), local_files_only=True, return_dict=False)
            except Exception as exc:
                raise ConfigError(f"cannot load checkpoint {self.checkpoint}: {exc}") from None
        arch = dict(self.arch)
        family = arch.pop("family")
        if family == "bert":
            config = transformers.BertConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=MAX_TOKENS, num_labels=2,
                                             return_dict=False, **arch)
            return transformers.BertForSequenceClassification(config)
        config = transformers.DistilBertConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=MAX_TOKENS,
                                               num_labels=2, return_dict=False, **arch)
        return transformers.DistilBertForSequenceClassification(config)

    def _tokenizer(self) -> Any:
        """A fast WordPiece tokenizer: the user's, or one over the generated vocabulary."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

        if self.tokenizer_path is not None:
            if self.tokenizer_path.is_dir():
                from transformers import AutoTokenizer

                return AutoTokenizer.from_pretrained(str(self.tokenizer_path), local_files_only=True).backend_tokenizer
            vocab_list = self.tokenizer_path.read_text().splitlines()
        else:
            vocab_list = generated_vocab()
        vocab = {tok: i for i, tok in enumerate(vocab_list)}
        for special in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"):
            if special not in vocab:
                raise ConfigError(f"tokenizer vocabulary has no {special}")
        tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
        return tok

    def _batch(self, torch, n: int):
        """Tokenize ``n`` texts on the CPU, padded to the longest (at most ``max_tokens``)."""
        texts = [self.texts[(self._next + i) % len(self.texts)] for i in range(n)]
        self._next += n
        self._tok.enable_truncation(self.max_tokens)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        encoded = self._tok.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encoded], dtype=torch.long, device=self.device)
        mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.long, device=self.device)
        return ids, mask

    def teardown(self) -> None:
        self._tok = None
        super().teardown()


def _factory(name: str, what: str):
    def make(**options: Any) -> BertClassifier:
        return BertClassifier(name, **options)

    make.__doc__ = f"{name}: {what} text classification (random weights unless checkpoint=DIR; 512-word inputs)"
    make.requires = ("torch", "transformers", "tokenizers")  # type: ignore[attr-defined]
    make.extra = "nlp"  # type: ignore[attr-defined]
    return make


bert_tiny = _factory("bert_tiny", "BERT-Tiny (2 layers, hidden 128)")
distilbert = _factory("distilbert", "DistilBERT (6 layers, hidden 768)")
