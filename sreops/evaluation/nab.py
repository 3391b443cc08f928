"""The streaming detector over NAB data files, scored exactly as NAB v1.1 does (`sreops eval nab`).

The scorer follows `SCORING.md` beside the data (an independent write-up of NAB's sweeper,
optimiser and normalisation): per-record weights from the scaled sigmoid, one threshold per
profile optimised over the whole corpus, and the null/perfect normalisation to 0–100.
The detector is `sreops.detection.streaming.StreamingDetector`, the same code that scores
minute features in production, run over each file as a stream (row i never sees row i + 1).
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd


class NabDataError(ValueError):
    """A NAB data or label file is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Profile:
    """An application profile: the weights of true positives, false negatives and false positives."""

    name: str
    tp: float
    fn: float
    fp: float


PROFILES: tuple[Profile, ...] = (
    Profile("standard", tp=1.0, fn=1.0, fp=0.11),
    Profile("reward_low_FP_rate", tp=1.0, fn=1.0, fp=0.22),
    Profile("reward_low_FN_rate", tp=1.0, fn=2.0, fp=0.11),
)


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray:
    """NAB's sigma(y) = 2 / (1 + exp(5y)) - 1, with a hard -1 beyond y > 3."""
    y = np.asarray(y, dtype=float)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, value)


def probationary_period(n: int) -> float:
    """Records of a file's warm-up that NAB leaves out of scoring: min(floor(0.15 n), 750.0)."""
    return min(math.floor(0.15 * n), 0.15 * 5000)


@dataclass
class LabelledFile:
    """One data file's records in their order, with its anomaly windows as record indices."""

    name: str
    timestamps: pd.Series
    windows: list[tuple[int, int]]
    probation: float = field(init=False)

    def __post_init__(self) -> None:
        self.probation = probationary_period(len(self.timestamps))

    @property
    def size(self) -> int:
        return len(self.timestamps)


def window_indices(
    name: str, timestamps: pd.Series, windows: Sequence[Sequence[str]]
) -> list[tuple[int, int]]:
    """Each window's (left, right) record indices: the first occurrence of each edge timestamp."""
    first_index: dict[pd.Timestamp, int] = {}
    for index, stamp in enumerate(pd.to_datetime(timestamps)):
        if not pd.isna(stamp):
            first_index.setdefault(stamp, index)
    spans = []
    for start, end in windows:
        left, right = first_index.get(pd.Timestamp(start)), first_index.get(pd.Timestamp(end))
        if left is None or right is None:
            raise NabDataError(
                f"{name}: window [{start}, {end}] has an edge that is not a timestamp of the file"
            )
        if right < left:
            raise NabDataError(f"{name}: window [{start}, {end}] ends before it starts")
        spans.append((left, right))
    for (_, previous_right), (left, _) in zip(spans, spans[1:], strict=False):
        if left <= previous_right:
            raise NabDataError(f"{name}: windows overlap or are out of order near record {left}")
    return spans


