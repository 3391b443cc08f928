"""`sreops bench ingest` on a small file: every row it prints is measured, none is made up."""

from sreops.devtools.bench import ingest


def test_the_ingest_benchmark_measures_both_formats_against_the_bare_load() -> None:
    rows = {row["name"]: row for row in ingest.bench_ingest(samples=20_000)}

    for fmt in ("csv", "parquet"):
        (loaded,) = [name for name in rows if name.startswith(f"{fmt} ingest (")]
        assert "20,000 samples" in loaded  # the child ingested every generated sample
        speed, bare = rows[loaded]["value"], rows[f"{fmt} bare DuckDB load"]["value"]
        ratio = rows[f"{fmt} ingest / bare speed"]["value"]
        assert abs(ratio - speed / bare) < 1e-9 * ratio  # the ratio is the two speeds' quotient
        existing = rows[f"{fmt} ingest / bare speed, existing warehouse"]
        assert existing["value"] > 0 and "connect to close" in existing["note"]
        assert rows[f"{fmt} ingest peak memory"]["value"] > 0
