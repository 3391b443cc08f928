"""Whatever the config file holds, loading gives a valid Config or a ConfigError that says where.

Bad files of every kind (dates that do not exist, undecodable bytes, deep nesting, YAML syntax,
duplicate keys, explicit tags, numbers the code could not use, log patterns that do not compile
or backtrack catastrophically) fail at load with the YAML path, never later with a traceback.
"""

from __future__ import annotations

import datetime as dt
import time
import typing
from pathlib import Path

import annotated_types
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from sreops import config

# Header patterns as users write them (and as the built-in formats looked when this was written).
_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
_LEVEL = r"(?i:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL)"
REALISTIC_PATTERNS = [
    r"^(?P<ts>\d{8}T\d{6})\|(?P<level>\w)\|(?P<message>.*)$",
    r"^(?P<ts>\S+ \S+) \[(?P<level>\w+)\] (?P<message>.*)$",
    rf"^(?P<ts>{_ISO})\s+-\s+\S+\s+-\s+(?P<level>{_LEVEL})\s+-\s+(?P<message>.*)$",
    rf"^(?P<ts>{_ISO})\s+\[?(?P<level>{_LEVEL})\]?\s*[:\-|]?\s*(?P<message>.*)$",
    rf"^(?P<ts>{_ISO})\s+\[[^\]]*\]\s+(?P<level>{_LEVEL})\s*[:\-|]?\s*(?P<message>.*)$",
    r"^\[(?P<ts>[^\]]{8,40})\]\s+\[?(?P<level>\w+)\]?\s+(?P<message>.*)$",
    r"^(?P<ts>[A-Z][a-z]{2}\s+\d{1,2} \d{2}:\d{2}:\d{2})\s+\S+\s+[\w.\-/]+(?:\[\d+\])?:\s*(?P<message>.*)$",
    r"^(?P<ts>[^ ]+) (?P<message>(\w+ )*\w+)$",
    r"(?P<message>.*)",
    r"^(?P<level>[A-Z]+) (?P<ts>\d+) (?P<message>\p{L}.*)$",  # \p{…}: syntax only `regex` has
]
CATASTROPHIC_PATTERNS = [
    r"^(?P<message>(a+)+)$",  # the example: quadratic in `regex`, exponential in `re`
    r"^(?P<message>(a|aa)+)$",  # exponential in both
    r"^(?P<ts>\S+) (?P<message>(\w+\s?)+)$",
    r"^(?P<message>(.*)*)x$",
    r"^(?P<message>.*.*=.*)$",
    r"^(?P<message>\d*\d*\d*)$",
]


def write(tmp_path: Path, data: bytes | str) -> Path:
    path = tmp_path / "sreops.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def load_error(tmp_path: Path, data: bytes | str) -> str:
    path = write(tmp_path, data)
    with pytest.raises(config.ConfigError) as err:
        config.load(path)
    assert str(path) in str(err.value)
    return str(err.value)


