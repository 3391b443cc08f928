"""The clusterer's review: what the stream so far shows about slots, decided after the fact.

`SlotReview` is a part of `sreops.logs.clustering.StreamingClusterer`, kept apart because it
runs apart: `review()` is called after a batch of messages, not per message. It merges rare
variants of a slot into their event (a word where an event has values, or a value where it has
a word) and, with an embedder and `review_slots` on, the word slots whose variants read as one
event with different identifiers. It works on the clusterer's index (`_buckets`, `_variants`)
through the clusterer's own `resolve`, `_index`, `_unindex`, `_absorb` and `_vectors_for`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from sreops.logs.slots import as_slot, fits_slot, generalize, is_anchor, is_value, proves_slot, shape_of
from sreops.logs.state import Cluster, Merge

if TYPE_CHECKING:
    from sreops.logs.clustering import ClusteringConfig
    from sreops.logs.embedding import Embedder

MAX_REVIEWED = 12  # variants of one slot embedded in a review (the rest follow the first ones)


class SlotReview:
    """The review and merge steps of `StreamingClusterer` (see the module docstring)."""

    config: ClusteringConfig
    embedder: Embedder | None
    merges: list[Merge]
    _buckets: dict[tuple[int, str], list[Cluster]]
    _variants: list[tuple[str, str, tuple[int, ...]]]

    def slot_families(self) -> list[tuple[int, list[Cluster]]]:
        """Live clusters that differ only by one word at one position, same skeleton: (position, clusters)."""
        families = []
        for (n, _), bucket in list(self._buckets.items()):
            if len(bucket) < 2:
                continue
            for position in range(1, n):
                groups: dict[tuple, list[Cluster]] = defaultdict(list)
                for cluster in bucket:
                    word = cluster.tokens[position]
                    if is_value(word):
                        continue
                    rest = tuple(cluster.tokens[:position] + cluster.tokens[position + 1 :])
                    groups[(rest, shape_of(word))].append(cluster)
                families.extend((position, group) for group in groups.values() if len(group) > 1)
        return families

    def review(self) -> list[Merge]:
        """Decide what the stream so far shows: rare variants of slots, and (with embeddings) word slots.

        Returns the merges made (also queued for `drain_merges`).
        """
        before = len(self.merges)
        self._review_variants()
        self._review_slots()
        return self.merges[before:]

    def _review_variants(self) -> None:
        """A word where an event has values (or a value where it has a word) joins it while rare.

        `1.2.3.4 (unknown)` beside thousands of `1.2.3.4 (host.example)`, or one `chdir(pwd)` beside
        `chdir(<*>)`, is a value of a shape masking does not know: it joins. A variant holding a
        sizeable share of the lines (`Fan speeds ( … **** … )`, a failed sensor, in most of them)
        is an event of its own: at most `variant_share` of the larger side, or a single line.
        """
        pending = []
        for first_id, second_id, positions in self._variants:
            a, b = self.resolve(first_id), self.resolve(second_id)
            if a is b:
                continue
            if len(a.tokens) != len(b.tokens) or any(
                not (
                    a.tokens[i] == b.tokens[i]
                    or fits_slot(a.tokens[i], b.tokens[i])
                    or fits_slot(b.tokens[i], a.tokens[i])
                    or proves_slot(a.tokens[i], b.tokens[i])
                    or proves_slot(b.tokens[i], a.tokens[i])
                )
                for i in range(len(a.tokens))
            ):
                pending.append((first_id, second_id, positions))
                continue
            # the side holding words where the other holds values is the variant
            words_a = sum(not is_value(a.tokens[i]) for i in positions)
            words_b = sum(not is_value(b.tokens[i]) for i in positions)
            variant, event = (
                (a, b)
                if words_a > words_b
                else (b, a)
                if words_b > words_a
                else sorted((a, b), key=lambda c: c.size)
            )
            if variant.size <= max(1, self.config.variant_share * event.size):
                self._merge_variant(a, b, positions)
            else:
                pending.append((first_id, second_id, positions))
        self._variants = pending

    def _review_slots(self) -> None:
        """Merge the word slots whose variants read as one event with different identifiers.

        A slot of 2–3 distinct words merges when the least cosine similarity between its
        messages' sentence embeddings is below `review_few_below`; one of `min_distinct_values` or
        more words, below `review_many_below`. Identifiers out of the model's vocabulary move a
        sentence far (`session opened for user cyrus` / `… news`: 0.68), a word of a closed set
        hardly (`LEADING` / `LOOKING`: 0.99): docs/logs.md measures it. Without an embedder,
        or with `review_slots` off, nothing happens here (the streaming rule 3 decides alone).
        """
        if self.embedder is None or not self.config.review_slots:
            return
        families = self.slot_families()
        if not families:
            return
        texts = [c.origin for _, group in families for c in group[:MAX_REVIEWED]]
        self._vectors_for(texts)  # one batched model call for everything not yet embedded
        for position, group in families:
            live = [c for c in group if c.merged_into is None]
            if len(live) < 2:
                continue
            values = {c.tokens[position] for c in live}
            vectors = np.stack(self._vectors_for([c.origin for c in live[:MAX_REVIEWED]]))
            least = float((vectors @ vectors.T).min())
            limit = (
                self.config.review_many_below
                if len(values) >= self.config.min_distinct_values
                else self.config.review_few_below
            )
            if least >= limit:
                continue
            survivor = min(live, key=lambda c: c.seq)
            for cluster in live:
                self._unindex(cluster)
            survivor.tokens[position] = generalize(values)
            for cluster in live:
                if cluster is not survivor:
                    self._absorb(survivor, cluster)
            self._index(survivor)
            self._absorb_covered(survivor)

    # -- the merges a review makes --------------------------------------------------------------
    def _merge_variant(self, a: Cluster, b: Cluster, positions: tuple[int, ...]) -> Cluster:
        """One cluster of two that differ where a value meets a word: those positions become slots."""
        survivor, gone = (a, b) if a.seq <= b.seq else (b, a)
        self._unindex(survivor)
        self._unindex(gone)
        for i in positions:
            survivor.tokens[i] = generalize([a.tokens[i], b.tokens[i]])
        self._index(survivor)
        self._absorb(survivor, gone)
        return self._absorb_covered(survivor)

    def _absorb_covered(self, survivor: Cluster) -> Cluster:
        """Merge into `survivor` every other live cluster of its length that its template now covers."""
        n = len(survivor.tokens)
        if as_slot(survivor.tokens[0]) is not None:
            pool = [c for key, bucket in self._buckets.items() if key[0] == n for c in bucket]
        else:
            pool = list(self._buckets.get((n, survivor.tokens[0]), []))
        covered = [
            c
            for c in pool
            if c is not survivor
            and all(fits_slot(p, t) for p, t in zip(survivor.tokens, c.tokens, strict=True))
            and any(p == t and is_anchor(p) for p, t in zip(survivor.tokens, c.tokens, strict=True))
        ]
        for cluster in covered:
            self._unindex(cluster)
            if cluster.seq < survivor.seq:  # the older id survives, as in every merge
                survivor, cluster = self._swap_into(cluster, survivor), survivor
            self._absorb(survivor, cluster)
        return survivor

    def _swap_into(self, older: Cluster, newer: Cluster) -> Cluster:
        """Give the older cluster the newer one's (more general) template and its place in the index."""
        self._unindex(newer)
        older.tokens = list(newer.tokens)
        self._index(older)
        return older
