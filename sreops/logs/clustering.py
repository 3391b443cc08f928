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
MAX_REVIEWED = 12  # variants of one slot embedded in a review (the rest follow the first ones)
_SHAPE = re.compile(r"[^\s=:,;()\[\]{}<>\"'|#@]+")


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


_LIST = re.compile(r"w(?:[,;]w)+")


def _shape(token: str) -> str:
    """The punctuation skeleton of a token (`tag="x",` → `w="w",`): values of one slot share it.

    A comma-separated list of values has the skeleton of one value (`a,b,c` → `w`): one variable
    written as a single value or as a list is one slot.
    """
    return _LIST.sub("w", _SHAPE.sub("w", token.replace(PLACEHOLDER, "w")))


_SLOT_PATTERNS: dict[str, re.Pattern[str]] = {}


def _fits(pattern: str, token: str) -> bool:
    """Whether `token` fits a template token whose generalised parts match any text."""
    if pattern == token:
        return True
    if GENERAL not in pattern:
        return False
    if pattern.count(GENERAL) == 1:
        prefix, _, suffix = pattern.partition(GENERAL)
        return len(token) >= len(prefix) + len(suffix) and token.startswith(prefix) and token.endswith(suffix)
    compiled = _SLOT_PATTERNS.get(pattern)
    if compiled is None:
        compiled = re.compile(".*".join(re.escape(part) for part in pattern.split(GENERAL)), re.DOTALL)
        if len(_SLOT_PATTERNS) > 10_000:
            _SLOT_PATTERNS.clear()
        _SLOT_PATTERNS[pattern] = compiled
    return compiled.fullmatch(token) is not None


def _anchor(token: str) -> bool:
    """A token that names something: a letter outside its values (`iar`, `cr:<*>`, not `<*>` or `-`)."""
    text = token.replace(PLACEHOLDER, "").replace(GENERAL, "").replace(SPAN, "")
    return any(ch.isalpha() for ch in text)


def _is_value(token: str) -> bool:
    return PLACEHOLDER in token or GENERAL in token or SPAN in token


def _slot(token: str) -> str | None:
    """A token that holds values, as a slot: its literal text kept, each value matching any text.

    `rhost=<*>` → `rhost=` + GENERAL, `<*>=<*>` → GENERAL `=` GENERAL; a template token already
    generalised is its own slot; a token without a value is not a slot (None).
    """
    if GENERAL in token:
        return token
    if PLACEHOLDER not in token:
        return None
    return token.replace(PLACEHOLDER, GENERAL)


def _proves_slot(word: str, value: str) -> bool:
    """Whether a masked `value` shows that the position where a template has `word` holds values.

    The literal text around the value must agree: `chdir(pwd)` / `chdir(<*>)`, `admin` / `<*>`,
    `allreduce.rts:` / `<*>:`. Other text around it (`tty=NODEVssh` / `tty=:<*>`, `num=<*>` /
    `topActivity=<*>`) says nothing.
    """
    slot = _slot(value)
    return slot is not None and _fits(slot, word)


def _fits_slot(pattern: str, token: str) -> bool:
    """Whether `token` equals `pattern` or fills the slot `pattern` is (any text between its ends)."""
    if pattern == token:
        return True
    slot = _slot(pattern)
    return slot is not None and _fits(slot, token)


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
                anchored = anchored or _anchor(token)
                continue
            if _fits_slot(pattern, token):
                anchored = anchored or _anchor(pattern)  # `setLightsOn(<*>)` names its event
                if GENERAL not in pattern and PLACEHOLDER not in token:
                    slots.append(i)  # a word where masked values stand (a slot of words takes it)
                continue
            if _proves_slot(pattern, token):
                slots.append(i)  # a value where the template has a word
                anchored = anchored or _anchor(token)
                continue
            if word_diff >= 0:
                return -2, slots
            word_diff = i
        if start > 0:
            anchored = anchored or _anchor(toks[0])
        if not anchored and (slots or any(cluster.tokens[i] != toks[i] for i in range(start, len(toks)))):
            return -2, slots
        return word_diff, slots

    def _first_token_options(self, toks: list[str]) -> list[Cluster]:
        """Clusters of this length with a different first token that a value makes comparable."""
        n = len(toks)
        first = toks[0]
        options = [
            c for c in self._slot_first.get(n, ()) if c.tokens[0] != first and _fits_slot(c.tokens[0], first)
        ]
        if PLACEHOLDER in first:
            options.extend(
                c
                for key, bucket in self._buckets.items()
                if key[0] == n and key[1] != first and _proves_slot(key[1], first)
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
        if _slot(survivor.tokens[0]) is not None:
            pool = [c for key, bucket in self._buckets.items() if key[0] == n for c in bucket]
        else:
            pool = list(self._buckets.get((n, survivor.tokens[0]), []))
        covered = [
            c
            for c in pool
            if c is not survivor
            and all(_fits_slot(p, t) for p, t in zip(survivor.tokens, c.tokens, strict=True))
            and any(p == t and _anchor(p) for p, t in zip(survivor.tokens, c.tokens, strict=True))
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
            if _slot(first) is not None:
                self._slot_first[len(cluster.tokens)].append(cluster)

    def _unindex(self, cluster: Cluster) -> None:
        first = cluster.tokens[0]
        bucket = self._spans[first] if SPAN in cluster.tokens else self._buckets[(len(cluster.tokens), first)]
        if cluster in bucket:
            bucket.remove(cluster)
        slot_first = self._slot_first.get(len(cluster.tokens), [])
        if cluster in slot_first:
            slot_first.remove(cluster)

    # -- slot review: embeddings decide word slots ----------------------------------------------
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
                    if _is_value(word):
                        continue
                    rest = tuple(cluster.tokens[:position] + cluster.tokens[position + 1 :])
                    groups[(rest, _shape(word))].append(cluster)
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
                    or _fits_slot(a.tokens[i], b.tokens[i])
                    or _fits_slot(b.tokens[i], a.tokens[i])
                    or _proves_slot(a.tokens[i], b.tokens[i])
                    or _proves_slot(b.tokens[i], a.tokens[i])
                )
                for i in range(len(a.tokens))
            ):
                pending.append((first_id, second_id, positions))
                continue
            # the side holding words where the other holds values is the variant
            words_a = sum(not _is_value(a.tokens[i]) for i in positions)
            words_b = sum(not _is_value(b.tokens[i]) for i in positions)
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


