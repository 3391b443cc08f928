"""Log clustering scored on the Loghub 2k benchmark (GA, FGA, PA, lines/s): `sreops eval loghub`.

Each system's `Content` column is clustered in line order as one stream, with the one
configuration used in production (`ClusteringConfig()`); nothing is tuned per system. The
scores (GA, FGA, PA) are defined in `sreops.evaluation.log_scores`.

Clusters are scored as they stand at the end of the stream (a merge found on line 900 relabels
the lines of the absorbed cluster, as it does in the warehouse); `GA@arrival` scores the
cluster each line got when it arrived, with no later revision, for comparison.
Drain3 (the PyPI package, default configuration) can run on the same input in the same process
(`--drain3`), which is what `make bench` does. `--embedding-gate` adds the sentence-embedding
check to variable-length merges and `--review-slots` the embedding review of word slots (both
measured in docs/logs.md: neither is on by default).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sreops import paths
from sreops.evaluation.log_scores import f1_grouping_accuracy, grouping_accuracy, parsing_accuracy
from sreops.logs.clustering import ClusteringConfig, StreamingClusterer
from sreops.logs.masking import reset_memo

log = logging.getLogger(__name__)


class LoghubDataError(ValueError):
    """A Loghub folder or file is missing or malformed; the message names it."""


@dataclass(frozen=True)
class SystemResult:
    """Scores of one method on one system."""

    system: str
    method: str
    lines: int
    ga: float
    fga: float
    pa: float
    ga_arrival: float
    clusters: int
    groups: int
    seconds: float
    embedded: int = 0

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else float("inf")


# -- data ----------------------------------------------------------------------------------------
def structured_file(data_dir: Path, system: str) -> Path:
    """The system's corrected structured CSV (the original one when no corrected file exists)."""
    folder = data_dir / system
    if not folder.is_dir():
        raise LoghubDataError(
            f"no folder {folder}: expected {data_dir}/<System>/<System>_2k.log_structured*.csv"
        )
    for pattern in ("*_structured_corrected.csv", "*_structured.csv"):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    raise LoghubDataError(f"{folder} holds no *_structured_corrected.csv or *_structured.csv file")


def discover_systems(data_dir: Path) -> list[str]:
    """Every subfolder of `data_dir` that holds a structured CSV, sorted."""
    if not data_dir.is_dir():
        raise LoghubDataError(
            f"Loghub folder {data_dir} does not exist (pass --data or set {paths.SHARED_DATA_ENV['loghub']})"
        )
    return sorted(d.name for d in data_dir.iterdir() if d.is_dir() and any(d.glob("*_structured*.csv")))


def load_system(data_dir: Path, system: str) -> pd.DataFrame:
    """`LineId`, `Content`, `EventTemplate` of one system, in line order."""
    path = structured_file(data_dir, system)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"LineId", "Content", "EventTemplate"} - set(frame.columns)
    if missing:
        raise LoghubDataError(f"{path.name}: missing column(s) {sorted(missing)}")
    frame["LineId"] = frame["LineId"].astype(int)
    return frame.sort_values("LineId", kind="stable").reset_index(drop=True)[
        ["LineId", "Content", "EventTemplate"]
    ]


# -- robustness ----------------------------------------------------------------------------------
ODD_VALUES = ("unknown", "-", "none", "localhost", "N/A", "(null)", "admin", "UNKNOWN", "default", "?")


def perturb_slots(frame: pd.DataFrame, mode: str, rate: float = 0.02, seed: int = 0) -> list[str]:
    """`Content` with, on a `rate` share of lines, one ground-truth slot's value replaced.

    `odd`: by a value of a shape masking does not know (`unknown`, `-`, `(null)`, …); `list`: by a
    comma-separated list of itself. The line's event does not change, so a clusterer robust to
    what larger logs bring keeps the same grouping accuracy.
    """
    import random

    if mode not in ("odd", "list"):
        raise ValueError(f"perturbation {mode!r} is not one of odd, list")
    rng = random.Random(seed)
    compiled: dict[str, re.Pattern[str] | None] = {}
    out = []
    for content, template in zip(frame["Content"], frame["EventTemplate"], strict=True):
        if "<*>" not in template or rng.random() > rate:
            out.append(content)
            continue
        if template not in compiled:
            pattern = "(.*?)".join(re.escape(part) for part in template.split("<*>")).replace(r"\ ", r"\s+")
            try:
                compiled[template] = re.compile(f"^{pattern}$")
            except re.error:
                compiled[template] = None
        regex = compiled[template]
        match = regex.match(content) if regex is not None else None
        slots = (
            [g for g in range(1, len(match.groups()) + 1) if match.group(g) and " " not in match.group(g)]
            if match
            else []
        )
        if not slots:
            out.append(content)
            continue
        g = rng.choice(slots)
        value = match.group(g)
        new = rng.choice(ODD_VALUES) if mode == "odd" else ",".join([value] * rng.randint(2, 3))
        out.append(content[: match.start(g)] + new + content[match.end(g) :])
    return out


