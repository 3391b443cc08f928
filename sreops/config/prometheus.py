"""The `sources.prometheus` section: where Prometheus is, what to read, how (docs/prometheus.md).

Kept apart from `sections` (which re-exports both classes) so that module stays within its size.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sreops.config.bounds import Section
from sreops.names import check_name


class PrometheusQuery(Section):
    """One PromQL query whose series become metric samples (docs/prometheus.md).

    `metric` and `service` are templates: `{label}` is replaced by that label of the series
    (`cpu_{mode}`, `node-{instance}`). Without `service`, the series' `service_label` names the
    service (falling back to `job`). `mode` is how the query is read: `samples` reads the raw
    samples of a plain series selector, each once with its own timestamp; `range` evaluates any
    expression through `/api/v1/query_range` every `step_seconds`. Default: `samples` for a plain
    selector, `range` for anything else.
    """

    query: str = Field(min_length=1, max_length=10_000)
    metric: str = Field(description="Metric name the samples are stored under; `{label}` fills in a label.")
    service: str | None = Field(default=None, description="Service name template; overrides service_label.")
    service_label: str = "service"
    mode: Literal["samples", "range"] | None = None

    @field_validator("metric", "service")
    @classmethod
    def _usable_template(cls, template: str | None) -> str | None:
        if template is not None:
            check_name(template, "template")
            for name in re.findall(r"\{([^{}]*)\}", template):
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                    raise ValueError(f"{{{name}}} is not a label name (letters, digits and _)")
        return template

    @model_validator(mode="after")
    def _samples_need_a_selector(self) -> PrometheusQuery:
        if self.mode == "samples" and not self.is_series_selector(self.query):
            raise ValueError(
                f"mode samples reads raw samples, so query must be a series selector"
                f' (name{{label="v"}}), not {self.query[:60]!r}; use mode range for an expression'
            )
        return self

    @property
    def read_mode(self) -> Literal["samples", "range"]:
        """`mode`, or the default for the query: `samples` for a plain selector, else `range`."""
        return self.mode or ("samples" if self.is_series_selector(self.query) else "range")

    @staticmethod
    def is_series_selector(query: str) -> bool:
        """True for a plain PromQL series selector (`up`, `node_cpu_seconds_total{mode="idle"}`)."""
        # a metric name and/or {matchers}, whose quoted values may hold anything
        name, matchers = r"([A-Za-z_:][A-Za-z0-9_:]*)?", r'(\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*\})?'
        match = re.fullmatch(rf"\s*{name}\s*{matchers}\s*", query)
        return bool(match and (match.group(1) or match.group(2)))


class PrometheusConfig(Section):
    """Where Prometheus is, how to authenticate and how patiently to read it (docs/prometheus.md)."""

    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    step_seconds: int = Field(
        default=15, ge=1, le=3600, description="Evaluation step of range queries; window ends align to it."
    )
    timeout_seconds: float = Field(default=20.0, gt=0, le=600, description="Per HTTP request.")
    lag_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="Read only what is this much older than Prometheus's clock (scrapes still being written).",
    )
    auth_header: str = Field(default="Authorization", pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
    auth_scheme: str = Field(
        default="Bearer", pattern=r"^[A-Za-z0-9._~+/-]*$", description="'' sends the bare secret."
    )
    auth_secret_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Environment variable holding the credential of auth_header (never the secret itself).",
    )
    queries: list[PrometheusQuery] = Field(default_factory=list)