_GAP_MEMO: dict[str, bool] = {}
_NAMED_FIELD = re.compile(r"[A-Za-z_][\w.\-]*=")


def _gap_token(token: str) -> bool:
    """A token an optional or variable-length part may hold: a value, but not a named field.

    `<*>`, `<*>,`, `(<*>)`, `[<*>]`, `pkg.Class.method:<*>` (list items, a parenthesised
    alternate, stack frames) qualify; `user=<*>` does not: a field with a name is part of the
    event's structure.
    """
    known = _GAP_MEMO.get(token)
    if known is None:
        known = (PLACEHOLDER in token or GENERAL in token) and _NAMED_FIELD.match(token) is None
        if len(_GAP_MEMO) > 100_000:
            _GAP_MEMO.clear()
        _GAP_MEMO[token] = known
    return known


def _words(tokens: list[str]) -> list[str]:
    """The tokens that are plain words (no value in them): every alignment must match them all."""
    return [t for t in tokens if t != SPAN and PLACEHOLDER not in t and GENERAL not in t]


def _subsequence(needles: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(h == n for h in it) for n in needles)


def align(template: list[str], toks: list[str], new_gaps: bool) -> list[str] | None:
    """A template covering both `template` and `toks`, where they differ only by runs of values.

    Tokens are matched in order (equal, or filling a slot); a `SPAN` of the template takes any
    run of value tokens, none included; with `new_gaps`, a run of value tokens present on one side
    only (a list of another length, an optional `(<*>)`) becomes a new `SPAN`. The first token
    must match, and at least one named token besides. None when no such alignment exists.
    """
    m, n = len(template), len(toks)
    if m == 0 or n == 0 or not _fits_slot(template[0], toks[0]) and template[0] != toks[0]:
        return None
    # a plain word of the template is never skipped, and matches only itself: a cheap necessary test
    if not _subsequence(_words(template), toks):
        return None
    neg = -1
    # best[i][j]: most matched tokens aligning template[i:] with toks[j:] (neg: impossible)
    best = [[neg] * (n + 1) for _ in range(m + 1)]
    best[m][n] = 0
    for i in range(m, -1, -1):
        for j in range(n, -1, -1):
            if i == m and j == n:
                continue
            score = neg
            if i < m and template[i] == SPAN:
                score = max(score, best[i + 1][j])
                if j < n and _gap_token(toks[j]):
                    score = max(score, best[i][j + 1])
            else:
                matches = i < m and j < n and (template[i] == toks[j] or _fits_slot(template[i], toks[j]))
                if matches and best[i + 1][j + 1] >= 0:
                    score = max(score, best[i + 1][j + 1] + 1)
                if new_gaps and i < m and _gap_token(template[i]):
                    score = max(score, best[i + 1][j])
                if new_gaps and j < n and _gap_token(toks[j]):
                    score = max(score, best[i][j + 1])
            best[i][j] = score
    if best[0][0] < 0 or best[1][1] + 1 != best[0][0] and template[0] != SPAN:
        return None
    out: list[str] = []
    anchors = 0
    i = j = 0
    while i < m or j < n:
        here = best[i][j]
        if i < m and template[i] == SPAN:
            if j < n and _gap_token(toks[j]) and best[i][j + 1] == here:
                j += 1
                continue
            _append_span(out)
            i += 1
            continue
        if (
            i < m
            and j < n
            and (template[i] == toks[j] or _fits_slot(template[i], toks[j]))
            and best[i + 1][j + 1] + 1 == here
        ):
            out.append(template[i])
            anchors += int(_anchor(template[i]))
            i, j = i + 1, j + 1
            continue
        if i < m and _gap_token(template[i]) and best[i + 1][j] == here:
            _append_span(out)
            i += 1
            continue
        _append_span(out)
        j += 1
    if anchors < 2 and not (anchors == 1 and not _anchor(template[0])):
        return None
    return _fold_spans(out)


def _fold_spans(tokens: list[str]) -> list[str]:
    """Runs of values around a span become the span: a list of any length, one item included, fits."""
    out: list[str] = []
    run: list[str] = []
    for token in [*tokens, ""]:
        if token == SPAN or (token and _gap_token(token)):
            run.append(token)
            continue
        if SPAN in run:
            out.append(SPAN)
        else:
            out.extend(run)
        run = []
        if token:
            out.append(token)
    return out


def _append_span(out: list[str]) -> None:
    if not out or out[-1] != SPAN:
        out.append(SPAN)


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