# -- methods -------------------------------------------------------------------------------------
@dataclass
class Clustered:
    """What a method produced for a stream: arrival ids, final ids, final templates."""

    arrival: list[str]
    final: list[str]
    templates: list[str]
    embedded: int = 0


def run_sreops(
    messages: Sequence[str], system: str, embedder=None, config: ClusteringConfig | None = None
) -> Clustered:
    """Our clusterer over one stream, from an empty state (and a cold masking memo)."""
    reset_memo()
    clusterer = StreamingClusterer(namespace=system, config=config, embedder=embedder)
    add = clusterer.add
    arrival = [add(m).cluster_id for m in messages]
    clusterer.review()
    resolved = {cid: clusterer.resolve(cid) for cid in set(arrival)}
    templates_by_id = {cid: cluster.template for cid, cluster in resolved.items()}
    final = [resolved[c].cluster_id for c in arrival]
    templates = [templates_by_id[c] for c in arrival]
    return Clustered(arrival, final, templates, clusterer.embedded)


def run_sreops_per_source(messages: Sequence[str], sources: Sequence[str], embedder=None) -> Clustered:
    """One clusterer per source (as the platform runs one per service), lines in stream order."""
    reset_memo()
    clusterers: dict[str, StreamingClusterer] = {}
    arrival = []
    for message, source in zip(messages, sources, strict=True):
        clusterer = clusterers.get(source)
        if clusterer is None:
            clusterer = clusterers[source] = StreamingClusterer(namespace=source, embedder=embedder)
        arrival.append(clusterer.add(message).cluster_id)
    for clusterer in clusterers.values():
        clusterer.review()
    owner = {c.cluster_id: clusterer for clusterer in clusterers.values() for c in clusterer.snapshot()}
    resolved = {cid: owner[cid].resolve(cid) for cid in set(arrival)}
    templates_by_id = {cid: cluster.template for cid, cluster in resolved.items()}
    return Clustered(
        arrival,
        [resolved[c].cluster_id for c in arrival],
        [templates_by_id[c] for c in arrival],
        sum(c.embedded for c in clusterers.values()),
    )


def _drain3_miner():
    try:
        from drain3 import TemplateMiner
        from drain3.template_miner_config import TemplateMinerConfig
    except ImportError as exc:
        raise RuntimeError("Drain3 is not installed: pip install drain3 (a dev dependency)") from exc
    logging.getLogger("drain3").setLevel(logging.WARNING)
    config = TemplateMinerConfig()
    config.profiling_enabled = False
    return TemplateMiner(config=config)


def run_drain3_per_source(messages: Sequence[str], sources: Sequence[str]) -> Clustered:
    """One Drain3 miner per source (default configuration), lines in stream order."""
    miners: dict = {}
    arrival = []
    for message, source in zip(messages, sources, strict=True):
        miner = miners.get(source)
        if miner is None:
            miner = miners[source] = _drain3_miner()
        arrival.append(f"{source}:{miner.add_log_message(message)['cluster_id']}")
    templates_by_id = {
        f"{source}:{c.cluster_id}": c.get_template()
        for source, miner in miners.items()
        for c in miner.drain.clusters
    }
    return Clustered(arrival, arrival, [templates_by_id[c] for c in arrival])


def run_drain3(messages: Sequence[str]) -> Clustered:
    """Drain3 with its default configuration (the PyPI package) over one stream."""
    miner = _drain3_miner()
    arrival = [str(miner.add_log_message(m)["cluster_id"]) for m in messages]
    templates_by_id = {str(c.cluster_id): c.get_template() for c in miner.drain.clusters}
    return Clustered(arrival, arrival, [templates_by_id[c] for c in arrival])