def pattern_config(pattern: str, service: str = "api") -> str:
    return yaml.safe_dump({"services": {service: {"log_pattern": pattern}}})


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("partitions:\n  start: 2026-13-45\n", ["partitions.start", "month", "2026-13-45"]),
        ("partitions:\n  start: 2026-02-30\n", ["partitions.start", "day"]),
        ("partitions:\n  start: !!timestamp 2026-02-30\n", ["partitions.start"]),
        ("partitions:\n  start: 1900-01-01\n", ["partitions.start", "hundreds of thousands"]),
        (
            "alerting:\n  silences:\n    - {starts_at: 2026-01-01T00:00:00Z, ends_at: 9999-12-31T23:59:59Z}\n",
            ["alerting.silences.0.ends_at", "2199-12-31"],
        ),
        (
            "events:\n  - {kind: deploy, starts_at: 0001-01-01T00:00:00+01:00, ends_at: 2026-01-01}\n",
            ["events.0.starts_at", "outside 1970-01-01"],
        ),
        (
            "alerting:\n  silences:\n    - {starts_at: 2026-01-02T00:00:00Z, ends_at: 2026-01-01T00:00:00Z}\n",
            ["alerting.silences.0", "ends", "before it starts"],
        ),
    ],
)
def test_impossible_or_unusable_dates_name_their_field(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    message = load_error(tmp_path, text)
    for fragment in fragments:
        assert fragment in message


def test_undecodable_bytes_give_the_line_and_column(tmp_path: Path) -> None:
    message = load_error(tmp_path, b"detection:\n  threshold: 80 \xff\n")
    assert "not UTF-8" in message and "0xff" in message and "line 2, column 17" in message


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    assert (
        config.load(write(tmp_path, b"\xef\xbb\xbfdetection:\n  threshold: 80\n")).detection.threshold == 80
    )


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n",
        "x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)),
    ],
    ids=["flow-lists", "flow-maps", "block-maps"],
)
def test_deep_nesting_is_refused_without_recursion(tmp_path: Path, text: str) -> None:
    assert f"nested deeper than {config.MAX_YAML_DEPTH} levels" in load_error(tmp_path, text)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("detection: [1, 2\n", "not valid YAML"),
        ("a: 1\n---\nb: 2\n", "expected a single document"),
        ("detection:\n  threshold: !!int abc\n", "tagged value"),
        ("logs:\n  use_embeddings: !!bool maybe\n", "tagged value"),
        ("detection:\n  threshold: !!python/object:os.system {}\n", "not valid YAML"),
        ("detection:\n\tthreshold: 3\n", "not valid YAML"),
    ],
)
def test_yaml_syntax_and_tag_errors_are_config_errors(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in load_error(tmp_path, text)


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "detection:\n  threshold: 80\n  threshold: 90\n",
            "detection.threshold: the key 'threshold' appears twice (lines 2 and 3)",
        ),
        ("services:\n  api: {}\n  api: {min_replicas: 2}\n", "services.api: the key 'api' appears twice"),
        ("alerting:\n  routes:\n    - {channel: a, channel: b}\n", "alerting.routes.0.channel"),
        ("detection: {}\ndetection: {threshold: 1}\n", "detection: the key 'detection' appears twice"),
    ],
)
def test_duplicate_keys_are_refused_with_their_path(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in load_error(tmp_path, text)


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = "services:\n  api: &base {min_replicas: 2}\n  web:\n    <<: *base\n    max_replicas: 9\n"
    assert config.load(write(tmp_path, text)).services["web"].min_replicas == 2


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("alerting", "reopen_minutes", 1.0e12),
        ("alerting", "snooze_minutes", 4_294_967_296),
        ("alerting", "pacing_seconds", float("inf")),
        ("alerting", "pacing_seconds", float("nan")),
        ("alerting", "model_max_age_hours", float("inf")),
        ("alerting", "source_stale_minutes", 10**30),
        ("detection", "threshold", float("nan")),
        ("detection", "deploy_settle_minutes", 10**9),
        ("detection", "context_minutes", float("inf")),
        ("detection", "refit_hours", 1e-9),
        ("detection", "training_points", 10**15),
        ("detection", "warmup_days", 1e300),
        ("forecasting", "horizon_hours", 10**7),
        ("forecasting", "training_days", 10**6),
        ("forecasting", "headroom", 1e308),
        ("forecasting", "correction_halflife_hours", 1e-300),
        ("forecasting", "workers", 10**6),
        ("logs", "flush_idle_seconds", float("inf")),
        ("logs", "max_bytes_per_file", 1 << 40),
        ("logs", "new_pattern_warmup_minutes", 10**12),
    ],
)
def test_numbers_the_code_cannot_use_are_refused_at_load(
    tmp_path: Path, section: str, key: str, value: float
) -> None:
    assert f"{section}.{key}" in load_error(tmp_path, yaml.safe_dump({section: {key: value}}))


