"""The generated stream keeps the events and refreshes the values; the bench reports both methods."""

from pathlib import Path

import pandas as pd
import pytest

from sreops.devtools.bench import logs as bench
from sreops.devtools.synthetic_logs import generate
from sreops.evaluation import loghub
from sreops.logs.embedding import TokenHashEmbedder


@pytest.fixture
def frames() -> dict[str, pd.DataFrame]:
    users = ["admin", "oracle", "test", "guest", "pi", "ftp"]
    content = [f"Invalid user {users[i % 6]} from 10.0.{i}.{i + 1}" for i in range(30)]
    content += [f"Connection closed by 10.1.{i}.9 [preauth]" for i in range(10)]
    templates = ["Invalid user <*> from <*>"] * 30 + ["Connection closed by <*> [preauth]"] * 10
    return {"Ssh": pd.DataFrame({"Content": content, "EventTemplate": templates})}


def test_generated_lines_follow_their_templates_with_fresh_values(frames) -> None:
    stream = generate(frames, 2000, seed=1)
    assert len(stream.messages) == len(stream.events) == 2000
    assert set(stream.events) == {"Ssh/Invalid user <*> from <*>", "Ssh/Connection closed by <*> [preauth]"}
    share = stream.events.count("Ssh/Invalid user <*> from <*>") / 2000
    assert 0.7 < share < 0.8  # 30 of 40 source lines
    originals = set(frames["Ssh"]["Content"])
    assert sum(m in originals for m in stream.messages) < 100
    users = {m.split()[2] for m, e in zip(stream.messages, stream.events, strict=True) if "Invalid" in e}
    assert {"admin", "oracle"} <= users and len(users) > 6  # seen names and some new ones
    assert generate(frames, 50, seed=1).messages == stream.messages[:50]


def test_bench_rows_compare_both_methods(frames, tmp_path: Path, monkeypatch) -> None:
    for system, frame in frames.items():
        folder = tmp_path / system
        folder.mkdir()
        frame.assign(LineId=range(1, len(frame) + 1)).to_csv(
            folder / f"{system}_2k.log_structured_corrected.csv", index=False
        )
    monkeypatch.setattr("sreops.logs.embedding.MiniLMEmbedder", lambda: _Warm())
    rows = bench.bench_logs(tmp_path, stream_lines=3000, drain3_stream_lines=3000)
    by_name = {r["name"]: r for r in rows}
    for label in ("ours", "Drain3"):
        assert 0.0 <= by_name[f"loghub mean GA, {label}"]["value"] <= 1.0
        assert by_name[f"stream lines/s, {label}, 3k lines"]["value"] > 0
    assert by_name["stream GA, ours, 3k lines"]["value"] == 1.0
    assert by_name["loghub systems where ours GA >= Drain3"]["value"] == 1
    assert by_name["loghub mean GA, ours"]["value"] == 1.0
    assert all({"name", "value", "unit", "note"} <= set(r) for r in rows)


def test_bench_skips_cleanly_without_data(tmp_path: Path) -> None:
    rows = bench.bench_logs(tmp_path / "missing")
    assert rows[0]["note"].startswith("skipped")


class _Warm(TokenHashEmbedder):
    def warm_up(self) -> float:
        return 0.0


def test_evaluate_messages_scores_a_labelled_stream(frames) -> None:
    stream = generate(frames, 500, seed=2)
    result, _ = loghub.evaluate_messages(
        stream.messages, stream.events, "stream", "sreops", lambda m: loghub.run_sreops(m, "stream")
    )
    assert result.ga == 1.0 and result.clusters == 2
