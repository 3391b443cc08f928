"""Embeddings: the bundled model loads offline, vectors are normalised, the cache embeds once."""

import os

import numpy as np
import pytest

from sreops.logs.embedding import DIMENSIONS, CachedEmbedder, MiniLMEmbedder, TokenHashEmbedder


class CountingEmbedder(TokenHashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return super().encode(texts)


def test_cache_embeds_each_distinct_text_once_in_one_batch() -> None:
    inner = CountingEmbedder()
    cache = CachedEmbedder(inner)
    first = cache.encode(["a b", "c d", "a b"])
    second = cache.encode(["c d", "e f"])
    assert inner.calls == [["a b", "c d"], ["e f"]]
    np.testing.assert_allclose(first[1], second[0])
    assert set(cache.take_fresh()) == {"a b", "c d", "e f"}
    assert cache.take_fresh() == {}


def test_preloaded_vectors_are_not_recomputed() -> None:
    inner = CountingEmbedder()
    cache = CachedEmbedder(inner, {"known text": np.ones(256, dtype=np.float32)})
    cache.encode(["known text"])
    assert inner.calls == [] and cache.hits == 1


def test_token_hash_vectors_are_normalised_and_discriminate() -> None:
    vectors = TokenHashEmbedder().encode(["user login failed", "user login failed twice", "disk full"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


@pytest.mark.slow
def test_minilm_loads_offline_and_ranks_paraphrases_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    embedder = MiniLMEmbedder()
    vectors = embedder.encode(
        [
            "Connection refused by database server",
            "database server refused the connection",
            "disk quota exceeded",
        ]
    )
    assert vectors.shape == (3, DIMENSIONS) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert os.environ["HF_HUB_OFFLINE"] == "1"