@pytest.mark.parametrize(
    "service, fragment",
    [
        ({"capacity_per_replica": 1e-300}, "services.api.capacity_per_replica"),
        ({"max_replicas": 10**12}, "services.api.max_replicas"),
        ({"min_replicas": -1}, "services.api.min_replicas"),
    ],
)
def test_service_numbers_are_bounded(tmp_path: Path, service: dict, fragment: str) -> None:
    assert fragment in load_error(tmp_path, yaml.safe_dump({"services": {"api": service}}))


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "detection:\n  member: novelty+bogus\n",
            "detection.member: 'novelty+bogus' is not a detector member",
        ),
        ("detection:\n  threshold: 40\n  close_threshold: 60\n", "close_threshold 60 is above threshold 40"),
        ('services:\n  "bad\\nname": {}\n', "control character"),
        ("prometheus_url: http://x\n", "prometheus_url: Extra inputs are not permitted"),
    ],
)
def test_values_that_would_fail_later_fail_at_load(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in load_error(tmp_path, text)


def test_an_unreadable_or_oversized_file_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.yaml"
    folder.mkdir()
    with pytest.raises(config.ConfigError, match="cannot be read"):
        config.load(folder)
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"# " + b"x" * config.MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(config.ConfigError, match="at most"):
        config.load(huge)


def _numeric_fields() -> list[tuple[type[BaseModel], str, typing.Any]]:
    sections = [
        config.PartitionsConfig,
        config.PrometheusConfig,
        config.ServiceConfig,
        config.DetectionConfig,
        config.AlertingConfig,
        config.ForecastingConfig,
        config.LogsConfig,
    ]
    found = []
    for model in sections:
        for name, field in model.model_fields.items():
            kinds = set(typing.get_args(field.annotation)) | {field.annotation}
            if kinds & {int, float} and bool not in kinds:
                found.append((model, name, field))
    return found


@pytest.mark.parametrize(
    "model, name, field",
    _numeric_fields(),
    ids=lambda v: getattr(v, "__name__", v if isinstance(v, str) else ""),
)
def test_every_numeric_setting_has_an_upper_bound_the_code_survives(
    model: type[BaseModel], name: str, field: typing.Any
) -> None:
    bounds = [m for m in field.metadata if isinstance(m, annotated_types.Le | annotated_types.Lt)]
    assert bounds, f"{model.__name__}.{name} has no upper bound: add le=… chosen from how it is used"
    top = bounds[0].le if isinstance(bounds[0], annotated_types.Le) else bounds[0].lt
    if isinstance(bounds[0], annotated_types.Lt):
        top = top - 1 if isinstance(top, int) else top * (1 - 1e-9)
    big = float(top)
    # Whatever unit it counts, the largest allowed value stays usable as a duration from any date
    # the config allows (pandas, whose timestamps end in 2262, is the narrowest user).
    unit = next((u for u in ("minutes", "hours", "days", "seconds") if u in name), None)
    if unit is not None:
        span = pd.Timedelta(**{unit: big})
        assert pd.Timestamp(config.LATEST) + span < pd.Timestamp.max
        assert dt.datetime(config.LATEST.year, 1, 1) + dt.timedelta(**{unit: big}) < dt.datetime.max


def test_a_config_at_every_maximum_loads(tmp_path: Path) -> None:
    sections = {
        config.PrometheusConfig: ("sources", "prometheus"),
        config.ServiceConfig: ("services", "api"),
        config.DetectionConfig: ("detection",),
        config.AlertingConfig: ("alerting",),
        config.ForecastingConfig: ("forecasting",),
        config.LogsConfig: ("logs",),
    }
    document: dict = {}
    for model, name, field in _numeric_fields():
        le = [m.le for m in field.metadata if isinstance(m, annotated_types.Le)]
        if model in sections and le:
            place = document
            for key in sections[model]:
                place = place.setdefault(key, {})
            place[name] = le[0]
    cfg = config.load(write(tmp_path, yaml.safe_dump(document)))
    assert cfg.alerting.snooze_minutes == config.MAX_SNOOZE_MINUTES
    assert cfg.services["api"].max_replicas == config.MAX_REPLICAS


# -- log patterns ----------------------------------------------------------------------------
def test_an_invalid_log_pattern_names_its_service_and_the_problem(tmp_path: Path) -> None:
    message = load_error(tmp_path, pattern_config("(?P<message>[a-"))
    assert "services.api.log_pattern" in message and "not a valid regex" in message


def test_a_log_pattern_without_a_message_group_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, pattern_config(r"^(?P<ts>\S+) (.*)$"))
    assert "services.api.log_pattern" in message and "(?P<message>…)" in message


