"""Recommendations in a form a cluster applies: a minReplicas schedule as YAML.

Kubernetes' HorizontalPodAutoscaler has one `minReplicas`; a schedule of them is what KEDA's
cron scaler expresses: each advised hour becomes a cron trigger that holds at least that many
replicas from its start to its end, while the CPU/request triggers keep reacting above it. The
document is a KEDA `ScaledObject` (KEDA drives the HPA it creates); `schedule` also lists the
plain windows for tools that patch an HPA's `minReplicas` themselves.

Service names come from the data: in the YAML they are only ever values that the YAML emitter
quotes, object names are made valid Kubernetes names, and the comment quotes them escaped.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

import pandas as pd
import yaml

_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def kubernetes_name(service: str, suffix: str = "") -> str:
    """A valid Kubernetes object name (RFC 1123 label) for a service name of any text.

    Lower-case letters, digits and `-`, at most 63 characters; a name that had to change gets a
    short hash of the original, so two services never share an object.
    """
    base = _NOT_DNS.sub("-", service.lower()).strip("-")
    changed = base != service
    if changed or not base:
        base = f"{base[:40].strip('-') or 'service'}-{hashlib.sha1(service.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    return (base[: 63 - len(suffix)].strip("-") + suffix)[:63]


def _cron(moment: pd.Timestamp) -> str:
    """A cron expression firing once, at `moment` (minute hour day month)."""
    return f"{moment.minute} {moment.hour} {moment.day} {moment.month} *"


def merge_windows(
    windows: Iterable[tuple[pd.Timestamp, pd.Timestamp, int]],
) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """Adjacent windows with the same replica count merged into one."""
    merged: list[tuple[pd.Timestamp, pd.Timestamp, int]] = []
    for start, end, replicas in sorted(windows):
        if merged and merged[-1][2] == replicas and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end, replicas)
        else:
            merged.append((start, end, replicas))
    return merged


def min_replicas_schedule(
    service: str,
    windows: Sequence[tuple[pd.Timestamp, pd.Timestamp, int]],
    max_replicas: int,
    namespace: str = "default",
    target: str | None = None,
) -> str:
    """A KEDA ScaledObject whose cron triggers hold each advised minReplicas (UTC) for `service`."""
    merged = merge_windows(windows)
    if not merged:
        raise ValueError(f"no recommendations for service {service!r} to export")
    floor = min(replicas for _, _, replicas in merged)
    document = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": kubernetes_name(service, "-forecast-schedule"),
            "namespace": namespace,
            "annotations": {"sreops/generated-from": "scaling_recommendations"},
        },
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": target or kubernetes_name(service)},
            "minReplicaCount": int(floor),
            "maxReplicaCount": int(max(max_replicas, max(r for _, _, r in merged))),
            "triggers": [
                {
                    "type": "cron",
                    "metadata": {
                        "timezone": "Etc/UTC",
                        "start": _cron(pd.Timestamp(start)),
                        "end": _cron(pd.Timestamp(end)),
                        "desiredReplicas": str(int(replicas)),
                    },
                }
                for start, end, replicas in merged
            ],
        },
    }
    schedule = {
        "service": service,
        "schedule": [
            {
                "start": pd.Timestamp(start).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": pd.Timestamp(end).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "minReplicas": int(replicas),
            }
            for start, end, replicas in merged
        ],
    }
    # The name in the comment is escaped: a line break in a service name must not end the
    # comment and start a document of its own.
    header = (
        f"# minReplicas schedule for {ascii(service)} from sreops scaling recommendations"
        " (advice: review, then apply).\n"
    )
    return header + yaml.safe_dump_all([document, schedule], sort_keys=False)


def from_recommendations(frame: pd.DataFrame, service: str, namespace: str = "default") -> str:
    """The schedule YAML of one service's rows of `scaling_recommendations`."""
    rows = frame[frame["service"] == service].sort_values("window_start")
    if rows.empty:
        raise ValueError(f"no recommendations for service {service!r} to export")
    windows = [
        (pd.Timestamp(r.window_start), pd.Timestamp(r.window_end), int(r.recommended_replicas))
        for r in rows.itertuples()
    ]
    return min_replicas_schedule(service, windows, int(rows["max_replicas"].max()), namespace)