def record_weights(file: LabelledFile, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Per record: the weighted value of a detection there, and its window number (-1 outside)."""
    n = file.size
    weights = np.empty(n)
    window_of = np.full(n, -1, dtype=int)
    max_tp = float(scaled_sigmoid(-1.0))
    previous: tuple[int, int] | None = None  # (right index, width) of the latest window passed
    spans = iter(enumerate(file.windows))
    upcoming = next(spans, None)
    i = 0
    while i < n:
        if upcoming is not None and i == upcoming[1][0]:
            number, (left, right) = upcoming
            width = right - left + 1
            inside = np.arange(left, right + 1)
            weights[left : right + 1] = profile.tp * scaled_sigmoid(-(right - inside + 1) / width) / max_tp
            window_of[left : right + 1] = number
            previous = (right, width)
            upcoming = next(spans, None)
            i = right + 1
            continue
        stop = upcoming[1][0] if upcoming is not None else n
        outside = np.arange(i, stop)
        if previous is None:
            weights[i:stop] = -profile.fp
        else:
            right, width = previous
            with np.errstate(divide="ignore"):
                past = (
                    np.abs(outside - right) / float(width - 1) if width > 1 else np.full(len(outside), np.inf)
                )
            weights[i:stop] = profile.fp * scaled_sigmoid(past)
        i = stop
    return weights, window_of


@dataclass(frozen=True)
class ProfileResult:
    """A profile's outcome on a corpus: the threshold chosen, the raw and normalised scores, counts."""

    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    score: float
    windows: int
    detected_windows: int
    false_positives: int


def score_corpus(
    files: Sequence[LabelledFile], scores: Mapping[str, np.ndarray], profile: Profile
) -> ProfileResult:
    """Optimise one threshold over every file (NAB's sweep) and normalise the best raw score to 0–100."""
    all_scores, all_weights, all_windows = [], [], []
    window_base = 0
    scorable_windows: set[int] = set()
    total_windows = 0
    for file in files:
        values = np.asarray(scores[file.name], dtype=float)
        if len(values) != file.size:
            raise NabDataError(f"{file.name}: {len(values)} anomaly scores for {file.size} records")
        weights, window_of = record_weights(file, profile)
        scorable = np.arange(file.size) >= file.probation
        global_window = np.where(window_of >= 0, window_of + window_base, -1)
        scorable_windows.update(int(w) for w in np.unique(global_window[scorable & (global_window >= 0)]))
        all_scores.append(values[scorable])
        all_weights.append(weights[scorable])
        all_windows.append(global_window[scorable])
        window_base += len(file.windows)
        total_windows += len(file.windows)
    anomaly = np.concatenate(all_scores) if all_scores else np.empty(0)
    weight = np.concatenate(all_weights) if all_weights else np.empty(0)
    window = np.concatenate(all_windows) if all_windows else np.empty(0, dtype=int)
    order = np.argsort(-anomaly, kind="stable")
    anomaly, weight, window = anomaly[order], weight[order], window[order]

    missed = -profile.fn * len(scorable_windows)
    best_in_window: dict[int, float] = {}
    false_positive_sum = 0.0
    window_sum = 0.0  # sum over detected windows of their best value
    best = (1.1, missed, 0, 0)
    false_positives = 0
    i = 0
    n = len(anomaly)
    while i < n:
        value = anomaly[i]
        while i < n and anomaly[i] == value:
            w = int(window[i])
            if w < 0:
                false_positive_sum += weight[i]
                false_positives += 1
            elif w not in best_in_window:
                best_in_window[w] = weight[i]
                window_sum += weight[i]
            elif weight[i] > best_in_window[w]:
                window_sum += weight[i] - best_in_window[w]
                best_in_window[w] = weight[i]
            i += 1
        raw = window_sum - profile.fn * (len(scorable_windows) - len(best_in_window)) + false_positive_sum
        if raw > best[1]:
            best = (float(value), raw, len(best_in_window), false_positives)
    threshold, raw, detected, fps = best
    null = -profile.fn * len(scorable_windows)
    perfect = profile.tp * total_windows
    normalised = 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0
    return ProfileResult(
        profile.name, threshold, raw, null, perfect, normalised, total_windows, detected, fps
    )


def score_all_profiles(
    files: Sequence[LabelledFile], scores: Mapping[str, np.ndarray]
) -> list[ProfileResult]:
    """`score_corpus` for each of NAB's three profiles."""
    return [score_corpus(files, scores, profile) for profile in PROFILES]


def read_data_file(path: Path) -> pd.DataFrame:
    """A NAB data file as `timestamp, value, text` rows in file order: every row kept, whatever it holds.

    Rows are never sorted or dropped (NAB scores every row, in order): timestamps that go back,
    repeat or cannot be read (NaT), and values that are missing or not numbers (NaN) are left for
    the detector, which scores each row from the rows before it. Zoned timestamps become UTC.
    Only a file that is not a two-column `timestamp,value` CSV is refused, with the reason.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as exc:
        raise NabDataError(f"{path}: cannot read as CSV: {exc}") from exc
    columns = [str(c).strip().lstrip("\ufeff").lower() for c in frame.columns]
    if columns[:2] != ["timestamp", "value"]:
        raise NabDataError(f"{path}: expected columns timestamp,value, found {list(frame.columns)}")
    frame.columns = columns
    stamps = frame["timestamp"].str.strip()
    parsed = pd.to_datetime(stamps, errors="coerce", format="mixed", utc=True)
    frame["timestamp"] = parsed.dt.tz_convert(None)
    frame["value"] = pd.to_numeric(frame["value"].str.strip(), errors="coerce")
    frame["text"] = stamps  # written back unchanged, so results line up with the data row by row
    return frame[["timestamp", "value", "text"]].reset_index(drop=True)


def read_windows(path: Path) -> dict[str, list[list[str]]]:
    """NAB's `combined_windows.json`: `"<category>/<file>.csv"` to a list of [start, end] pairs."""
    try:
        windows = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise NabDataError(f"{path}: cannot read the windows JSON: {exc}") from exc
    if not isinstance(windows, dict):
        raise NabDataError(f"{path}: expected an object keyed by '<category>/<file>.csv'")
    return windows


def discover(data_dir: Path, windows: Mapping[str, object], categories: Sequence[str] = ()) -> list[str]:
    """The `<category>/<file>.csv` keys to run: those in the windows file and present under `data_dir`."""
    keys = sorted(k for k in windows if (data_dir / k).is_file())
    if categories:
        wanted = set(categories)
        unknown = wanted - {k.split("/", 1)[0] for k in windows}
        if unknown:
            raise NabDataError(f"no category {sorted(unknown)} in the windows file")
        keys = [k for k in keys if k.split("/", 1)[0] in wanted]
    if not keys:
        raise NabDataError(f"no data file under {data_dir} has an entry in the windows file")
    return keys


def detect_file(frame: pd.DataFrame, settings=None, policy=None) -> np.ndarray:
    """The streaming detector over one file: an anomaly score in [0, 1] per row, in file order."""
    from sreops.detection.settings import AlarmPolicy, DetectorSettings
    from sreops.detection.streaming import StreamingDetector

    times = (frame["timestamp"] - pd.Timestamp(0)).dt.total_seconds().to_numpy(dtype=float)  # NaT: NaN
    result = StreamingDetector(settings or DetectorSettings(), policy or AlarmPolicy()).replay(
        times, frame["value"].to_numpy(dtype=float)
    )
    return np.clip(np.nan_to_num(result.alarm / 100.0, nan=0.0), 0.0, 1.0)


@dataclass
class NabRun:
    """What `evaluate` did: the files, their scores, and the three profiles' results."""

    files: list[LabelledFile]
    scores: dict[str, np.ndarray]
    results: list[ProfileResult]


def evaluate(
    data_dir: Path,
    windows_path: Path,
    out_dir: Path | None = None,
    categories: Sequence[str] = (),
    settings=None,
    progress: bool = True,
) -> NabRun:
    """Run the detector over every labelled file as a stream, write the result CSVs, and score them."""
    from tqdm import tqdm

    windows = read_windows(windows_path)
    keys = discover(Path(data_dir), windows, categories)
    files, scores = [], {}
    for key in tqdm(keys, desc="nab", unit="file", disable=not progress, file=sys.stderr):
        frame = read_data_file(Path(data_dir) / key)
        files.append(
            LabelledFile(key, frame["timestamp"], window_indices(key, frame["timestamp"], windows[key]))
        )
        scores[key] = detect_file(frame, settings)
        if out_dir is not None:
            target = Path(out_dir) / key
            target.parent.mkdir(parents=True, exist_ok=True)
            out = pd.DataFrame(
                {
                    "timestamp": frame["text"] if "text" in frame else frame["timestamp"],
                    "value": frame["value"],
                    "anomaly_score": scores[key],
                }
            )
            out.to_csv(target, index=False)
    return NabRun(files, scores, score_all_profiles(files, scores))


def format_results(results: Iterable[ProfileResult]) -> str:
    """A small table of the profiles' scores, thresholds and counts."""
    lines = [f"{'profile':<20} {'score':>7} {'threshold':>10} {'raw':>8} {'windows':>9} {'FP':>5}"]
    for r in results:
        lines.append(
            f"{r.profile:<20} {r.score:7.2f} {r.threshold:10.4f} {r.raw:8.3f} "
            f"{r.detected_windows:>4}/{r.windows:<4} {r.false_positives:5d}"
        )
    return "\n".join(lines)
