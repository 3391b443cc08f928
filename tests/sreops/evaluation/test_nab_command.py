"""`sreops eval nab` on a small NAB-shaped corpus written by the test (never the shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sreops import cli
from sreops.evaluation import nab


def write_file(
    path: Path, n: int, seed: int, jump_at: int | None, duplicates_at: int | None = None
) -> pd.DataFrame:
    """5-minute samples with a daily cycle, noise, an optional level jump, duplicate stamps and a gap."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2014-04-01", periods=n, freq="5min")
    stamps = stamps.delete(range(n // 4, n // 4 + 2))  # a 15-minute gap
    values = 50 + 10 * np.sin(np.arange(len(stamps)) / 288 * 2 * np.pi) + rng.normal(0, 1, len(stamps))
    if jump_at is not None:
        values[jump_at:] += 40
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": np.round(values, 4)})
    if duplicates_at is not None:
        frame = pd.concat(
            [
                frame.iloc[: duplicates_at + 1],
                frame.iloc[[duplicates_at] * 3],
                frame.iloc[duplicates_at + 1 :],
            ]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame.reset_index(drop=True)


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    jumpy = write_file(data / "synthetic" / "jump.csv", 1500, seed=1, jump_at=1000, duplicates_at=700)
    write_file(data / "synthetic" / "quiet.csv", 1500, seed=2, jump_at=None)
    write_file(data / "other" / "ignored.csv", 300, seed=3, jump_at=None)  # no entry in the windows file
    stamps = jumpy["timestamp"]
    windows = {
        "synthetic/jump.csv": [[f"{stamps[980]}.000000", f"{stamps[1030]}.000000"]],
        "synthetic/quiet.csv": [],
    }
    labels = tmp_path / "combined_windows.json"
    labels.write_text(json.dumps(windows))
    return data, labels


def test_command_writes_one_score_per_input_row_and_prints_three_profiles(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = corpus
    out = tmp_path / "out"
    code = cli.main(["eval", "nab", "--data", str(data), "--labels", str(labels), "--out", str(out)])
    assert code == 0
    for key in ("synthetic/jump.csv", "synthetic/quiet.csv"):
        written = pd.read_csv(out / key)
        original = pd.read_csv(data / key)
        assert list(written.columns) == ["timestamp", "value", "anomaly_score"]
        assert written["timestamp"].tolist() == original["timestamp"].tolist()
        assert np.allclose(written["value"], original["value"])
        assert written["anomaly_score"].between(0, 1).all()
    assert not (out / "other").exists()
    printed = capsys.readouterr().out
    for profile in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        assert profile in printed


def test_the_jump_is_caught_and_the_quiet_file_costs_nothing(corpus: tuple[Path, Path]) -> None:
    data, labels = corpus
    run = nab.evaluate(data, labels, None, progress=False)
    standard = run.results[0]
    assert standard.detected_windows == 1
    assert standard.score > 80


def test_category_filter_and_unknown_category(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    data, labels = corpus
    run = nab.evaluate(data, labels, None, ["synthetic"], progress=False)
    assert {f.name for f in run.files} == {"synthetic/jump.csv", "synthetic/quiet.csv"}
    code = cli.main(
        ["eval", "nab", "nope", "--data", str(data), "--labels", str(labels), "--out", str(tmp_path)]
    )
    assert code == 2


def test_score_of_a_row_does_not_depend_on_later_rows(corpus: tuple[Path, Path]) -> None:
    data, _ = corpus
    frame = nab.read_data_file(data / "synthetic" / "jump.csv")
    full = nab.detect_file(frame)
    for cut in (350, 703, 1003, 1200):
        assert np.array_equal(nab.detect_file(frame.iloc[:cut]), full[:cut])


def quirky_files(data: Path) -> dict[str, str]:
    """NAB-format files as real feeds write them; the text of each, keyed by '<category>/<file>.csv'."""
    rng = np.random.default_rng(5)
    stamps = pd.date_range("2014-03-29 20:00", periods=900, freq="5min")
    values = 50 + 10 * np.sin(np.arange(900) / 288 * 2 * np.pi) + rng.normal(0, 1, 900)
    text = {}

    def lines(ts: list[str], vs: list[str]) -> str:
        return "timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in zip(ts, vs, strict=True))

    plain = [s.strftime("%Y-%m-%d %H:%M:%S") for s in stamps]
    numbers = [f"{v:.3f}" for v in values]
    # a clock change: an hour of timestamps repeats (the clock jumps back) mid-file
    dst = plain[:500] + [s.strftime("%Y-%m-%d %H:%M:%S") for s in stamps[500:] - pd.Timedelta(hours=1)]
    text["quirks/dst_backward_jump.csv"] = lines(dst, numbers)
    text["quirks/duplicates_and_gaps.csv"] = lines(
        plain[:300] + [plain[299]] * 4 + plain[400:], numbers[:300] + ["51.0"] * 4 + numbers[400:]
    )
    text["quirks/missing_and_bad_values.csv"] = lines(
        plain, [("" if i % 97 == 0 else "n/a" if i % 101 == 0 else v) for i, v in enumerate(numbers)]
    )
    text["quirks/bad_timestamps.csv"] = lines(
        [("not a time" if i in (10, 600) else t) for i, t in enumerate(plain)], numbers
    )
    text["quirks/zoned_and_irregular.csv"] = lines(
        [
            (s + pd.Timedelta(seconds=int(rng.integers(0, 200)))).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            for s in stamps
        ],
        numbers,
    )
    text["quirks/hourly.csv"] = lines(
        [s.strftime("%Y-%m-%d %H:%M:%S") for s in pd.date_range("2014-01-01", periods=900, freq="h")], numbers
    )
    text["quirks/constant.csv"] = lines(plain, ["7"] * 900)
    text["quirks/one_row.csv"] = lines(plain[:1], numbers[:1])
    text["quirks/header_only.csv"] = "timestamp,value\n"
    for key, body in text.items():
        (data / key).parent.mkdir(parents=True, exist_ok=True)
        (data / key).write_text(body)
    return text


def test_no_nab_format_file_crashes_the_command_whatever_its_timestamps(tmp_path: Path) -> None:
    data = tmp_path / "data"
    text = quirky_files(data)
    windows = {key: [] for key in text}
    first = text["quirks/dst_backward_jump.csv"].splitlines()[1:]
    windows["quirks/dst_backward_jump.csv"] = [[first[700].split(",")[0], first[720].split(",")[0]]]
    labels = tmp_path / "windows.json"
    labels.write_text(json.dumps(windows))
    out = tmp_path / "out"
    code = cli.main(["eval", "nab", "--data", str(data), "--labels", str(labels), "--out", str(out)])
    assert code == 0
    for key, body in text.items():
        rows = body.splitlines()[1:]
        written = pd.read_csv(out / key, dtype={"timestamp": str}, keep_default_na=False)
        assert len(written) == len(rows), key  # every input row gets a score, in input order
        assert written["timestamp"].tolist() == [r.split(",")[0] for r in rows], key
        scores = pd.to_numeric(written["anomaly_score"])
        assert scores.between(0, 1).all(), key


def test_after_a_backward_jump_a_row_is_still_scored_from_the_rows_before_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    quirky_files(data)
    frame = nab.read_data_file(data / "quirks" / "dst_backward_jump.csv")
    assert frame["timestamp"].diff().dt.total_seconds().min() < 0
    full = nab.detect_file(frame)
    for cut in (499, 500, 520, 800):
        assert np.array_equal(nab.detect_file(frame.iloc[:cut]), full[:cut])
