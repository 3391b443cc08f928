"""Streaming log clustering: each masked message joins the cluster of its event, or opens a new one.

A message is first masked (`sreops.logs.masking`), so that occurrences of one event mostly read
the same; the masked text is then assigned, in arrival order, by three rules:

1. **Exact match.** A masked text seen before goes to the same cluster (a dict lookup: this is
   the path almost every line takes, and what makes the clusterer fast).
2. **Template match.** Each cluster keeps a template: its tokens, some of them generalised
   (`<*>`). A message with the same number of tokens and the same first token that fits the
   template joins it.
3. **Evidence of a variable slot.** Words that are values but do not look like values (user
   names, host aliases, states) survive masking, so one event may first open several clusters
   that differ in one token. When `min_distinct_values` clusters differ only at the same
   position (never the first token) and their values there have the same punctuation, that
   position is a variable: the clusters merge into the oldest one, whose template generalises
   the position. Two or three values are not enough: `startup`/`shutdown`, `LEADING`/
   `LOOKING`/`FOLLOWING` are different events.
4. **Variable-length values.** Lists and stack traces change the token count of one event. A
   message whose tokens agree with a cluster's at both ends, and whose differing middle holds
   only masked values on both sides, joins that cluster; the template gets a variable-length
   slot. With `embedding_gate` on, it joins only the nearest such cluster by the cosine
   similarity of the sentence embeddings of the masked texts, and only at `similarity_threshold`
   or above.

Embeddings do not decide membership by default, because measurement says they should not
(docs/logs.md): the embeddings of two events that differ in one meaningful word
(`LEADING`/`LOOKING`, `ACTION_DOWN`/`ACTION_UP`) are closer (cosine 0.98–0.99) than those of one
event with two user names (0.6–0.9); assigning Loghub lines to the nearest template embedding
scores a mean GA of 0.90 at best against 0.99 for the rules above; and the embedding gate on
rule 4 changes no Loghub score while one model call costs as much as clustering thousands of
lines. The model's place is after clustering: each new cluster's nearest known pattern
(`sreops.logs.pipeline`), with every vector cached in the warehouse.

Cluster ids are content-derived (namespace and the first masked text of the cluster), so the same
stream gives the same ids in every run, and a merged cluster keeps pointing at the one that
absorbed it (`merged_into`). State is a list of `Cluster` records: `snapshot()` and `restore()`.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sreops.logs.masking import PLACEHOLDER, mask

GENERAL = "\x00"  # a generalised part of a template token: matches any text
SPAN = "\x01"  # a variable-length run of tokens: matches one or more masked values

RECENT_LINES = 100_000  # raw lines whose masked text is remembered (about 20 MB at most)
_SHAPE = re.compile(r"[^\s=:,;()\[\]{}<>\"'|#@]+")


@dataclass(frozen=True)
class ClusteringConfig:
    """The one configuration used for every log source (see docs/logs.md for how it was chosen)."""

    min_distinct_values: int = 4
    variable_length: bool = True
    embedding_gate: bool = False
    similarity_threshold: float = 0.8


@dataclass(eq=False)
class Cluster:
    """One event pattern: its template tokens and how many messages it holds."""

    cluster_id: str
    seq: int
    tokens: list[str]
    origin: str
    size: int = 0
    merged_into: str | None = None

    @property
    def template(self) -> str:
        """The readable template: constant text with `<*>` for each variable part."""
        return render(self.tokens)


@dataclass(frozen=True)
class Merge:
    """Cluster `absorbed` was merged into `into` (both ids stay valid; `absorbed` resolves to `into`)."""

    absorbed: str
    into: str


class Embedder:
    """Maps texts to L2-normalised vectors; see `sreops.logs.embedding` for the implementations."""

    model_name: str = "none"

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


def render(tokens: Sequence[str]) -> str:
    """Template tokens as text, with every generalised part shown as `<*>`."""
    return " ".join(tokens).replace(SPAN, PLACEHOLDER).replace(GENERAL, PLACEHOLDER)


_VALUE_RUN = re.compile(r"<\*>(?:\s+<\*>)+")


def embedding_text(masked: str) -> str:
    """What gets embedded: the masked text with runs of values made one (the count of values in a
    list says nothing about the event) and spacing collapsed."""
    return _VALUE_RUN.sub(PLACEHOLDER, " ".join(masked.split()))


def cluster_id_for(namespace: str, origin: str) -> str:
    """A stable id: the same namespace and first masked text always give the same id."""
    digest = hashlib.blake2b(f"{namespace}\x1f{origin}".encode(), digest_size=6).hexdigest()
    return f"c{digest}"


def _shape(token: str) -> str:
    """The punctuation skeleton of a token (`tag="x",` → `w="w",`): values of one slot share it."""
    return _SHAPE.sub("w", token.replace(PLACEHOLDER, "w"))


def _fits(pattern: str, token: str) -> bool:
    """Whether `token` fits a template token that may hold one generalised part."""
    if pattern == token:
        return True
    if GENERAL not in pattern:
        return False
    prefix, _, suffix = pattern.partition(GENERAL)
    return len(token) >= len(prefix) + len(suffix) and token.startswith(prefix) and token.endswith(suffix)


def _is_value(token: str) -> bool:
    return PLACEHOLDER in token or GENERAL in token or SPAN in token


_BOUNDARY = "=:([{\"'@"
_CLOSERS = ")]}\"',;:"


def generalize(values: Iterable[str]) -> str:
    """One template token covering all `values`: their common delimited prefix and suffix around `<*>`."""
    items = list(values)
    prefix = items[0]
    suffix = items[0]
    for value in items[1:]:
        n = 0
        limit = min(len(prefix), len(value))
        while n < limit and prefix[n] == value[n]:
            n += 1
        prefix = prefix[:n]
        n = 0
        limit = min(len(suffix), len(value))
        while n < limit and suffix[-1 - n] == value[-1 - n]:
            n += 1
        suffix = suffix[len(suffix) - n :] if n else ""
    # Keep only whole delimited parts: `user=root`/`user=test` → `user=<*>`, never `user=<*>t`.
    cut = max(prefix.rfind(c) for c in _BOUNDARY)
    prefix = prefix[: cut + 1] if cut >= 0 else ""
    starts = [suffix.find(c) for c in _CLOSERS if c in suffix]
    suffix = suffix[min(starts) :] if starts else ""
    shortest = min(len(v) for v in items)
    if len(prefix) + len(suffix) > shortest:
        suffix = ""
    return prefix + GENERAL + suffix


class StreamingClusterer:
    """Assigns masked messages to clusters one at a time; see the module docstring for the rules."""

    def __init__(
        self,
        namespace: str = "",
        config: ClusteringConfig | None = None,
        embedder: Embedder | None = None,
        clusters: Iterable[Cluster] = (),
    ) -> None:
        self.namespace = namespace
        self.config = config or ClusteringConfig()
        self.embedder = embedder
        self._clusters: dict[str, Cluster] = {}
        self._exact: dict[str, Cluster] = {}
        self._buckets: dict[tuple[int, str], list[Cluster]] = defaultdict(list)
        self._spans: dict[str, list[Cluster]] = defaultdict(list)
        self._lengths: dict[str, set[int]] = defaultdict(set)
        self._vectors: dict[str, np.ndarray] = {}
        self._recent: dict[str, str] = {}
        self._seq = 0
        self.merges: list[Merge] = []
        self.embedded = 0
        self.restore(clusters)

    # -- state -------------------------------------------------------------------------------
    def restore(self, clusters: Iterable[Cluster]) -> None:
        """Load clusters saved by `snapshot()` (merged ones included, so their ids still resolve)."""
        for saved in sorted(clusters, key=lambda c: c.seq):
            cluster = Cluster(
                saved.cluster_id, saved.seq, list(saved.tokens), saved.origin, saved.size, saved.merged_into
            )
            self._clusters[cluster.cluster_id] = cluster
            self._seq = max(self._seq, cluster.seq + 1)
            if cluster.merged_into is None:
                self._index(cluster)
                self._exact[cluster.origin] = cluster

    def snapshot(self) -> list[Cluster]:
        """Every cluster (live and merged), oldest first, as independent copies."""
        return [
            Cluster(c.cluster_id, c.seq, list(c.tokens), c.origin, c.size, c.merged_into)
            for c in sorted(self._clusters.values(), key=lambda c: c.seq)
        ]

    @property
    def clusters(self) -> list[Cluster]:
        """Live clusters (not merged into another), oldest first."""
        return [c for c in sorted(self._clusters.values(), key=lambda c: c.seq) if c.merged_into is None]

    def resolve(self, cluster_id: str) -> Cluster:
        """The live cluster that `cluster_id` is (or was merged into)."""
        cluster = self._clusters[cluster_id]
        while cluster.merged_into is not None:
            cluster = self._clusters[cluster.merged_into]
        return cluster

    def drain_merges(self) -> list[Merge]:
        """Merges since the last call, oldest first (for callers that relabel stored lines)."""
        merges, self.merges = self.merges, []
        return merges

    # -- assignment --------------------------------------------------------------------------
    def add(self, message: str) -> Cluster:
        """Mask `message` and assign it; returns its (live) cluster."""
        return self.assign(self.mask(message))

    def add_many(self, messages: Iterable[str]) -> list[str]:
        """Assign messages in order; returns the cluster id each one got on arrival."""
        return [self.assign(self.mask(m)).cluster_id for m in messages]

    def mask(self, message: str) -> str:
        """`masking.mask`, remembering recent lines: real logs repeat whole lines often."""
        masked = self._recent.get(message)
        if masked is None:
            masked = mask(message)
            if len(self._recent) >= RECENT_LINES:
                self._recent.clear()
            self._recent[message] = masked
        return masked

    def assign(self, masked: str) -> Cluster:
        """Assign one masked message (see `sreops.logs.masking.mask`); returns its live cluster."""
        cluster = self._exact.get(masked)
        if cluster is not None:
            if cluster.merged_into is not None:
                cluster = self.resolve(cluster.cluster_id)
                self._exact[masked] = cluster
            cluster.size += 1
            return cluster
        toks = masked.split()
        if not toks:
            toks = [""]
        cluster = self._place(masked, toks)
        cluster.size += 1
        self._exact[masked] = cluster
        return cluster

    def _place(self, masked: str, toks: list[str]) -> Cluster:
        first = toks[0]
        n = len(toks)
        candidates: dict[int, list[Cluster]] = defaultdict(list)
        for cluster in self._buckets.get((n, first), ()):
            diff = -1
            for i in range(1, n):
                pattern = cluster.tokens[i]
                token = toks[i]
                if pattern != token and not (GENERAL in pattern and _fits(pattern, token)):
                    if diff >= 0:
                        diff = -2
                        break
                    diff = i
            if diff == -1:
                return cluster
            if diff > 0:
                candidates[diff].append(cluster)
        for cluster in self._spans.get(first, ()):
            if self._fits_span(cluster.tokens, toks):
                return cluster
        merged = self._merge_on_evidence(toks, candidates)
        if merged is not None:
            return merged
        if self.config.variable_length:
            joined = self._join_variable_length(masked, toks)
            if joined is not None:
                return joined
        return self._new_cluster(masked, toks)

    def _new_cluster(self, masked: str, toks: list[str]) -> Cluster:
        cluster = Cluster(cluster_id_for(self.namespace, masked), self._seq, list(toks), masked)
        self._seq += 1
        self._clusters[cluster.cluster_id] = cluster
        self._index(cluster)
        return cluster

    def _index(self, cluster: Cluster) -> None:
        first = cluster.tokens[0]
        if SPAN in cluster.tokens:
            self._spans[first].append(cluster)
        else:
            self._buckets[(len(cluster.tokens), first)].append(cluster)
            self._lengths[first].add(len(cluster.tokens))

    def _unindex(self, cluster: Cluster) -> None:
        first = cluster.tokens[0]
        bucket = self._spans[first] if SPAN in cluster.tokens else self._buckets[(len(cluster.tokens), first)]
        if cluster in bucket:
            bucket.remove(cluster)

    # -- rule 3: evidence of a variable slot --------------------------------------------------
    def _merge_on_evidence(self, toks: list[str], candidates: dict[int, list[Cluster]]) -> Cluster | None:
        best: tuple[int, list[Cluster], set[str]] | None = None
        for position, clusters in candidates.items():
            values = {c.tokens[position] for c in clusters}
            values.add(toks[position])
            if len({_shape(v) for v in values}) != 1:
                continue
            if len(values) >= self.config.min_distinct_values and (
                best is None or len(clusters) > len(best[1])
            ):
                best = (position, clusters, values)
        if best is None:
            return None
        position, clusters, values = best
        survivor = min(clusters, key=lambda c: c.seq)
        for cluster in clusters:
            self._unindex(cluster)
        survivor.tokens[position] = generalize(values | {survivor.tokens[position]})
        for cluster in clusters:
            if cluster is not survivor:
                self._absorb(survivor, cluster)
        self._index(survivor)
        return survivor

    def _absorb(self, survivor: Cluster, cluster: Cluster) -> None:
        cluster.merged_into = survivor.cluster_id
        survivor.size += cluster.size
        self.merges.append(Merge(cluster.cluster_id, survivor.cluster_id))

    # -- rule 4: variable-length values --------------------------------------------------------
    def _fits_span(self, template: list[str], toks: list[str]) -> bool:
        at = template.index(SPAN)
        tail = len(template) - at - 1
        if len(toks) < len(template):
            return False
        middle = toks[at : len(toks) - tail]
        return (
            all(_fits(p, t) for p, t in zip(template[:at], toks[:at], strict=True))
            and all(_fits(p, t) for p, t in zip(template[at + 1 :], toks[len(toks) - tail :], strict=True))
            and all(_is_value(t) for t in middle)
        )

    def _join_variable_length(self, masked: str, toks: list[str]) -> Cluster | None:
        first = toks[0]
        options: list[tuple[Cluster, list[str]]] = []
        for length in self._lengths.get(first, ()):
            if length == len(toks):
                continue
            for cluster in self._buckets.get((length, first), ()):
                template = _span_template(cluster.tokens, toks)
                if template is not None:
                    options.append((cluster, template))
        if not options:
            return None
        if self.config.embedding_gate and self.embedder is not None:
            nearest = self._nearest(masked, [c for c, _ in options])
            if nearest is None:
                return None
        else:
            # The closest fit: the most template tokens kept outside the variable-length slot.
            nearest = max(options, key=lambda option: (len(option[1]), -option[0].seq))[0]
        template = next(t for c, t in options if c is nearest)
        self._unindex(nearest)
        nearest.tokens = template
        self._index(nearest)
        return nearest

    # -- embeddings ---------------------------------------------------------------------------
    def _vectors_for(self, masked_texts: list[str]) -> list[np.ndarray]:
        texts = [embedding_text(t) for t in masked_texts]
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            assert self.embedder is not None
            encoded = self.embedder.encode(missing)
            self.embedded += len(missing)
            for text, vector in zip(missing, encoded, strict=True):
                self._vectors[text] = vector
        return [self._vectors[t] for t in texts]

    def _nearest(self, masked: str, clusters: list[Cluster]) -> Cluster | None:
        """The cluster whose first masked text is closest to `masked`, if above the threshold."""
        vectors = self._vectors_for([masked, *(c.origin for c in clusters)])
        scores = np.stack(vectors[1:]) @ vectors[0]
        best = int(np.argmax(scores))
        return clusters[best] if scores[best] >= self.config.similarity_threshold else None


def _span_template(template: list[str], toks: list[str]) -> list[str] | None:
    """`template` with one variable-length slot that also covers `toks`, when only values differ."""
    m, n = len(template), len(toks)
    shortest = min(m, n)
    head = 0
    while head < shortest and _fits(template[head], toks[head]):
        head += 1
    tail = 0
    while tail < shortest - head and _fits(template[m - 1 - tail], toks[n - 1 - tail]):
        tail += 1
    if head == 0:
        return None
    left, right = template[head : m - tail], toks[head : n - tail]
    if not all(_is_value(t) for t in left) or not all(_is_value(t) for t in right):
        return None
    # The slot covers the whole run of values around the difference (at least one token on
    # both sides), so a list of any length, one item included, fits it later.
    while head > 1 and _is_value(template[head - 1]) and _is_value(toks[head - 1]):
        head -= 1
    while tail > 0 and _is_value(template[m - tail]) and _is_value(toks[n - tail]):
        tail -= 1
    if head == m - tail or head == n - tail:
        return None
    return [*template[:head], SPAN, *template[m - tail :]]


def assign_all(
    messages: Iterable[str], clusterer: StreamingClusterer, on_line: Callable[[], None] | None = None
) -> list[str]:
    """Assign every message in order; returns the arrival cluster id of each."""
    ids = []
    for message in messages:
        ids.append(clusterer.add(message).cluster_id)
        if on_line is not None:
            on_line()
    return ids
