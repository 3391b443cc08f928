"""The demo fleet end to end through the detector: every injected incident found early, few false ones."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from sreops.detection import explain, incidents
from sreops.detection.events import Event, event_tags
from sreops.detection.settings import AlarmPolicy, DetectorSettings
from sreops.detection.streaming import StreamingDetector
from sreops.devtools import demo

DAYS = 7
MATCH_BEFORE = dt.timedelta(minutes=5)
MATCH_AFTER_END = dt.timedelta(minutes=30)


def utc(text: str) -> dt.datetime:
    return pd.Timestamp(text).tz_convert(None).to_pydatetime()


def deadline(item: dict) -> dt.timedelta:
    """How soon after its start an injected incident must be caught: 10 minutes, or a quarter of a slow one."""
    return max(dt.timedelta(minutes=10), (utc(item["end"]) - utc(item["start"])) / 4)


@pytest.fixture(scope="module", params=[7, 11])
def fleet_incidents(request: pytest.FixtureRequest) -> tuple[list[dict], list[incidents.Incident]]:
    """Minute means of the generated fleet, scored series by series, grouped into incidents per service."""
    fleet = demo.generate(dt.datetime(2026, 11, 16), days=DAYS, seed=request.param)
    samples = fleet.samples.assign(minute=fleet.samples["ts"].dt.floor("min"))
    minutes = samples.groupby(["service", "metric", "minute"], sort=True)["value"].mean().reset_index()
    # deploys are known to the platform as events (what a CI pipeline would record)
    deploys = [
        Event("deploy", d["service"], utc(d["start"]), utc(d["start"]) + dt.timedelta(minutes=30))
        for d in fleet.incidents
        if d["kind"] == "deploy"
    ]
    settings, policy = DetectorSettings(), AlarmPolicy()
    rows = []
    for (service, metric), part in minutes.groupby(["service", "metric"], sort=True):
        stamps = part["minute"].to_numpy(dtype="datetime64[ns]")
        times = (stamps - np.datetime64(0, "ns")) / np.timedelta64(1, "s")
        values = part["value"].to_numpy()
        keep = event_tags(stamps, service, deploys) == None  # noqa: E711
        detector = StreamingDetector(settings, policy)
        result = detector.replay(times, values, keep)
        # explanations as the anomalies asset writes them: the expected band of every hot minute
        low, high = np.full(len(values), np.nan), np.full(len(values), np.nan)
        hot = np.flatnonzero(result.score >= explain.EXPLAIN_FROM_SCORE)
        low[hot], high[hot] = detector.expected_bands(result.times_s, values, hot)
        rows.append(
            pd.DataFrame(
                {
                    "service": service,
                    "metric": metric,
                    "minute": part["minute"].to_numpy(),
                    "score": result.score,
                    "value": values,
                    "low": low,
                    "high": high,
                }
            )
        )
    scores = pd.concat(rows, ignore_index=True)
    top = scores.loc[scores.groupby(["service", "minute"])["score"].idxmax()].copy()
    top["explanation"] = [
        json.dumps([explain.series_entry(m, v, lo, hi, s)])
        for m, v, lo, hi, s in zip(
            top["metric"], top["value"], top["low"], top["high"], top["score"], strict=True
        )
    ]
    found = []
    for service, part in top.groupby("service", sort=True):
        part = part.assign(
            event=event_tags(part["minute"].to_numpy(dtype="datetime64[ns]"), service, deploys)
        )
        found.extend(incidents.find_incidents(part, policy))
    return [i for i in fleet.incidents if i["kind"] != "deploy"], found


def overlaps(incident: incidents.Incident, item: dict) -> bool:
    return (
        incident.service == item["service"]
        and incident.first_minute >= utc(item["start"]) - MATCH_BEFORE
        and incident.first_minute <= utc(item["end"]) + MATCH_AFTER_END
    )


@pytest.mark.slow
def test_every_injected_incident_is_caught_soon_after_it_starts(fleet_incidents) -> None:
    injected, found = fleet_incidents
    assert len(injected) == 5
    for item in injected:
        caught = [i for i in found if overlaps(i, item)]
        assert caught, f"{item['kind']} on {item['service']} at {item['start']} was not caught"
        first = min(caught, key=lambda i: i.first_minute)
        delay = first.first_minute - utc(item["start"])
        assert delay <= deadline(item), f"{item['kind']} caught {delay} after it started"
        assert set(first.metrics) & set(item["metrics"]), (item, first.metrics)


@pytest.mark.slow
def test_at_most_one_false_incident_per_service_per_day(fleet_incidents) -> None:
    injected, found = fleet_incidents
    false = [i for i in found if not any(overlaps(i, item) for item in injected)]
    per_service = pd.Series([i.service for i in false]).value_counts()
    assert (per_service <= DAYS).all(), per_service.to_dict()
    days_with_false = pd.Series([(i.service, i.first_minute.date()) for i in false]).value_counts()
    assert (days_with_false <= 1).all(), days_with_false.to_dict()


@pytest.mark.slow
def test_the_return_to_normal_after_an_incident_opens_no_second_incident(fleet_incidents) -> None:
    """A level shift ending, a leak fixed, latency recovering: back to a level seen for days is not news."""
    injected, found = fleet_incidents
    for item in injected:
        start, end = utc(item["start"]), utc(item["end"])
        returns = [
            i
            for i in found
            if i.service == item["service"]
            and i.first_minute > start + dt.timedelta(minutes=2)
            and abs(i.first_minute - end) <= dt.timedelta(minutes=15)
        ]
        assert returns == [], (
            f"{item['kind']} on {item['service']}: second incident at {returns[0].first_minute}"
        )
