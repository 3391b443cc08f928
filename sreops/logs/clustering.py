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
(`sreops.logs.batch`), with every vector cached in the warehouse.

Cluster ids are content-derived (namespace and the first masked text of the cluster), so the same
stream gives the same ids in every run, and a merged cluster keeps pointing at the one that
absorbed it (`merged_into`). State is a list of `Cluster` records (`sreops.logs.state`):
`snapshot()` and `restore()`. The token rules live in `sreops.logs.slots`, rule 4's alignment in
`sreops.logs.alignment`, and the end-of-batch review in `sreops.logs.review`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from sreops.logs.alignment import align
from sreops.logs.embedding import Embedder
from sreops.logs.masking import PLACEHOLDER, mask
from sreops.logs.review import SlotReview
from sreops.logs.slots import (
    GENERAL,
    SPAN,
    as_slot,
    cluster_id_for,
    embedding_text,
    fits_slot,
    generalize,
    is_anchor,
    proves_slot,
    shape_of,
)
from sreops.logs.state import Cluster, Merge

RECENT_LINES = 100_000  # raw lines whose masked text is remembered (about 20 MB at most)


@dataclass(frozen=True)
class ClusteringConfig:
    """The one configuration used for every log source (see docs/logs.md for how it was chosen)."""

    min_distinct_values: int = 4
    variable_length: bool = True
    embedding_gate: bool = False
    similarity_threshold: float = 0.8
    # Slot review by sentence embeddings (`review`): variants of one word slot are one event when
    # the messages are far apart in meaning (identifiers), apart when close (states, verbs).
    variant_share: float = 0.25  # a word where values stand joins while it holds at most this share
    review_slots: bool = False
    review_few_below: float = 0.75  # 2–3 distinct words: merge below this least pairwise cosine
    review_many_below: float = 0.90  # min_distinct_values or more: merge below this


class StreamingClusterer(SlotReview):
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
        self._slot_first: dict[int, list[Cluster]] = defaultdict(list)
        # (cluster, variant, positions): a value met a word; `review` merges them if the variant stays rare
        self._variants: list[tuple[str, str, tuple[int, ...]]] = []
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

    def _compare(self, cluster: Cluster, toks: list[str], start: int) -> tuple[int, list[int]]:
        """(the one position holding a different word, or -1 for none, -2 for more; slot positions).

        Slot positions are where a value meets a word: a plain word in a slot of the template
        (`(unknown)` where `(<*>)` stands), or a value where the template has a word (`chdir(<*>)`
        where `chdir(pwd)` stands). Slots only count for a message that shares at least one named
        token with the template: a template of nothing but values (`<*> <*> <*>`) would otherwise
        swallow every event of its length.
        """
        word_diff = -1
        slots: list[int] = []
        anchored = False
        for i in range(start, len(toks)):
            pattern = cluster.tokens[i]
            token = toks[i]
            if pattern == token:
                anchored = anchored or is_anchor(token)
                continue
            if fits_slot(pattern, token):
                anchored = anchored or is_anchor(pattern)  # `setLightsOn(<*>)` names its event
                if GENERAL not in pattern and PLACEHOLDER not in token:
                    slots.append(i)  # a word where masked values stand (a slot of words takes it)
                continue
            if proves_slot(pattern, token):
                slots.append(i)  # a value where the template has a word
                anchored = anchored or is_anchor(token)
                continue
            if word_diff >= 0:
                return -2, slots
            word_diff = i
        if start > 0:
            anchored = anchored or is_anchor(toks[0])
        if not anchored and (slots or any(cluster.tokens[i] != toks[i] for i in range(start, len(toks)))):
            return -2, slots
        return word_diff, slots

    def _first_token_options(self, toks: list[str]) -> list[Cluster]:
        """Clusters of this length with a different first token that a value makes comparable."""
        n = len(toks)
        first = toks[0]
        options = [
            c for c in self._slot_first.get(n, ()) if c.tokens[0] != first and fits_slot(c.tokens[0], first)
        ]
        if PLACEHOLDER in first:
            options.extend(
                c
                for key, bucket in self._buckets.items()
                if key[0] == n and key[1] != first and proves_slot(key[1], first)
                for c in bucket
            )
        return options

    def _place(self, masked: str, toks: list[str]) -> Cluster:
        first = toks[0]
        n = len(toks)
        candidates: dict[int, list[Cluster]] = defaultdict(list)
        best: tuple[int, int, Cluster, list[int]] | None = None  # (proofs, seq, cluster, proof positions)
        for cluster in self._buckets.get((n, first), ()):
            word_diff, proofs = self._compare(cluster, toks, 1)
            if word_diff == -1:
                if not proofs:
                    return cluster
                if best is None or (len(proofs), cluster.seq) < best[:2]:
                    best = (len(proofs), cluster.seq, cluster, proofs)
            elif word_diff > 0 and not proofs:
                candidates[word_diff].append(cluster)
        if best is None:
            # a line that starts with a value: the first token is a slot like any other
            for cluster in self._first_token_options(toks):
                word_diff, proofs = self._compare(cluster, toks, 0)
                if word_diff == -1 and (best is None or (len(proofs), cluster.seq) < best[:2]):
                    best = (len(proofs), cluster.seq, cluster, proofs)
        if best is not None:
            # a value meets a word: its own cluster for now, one with `best` if it stays rare (`review`)
            variant = self._new_cluster(masked, toks)
            self._variants.append((best[2].cluster_id, variant.cluster_id, tuple(best[3])))
            return variant
        for cluster in self._spans.get(first, ()):
            if self._fits_span(cluster.tokens, toks):
                return cluster
        if not (self.embedder is not None and self.config.review_slots):
            merged = self._merge_on_evidence(toks, candidates)
            if merged is not None:
                return merged
        if self.config.variable_length:
            joined = self._join_variable_length(masked, toks)
            if joined is not None:
                return joined
        return self._new_cluster(masked, toks)

    # -- the index: clusters by length and first token -----------------------------------------
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
            if as_slot(first) is not None:
                self._slot_first[len(cluster.tokens)].append(cluster)

    def _unindex(self, cluster: Cluster) -> None:
        first = cluster.tokens[0]
        bucket = self._spans[first] if SPAN in cluster.tokens else self._buckets[(len(cluster.tokens), first)]
        if cluster in bucket:
            bucket.remove(cluster)
        slot_first = self._slot_first.get(len(cluster.tokens), [])
        if cluster in slot_first:
            slot_first.remove(cluster)

    # -- rule 3: evidence of a variable slot --------------------------------------------------
    def _merge_on_evidence(self, toks: list[str], candidates: dict[int, list[Cluster]]) -> Cluster | None:
        best: tuple[int, list[Cluster], set[str]] | None = None
        for position, clusters in candidates.items():
            values = {c.tokens[position] for c in clusters}
            values.add(toks[position])
            if len({shape_of(v) for v in values}) != 1:
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
        aligned = align(template, toks, new_gaps=False)
        return aligned is not None and aligned == template

    def _join_variable_length(self, masked: str, toks: list[str]) -> Cluster | None:
        first = toks[0]
        options: list[tuple[Cluster, list[str]]] = []
        for length in self._lengths.get(first, ()):
            if length == len(toks):
                continue
            for cluster in self._buckets.get((length, first), ()):
                template = align(cluster.tokens, toks, new_gaps=True)
                if template is not None:
                    options.append((cluster, template))
        for cluster in self._spans.get(first, ()):
            template = align(cluster.tokens, toks, new_gaps=True)
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
