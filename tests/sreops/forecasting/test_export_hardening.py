"""Service names from the data never become paths outside the data directory or YAML of their own."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from sreops.forecasting import export, policy, run, store

HOSTILE = [
    "../../../../tmp/x/pwned",
    "..",
    "checkout\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwned}",
    "a/b",
]
NOW = pd.Timestamp("2026-11-20 10:00")
HOUR = pd.Timedelta(hours=1)


def advice(service: str) -> run.Advice:
    recs = [
        policy.Recommendation(NOW + i * HOUR, NOW + (i + 1) * HOUR, 3 + i, 100.0, 120.0, None, "test")
        for i in range(3)
    ]
    return run.Advice(
        service, "request_rate", policy.Limits(40.0), "config", None, recs, pd.Series(dtype=float)
    )


@pytest.mark.parametrize("service", HOSTILE)
def test_an_exported_schedule_stays_in_its_folder_and_is_two_yaml_documents(
    tmp_path: Path, service: str
) -> None:
    folder = tmp_path / "exports" / "hpa"
    (written,) = run.write_exports([advice(service)], folder)
    assert written.parent == folder.resolve()
    assert not (tmp_path / "x").exists() and not Path("/tmp/x/pwned.yaml").exists()
    documents = list(yaml.safe_load_all(written.read_text()))
    assert [d.get("kind") for d in documents] == ["ScaledObject", None]  # the schedule has no kind
    name = documents[0]["metadata"]["name"]
    assert len(name) <= 63 and name.replace("-", "").isalnum() and name == name.lower()
    assert documents[1]["service"] == service  # the name itself is kept, as a quoted value


def test_two_services_whose_names_sanitise_alike_get_two_files(tmp_path: Path) -> None:
    written = run.write_exports([advice("a/b"), advice("a_b")], tmp_path)
    assert len({p.name for p in written}) == 2
    assert export.kubernetes_name("a/b") != export.kubernetes_name("a_b")


@pytest.mark.parametrize("service", HOSTILE)
def test_forecast_model_files_stay_under_the_models_folder(service: str) -> None:
    root = (store.paths.models_dir() / "forecasting").resolve()
    folder = store._model_dir(service, "..")
    assert root in folder.parents and folder.parent.parent == root
