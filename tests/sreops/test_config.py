"""The config file: the example validates, mistakes get errors that name the field."""

import datetime as dt
from pathlib import Path

import pytest

from sreops import config

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_valid() -> None:
    cfg = config.load(ROOT / "sreops.example.yaml")
    assert cfg.services["checkout"].capacity_per_replica == 80
    assert cfg.service("unknown-service").min_replicas == 1  # discovered services get defaults


def test_no_file_means_embedded_defaults(sreops_home: Path) -> None:
    assert config.load() == config.Config()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("services:\n  api:\n    capacity_per_replica: -3\n", "services.api.capacity_per_replica"),
        ("detection:\n  threshhold: 80\n", "detection.threshhold"),
        ("services:\n  api:\n    min_replicas: 5\n    max_replicas: 2\n", "min_replicas > max_replicas"),
        ("[1, 2", "not valid YAML"),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_invalid_config_names_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "sreops.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match="sreops.yaml") as err:
        config.load(path)
    assert fragment in str(err.value)


def test_missing_explicit_config_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SREOPS_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load()


def test_partitions_start_defaults_to_the_previous_month(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SREOPS_PARTITIONS_START", raising=False)
    assert config.partitions_start(config.Config(), today=dt.date(2026, 11, 23)) == dt.date(2026, 10, 1)
    assert config.partitions_start(config.Config(), today=dt.date(2027, 1, 5)) == dt.date(2026, 12, 1)
    monkeypatch.setenv("SREOPS_PARTITIONS_START", "2026-03-01")
    assert config.partitions_start(config.Config()) == dt.date(2026, 3, 1)