def evaluate(
    frame: pd.DataFrame, system: str, method: str, runner: Callable[[list[str]], Clustered]
) -> tuple[SystemResult, Clustered]:
    """Run one method over a system's stream and score it."""
    return evaluate_messages(
        frame["Content"].tolist(), frame["EventTemplate"].tolist(), system, method, runner
    )


def evaluate_messages(
    messages: list[str],
    truth: Sequence[str],
    system: str,
    method: str,
    runner: Callable[[list[str]], Clustered],
) -> tuple[SystemResult, Clustered]:
    """Run one method over labelled messages, timed, and score it."""
    started = time.perf_counter()
    out = runner(messages)
    seconds = time.perf_counter() - started
    result = SystemResult(
        system=system,
        method=method,
        lines=len(messages),
        ga=grouping_accuracy(out.final, truth),
        fga=f1_grouping_accuracy(out.final, truth),
        pa=parsing_accuracy(out.templates, truth),
        ga_arrival=grouping_accuracy(out.arrival, truth),
        clusters=len(set(out.final)),
        groups=len(set(truth)),
        seconds=seconds,
        embedded=out.embedded,
    )
    return result, out


def make_embedder(use_embeddings: bool = True):
    """The model for the slot review (and the gate), unless the run is structure only."""
    if not use_embeddings:
        return None
    from sreops.logs.embedding import MiniLMEmbedder

    return MiniLMEmbedder()


def evaluate_all(
    data_dir: Path,
    systems: Sequence[str] | None = None,
    *,
    drain3: bool = False,
    embedding_gate: bool = False,
    review_slots: bool = False,
    perturb: str | None = None,
    out_dir: Path | None = None,
    progress: bool = True,
) -> list[SystemResult]:
    """Score our clusterer (and Drain3 when asked) on every system; writes `--out` files if given.

    The clusterer runs as the platform does by default (structural rules and the review of rare
    variants, no model call); `review_slots` and `embedding_gate` add the measured embedding uses
    (the model loads once, before any timing).
    """
    from tqdm import tqdm

    from sreops.logs.embedding import CachedEmbedder

    names = list(systems) if systems else discover_systems(data_dir)
    if not names:
        raise LoghubDataError(f"no Loghub systems found in {data_dir}")
    model = make_embedder(review_slots or embedding_gate)
    config = ClusteringConfig(embedding_gate=embedding_gate, review_slots=review_slots)
    if model is not None:
        model.warm_up()
    results: list[SystemResult] = []
    for system in tqdm(names, desc="loghub", unit="system", disable=not progress, file=sys.stderr):
        frame = load_system(data_dir, system)
        if perturb:
            frame = frame.assign(Content=perturb_slots(frame, perturb))
        embedder = CachedEmbedder(model) if model is not None else None
        result, out = evaluate(
            frame, system, "sreops", lambda m, e=embedder, s=system: run_sreops(m, s, e, config)
        )
        results.append(result)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(
                {"LineId": frame["LineId"], "cluster_id": out.final, "template": out.templates}
            ).to_csv(out_dir / f"{system}.csv", index=False)
        if drain3:
            results.append(evaluate(frame, system, "drain3", run_drain3)[0])
    return results


def summary_rows(results: Sequence[SystemResult]) -> pd.DataFrame:
    """One row per (system, method) plus a mean row per method."""
    rows = [
        {
            "system": r.system,
            "method": r.method,
            "GA": r.ga,
            "FGA": r.fga,
            "PA": r.pa,
            "GA@arrival": r.ga_arrival,
            "clusters": r.clusters,
            "groups": r.groups,
            "lines/s": r.lines_per_second,
        }
        for r in results
    ]
    frame = pd.DataFrame(rows)
    means = []
    for method, part in frame.groupby("method", sort=False):
        total_lines = sum(r.lines for r in results if r.method == method)
        total_seconds = sum(r.seconds for r in results if r.method == method)
        means.append(
            {
                "system": "MEAN",
                "method": method,
                "GA": part["GA"].mean(),
                "FGA": part["FGA"].mean(),
                "PA": part["PA"].mean(),
                "GA@arrival": part["GA@arrival"].mean(),
                "clusters": int(part["clusters"].sum()),
                "groups": int(part["groups"].sum()),
                "lines/s": total_lines / total_seconds if total_seconds else float("inf"),
            }
        )
    return pd.concat([frame, pd.DataFrame(means)], ignore_index=True)
