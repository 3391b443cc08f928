"""`sreops detect replay|promote|versions`: backfill a candidate detector version, compare it, promote it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from sreops import config
from sreops.detection.settings import SettingsError
from sreops.detection.versions import VersionError, compare, current, list_versions, promote, replay


def parse_overrides(pairs: list[str]) -> dict:
    """`NAME=VALUE` pairs as settings changes (values parsed as JSON when they can be)."""
    changes = {}
    for item in pairs:
        name, sep, text = item.partition("=")
        if not sep:
            raise SettingsError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            changes[name] = json.loads(text)
        except json.JSONDecodeError:
            changes[name] = text
    return changes


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops detect replay`."""
    parser.add_argument("start", help="first hour, ISO-8601 UTC")
    parser.add_argument("end", help="end hour (exclusive), ISO-8601 UTC")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a detector setting of the candidate (e.g. context_points=3); repeatable",
    )


def run_replay(args: argparse.Namespace) -> int:
    """`sreops detect replay START END --set …`: backfill a candidate version and compare it with current."""
    start, end = dt.datetime.fromisoformat(args.start), dt.datetime.fromisoformat(args.end)
    cfg = config.current()
    try:
        baseline, policy = current(None, cfg)
        candidate = baseline.with_changes(**parse_overrides(args.set))
    except (SettingsError, TypeError) as exc:
        print(f"sreops detect replay: {exc}", file=sys.stderr)
        return 2
    for settings in {baseline.version: baseline, candidate.version: candidate}.values():
        replay(None, settings, start, end, cfg, progress=True)
    result = compare(None, candidate.version, baseline.version, start, end, policy)
    print(
        f"candidate {candidate.version} vs current {baseline.version}: "
        f"{result.matched} matched, {result.lost} lost, {result.new} new"
    )
    print(result.as_markdown())
    return 0


def add_promote_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops detect promote`."""
    parser.add_argument("version", help="a registered version (see `sreops detect versions`)")


def run_promote(args: argparse.Namespace) -> int:
    """`sreops detect promote VERSION`."""
    try:
        promote(None, args.version)
    except VersionError as exc:
        print(f"sreops detect promote: {exc}", file=sys.stderr)
        return 2
    print(f"{args.version} is now the current detector version")
    return 0


def add_versions_arguments(parser: argparse.ArgumentParser) -> None:
    """`sreops detect versions` takes no arguments."""


def run_versions(args: argparse.Namespace) -> int:
    """`sreops detect versions`: registered versions, their status and hours scored."""
    current(None, config.current())
    frame = list_versions(None)
    print(frame.drop(columns=["settings"]).to_markdown(index=False) if len(frame) else "no versions")
    return 0