def test_an_over_long_log_pattern_is_refused(tmp_path: Path) -> None:
    message = load_error(tmp_path, pattern_config("(?P<message>" + "a" * config.MAX_PATTERN_CHARS + ")"))
    assert "services.api.log_pattern" in message and "at most" in message


@pytest.mark.parametrize("pattern", CATASTROPHIC_PATTERNS)
def test_a_catastrophically_backtracking_log_pattern_is_refused_quickly(tmp_path: Path, pattern: str) -> None:
    started = time.monotonic()
    message = load_error(tmp_path, pattern_config(pattern))
    assert "services.api.log_pattern" in message and "backtracks catastrophically" in message
    assert time.monotonic() - started < 15  # bounded even on a busy machine (typically 0.3 s)


def test_only_the_bad_service_is_named(tmp_path: Path) -> None:
    text = yaml.safe_dump(
        {
            "services": {
                "good": {"log_pattern": REALISTIC_PATTERNS[0]},
                "bad": {"log_pattern": "(?P<message>(a|aa)+)$"},
            }
        }
    )
    message = load_error(tmp_path, text)
    assert "services.bad.log_pattern" in message and "services.good" not in message


@pytest.mark.parametrize("pattern", REALISTIC_PATTERNS)
def test_realistic_log_patterns_are_accepted(tmp_path: Path, pattern: str) -> None:
    cfg = config.load(write(tmp_path, pattern_config(pattern)))
    assert cfg.services["api"].log_pattern == pattern


# -- fuzzing ---------------------------------------------------------------------------------
def _load_or_config_error(path: Path) -> None:
    try:
        cfg = config.load(path)
    except config.ConfigError:
        return
    assert isinstance(cfg, config.Config)


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
YAML_ALPHABET = "abcdefkly019.:-_ \n\t[]{},#&*!|>'\"%@`?~\\\x00\xff\u00e9\u2028"
FIELD_NAMES = sorted(
    {name for model, name, _ in _numeric_fields()}
    | {"services", "detection", "alerting", "forecasting", "logs", "partitions", "events", "sources"}
    | {"start", "silences", "routes", "log_pattern", "member", "starts_at", "ends_at", "kind", "channel"}
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["2026-13-45", "2026-02-30", "9999-12-31T23:59:59Z", "0001-01-01", "(?P<message>.*)"])
    | st.dates().map(lambda d: d.isoformat())
)
documents = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


@FUZZ
@given(data=st.binary(max_size=600))
def test_random_bytes_give_a_config_or_a_config_error(tmp_path: Path, data: bytes) -> None:
    _load_or_config_error(write(tmp_path, data))


@FUZZ
@given(text=st.text(alphabet=YAML_ALPHABET, max_size=300))
def test_random_yaml_text_gives_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    _load_or_config_error(write(tmp_path, text.encode("utf-8", "surrogatepass")))


@FUZZ
@given(document=st.dictionaries(st.sampled_from(FIELD_NAMES), documents, max_size=4))
def test_random_structured_documents_give_a_config_or_a_config_error(tmp_path: Path, document: dict) -> None:
    _load_or_config_error(write(tmp_path, yaml.safe_dump(document, allow_unicode=True)))


@FUZZ
@given(
    section=st.sampled_from(["detection", "alerting", "forecasting", "logs"]),
    name=st.sampled_from(sorted({name for _, name, _ in _numeric_fields()})),
    value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**80), 2**80)),
)
def test_any_number_in_any_field_gives_a_config_or_a_config_error(
    tmp_path: Path, section: str, name: str, value: float
) -> None:
    _load_or_config_error(write(tmp_path, yaml.safe_dump({section: {name: value}})))
