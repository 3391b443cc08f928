"""`sreops alerts list|test` and `sreops doctor`, as a user runs them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sreops import config
from sreops.cli import alerts, doctor
from sreops.devtools.fake_slack import FakeSlack


def parse(add, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add(parser)
    return parser.parse_args(argv)


def test_list_shows_alerts_with_delivery_state_and_why_withheld(
    fire, deliver, warehouse_path, capsys
) -> None:
    fire("api", severity="critical")
    fire("web", severity="info")
    deliver()
    assert alerts.run_list(parse(alerts.add_list_arguments, ["--json", "--hours", "100000"])) == 0
    rows = {r["service"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["api"]["delivery"] == "delivered" and rows["api"]["severity"] == "critical"
    assert rows["web"]["delivery"] == "below_min_severity"
    assert alerts.run_list(parse(alerts.add_list_arguments, ["--hours", "100000"])) == 0
    table = capsys.readouterr().out
    assert "api" in table and "web" in table and "delivered" in table


def test_alerts_test_without_token_is_a_dry_run(warehouse_path, capsys) -> None:
    assert alerts.run_test(parse(alerts.add_test_arguments, [])) == 0
    assert "dry run" in capsys.readouterr().out


def test_alerts_test_posts_a_sample_incident(warehouse_path, fake_slack, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.token)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.url)
    assert alerts.run_test(parse(alerts.add_test_arguments, ["--channel", "#platform"])) == 0
    [message] = fake_slack.messages("platform")
    assert "sreops-test" in message["text"]
    actions = [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "sreops_ack" in actions
    assert "posted to #platform" in capsys.readouterr().out


def test_alerts_test_reports_a_channel_it_cannot_post_to(
    warehouse_path, fake_slack, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.token)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.url)
    assert alerts.run_test(parse(alerts.add_test_arguments, ["--channel", "#nowhere"])) == 1
    assert "channel_not_found" in capsys.readouterr().err


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "sreops.yaml"
    path.write_text(text)
    monkeypatch.setenv("SREOPS_CONFIG", str(path))
    config.current.cache_clear()


def test_doctor_passes_with_a_working_token_and_channels(
    warehouse_path, fake_slack, monkeypatch, tmp_path, capsys
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.token)
    monkeypatch.setenv("SLACK_API_URL", fake_slack.url)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    write_config(
        tmp_path, monkeypatch, "alerting:\n  routes:\n    - {service: api, channel: '#api-oncall'}\n"
    )
    assert doctor.run(parse(doctor.add_arguments, [])) == 0
    out = capsys.readouterr().out
    assert "token works: sreops in sreops-fake" in out
    assert "#api-oncall (C" in out and "#sre-alerts (C" in out


def test_doctor_fails_on_bad_token_missing_channel_or_absent_app(
    warehouse_path, fake_slack: FakeSlack, monkeypatch, tmp_path, capsys
) -> None:
    monkeypatch.setenv("SLACK_API_URL", fake_slack.url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    assert doctor.run(parse(doctor.add_arguments, [])) == 1
    assert "invalid_auth" in capsys.readouterr().out
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.token)
    fake_slack.add_channel("quiet", is_member=False)
    write_config(
        tmp_path,
        monkeypatch,
        "alerting:\n  routes:\n    - {service: a, channel: '#gone'}\n    - {service: b, channel: '#quiet'}\n",
    )
    assert doctor.run(parse(doctor.add_arguments, [])) == 1
    out = capsys.readouterr().out
    assert "FAIL  slack channel  #gone: conversations.info: Slack error channel_not_found" in out
    assert "#quiet: the app is not a member; /invite it there" in out


def test_doctor_without_token_warns_about_dry_run_and_passes(warehouse_path, capsys) -> None:
    assert doctor.run(parse(doctor.add_arguments, [])) == 0
    assert "dry-run mode" in capsys.readouterr().out


def test_doctor_fails_on_an_invalid_config(warehouse_path, monkeypatch, tmp_path, capsys) -> None:
    write_config(tmp_path, monkeypatch, "alerting:\n  min_severity: loud\n")
    assert doctor.run(parse(doctor.add_arguments, [])) == 1
    assert "FAIL  config" in capsys.readouterr().out
