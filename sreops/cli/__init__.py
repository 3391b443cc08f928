"""`sreops …`: a thin command line over the library (demo data, ingestion, evaluation, alerts).

One module of this package per command group (`demo`, `ingest`, `doctor`, `bench`, `evaluate`,
`detect`, `alerts`); each exposes `add_arguments(parser)` and `run(args) -> int`, or
`add_<name>_arguments` and `run_<name>` for each command of its group. This module only wires
them together, importing only the module of the command being run, so heavy dependencies load
only where they are used. The command modules parse, load the config when they need it, call
the library with plain values, and print.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence

# (group, name) -> (module, help). group None is a top-level command.
COMMANDS: dict[tuple[str | None, str], tuple[str, str]] = {
    (None, "demo"): ("sreops.cli.demo", "write a week of demo fleet data into the landing folder"),
    (None, "ingest"): ("sreops.cli.ingest", "ingest metric files (same code as the landing sensor)"),
    (None, "features"): ("sreops.cli.ingest", "build minute features for a range of hours"),
    (None, "doctor"): ("sreops.cli.doctor", "check the configuration, the warehouse and the Slack token"),
    (None, "bench"): ("sreops.cli.bench", "run the benchmarks and print a table of measured numbers"),
    ("eval", "nab"): ("sreops.cli.evaluate", "score the detector on NAB data files"),
    ("eval", "loghub"): ("sreops.cli.evaluate", "score log clustering on Loghub datasets"),
    ("eval", "autoscale"): ("sreops.cli.evaluate", "backtest scaling recommendations on a demand trace"),
    ("detect", "replay"): ("sreops.cli.detect", "backfill a candidate detector version, compare it"),
    ("detect", "promote"): ("sreops.cli.detect", "make a detector version the current one"),
    ("detect", "versions"): ("sreops.cli.detect", "list detector versions and the hours they scored"),
    ("alerts", "list"): ("sreops.cli.alerts", "list alerts and their delivery state"),
    ("alerts", "test"): ("sreops.cli.alerts", "post a sample alert to Slack"),
    ("alerts", "serve"): ("sreops.cli.alerts", "serve Slack's interactivity endpoint (alert buttons)"),
}

GROUP_HELP = {
    "eval": "evaluation on public benchmarks",
    "detect": "detector versions: replay, compare, promote",
    "alerts": "inspect and test alerts",
}


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _chosen(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """The (group, name) the arguments select, read without importing any command module."""
    words = [w for w in argv if not w.startswith("-")]
    if not words:
        return None, None
    if words[0] in GROUP_HELP:
        return words[0], (words[1] if len(words) > 1 else None)
    return None, words[0]


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The argument parser; only the chosen command's module is imported (a broken stage stays local)."""
    parser = argparse.ArgumentParser(prog="sreops", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    chosen = _chosen(argv)
    for (group, name), (module_name, help_text) in COMMANDS.items():
        if not _available(module_name):
            continue
        if group is None:
            sub = top.add_parser(name, help=help_text, description=help_text)
        else:
            if group not in groups:
                group_parser = top.add_parser(group, help=GROUP_HELP[group])
                groups[group] = group_parser.add_subparsers(dest="subcommand", required=True, metavar="WHAT")
            sub = groups[group].add_parser(name, help=help_text, description=help_text)
        if (group, name) != chosen:
            continue
        module = importlib.import_module(module_name)
        adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        runner = getattr(module, f"run_{name}", None) or module.run
        adder(sub)
        sub.set_defaults(handler=runner)
    return parser


# Errors whose message already says what is wrong and what to do: printed, not a traceback.
# Named, not imported: each can only be raised once its module is loaded, and `sreops --help`
# should not load DuckDB.
USER_ERRORS = {
    "sreops.config": ("ConfigError",),
    "sreops.integrity": ("WarehouseUnusableError",),
    "sreops.warehouse": ("WarehouseLockedError",),
    "sreops.migrations.runner": ("MigrationError",),
}
EXIT_USER_ERROR = 2


def _user_error(exc: BaseException) -> bool:
    for module_name, names in USER_ERRORS.items():
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, tuple(getattr(module, name) for name in names)):
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `sreops` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _user_error(exc):
            raise
        logging.getLogger("sreops").debug("details", exc_info=True)
        print(f"sreops: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
