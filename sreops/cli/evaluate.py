"""`sreops eval nab|loghub|autoscale`: the public benchmarks, scored by `sreops.evaluation`.

Each command parses its options, calls the evaluation module and prints its table; the
evaluation modules load only when their command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sreops import config, paths

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sreops.evaluation.autoscale import TraceResult
    from sreops.forecasting.recommender import RecommenderSettings
    from sreops.forecasting.replay import Trace


# ---- nab ------------------------------------------------------------------------------------------
def add_nab_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops eval nab`."""
    parser.add_argument(
        "categories", nargs="*", metavar="CATEGORY", help="only these categories (default: all)"
    )
    parser.add_argument("--data", type=Path, required=True, help="NAB data folder (<category>/<file>.csv)")
    parser.add_argument("--labels", type=Path, required=True, help="combined_windows.json")
    parser.add_argument("--out", type=Path, required=True, help="folder for <category>/<file>.csv results")
    parser.add_argument(
        "--detector",
        default="novelty",
        help="scoring member: novelty (default), a PyOD member (knn, hbos, iforest, lof, ecod, copod, loda),"
        " baseline, or a '+'-joined ensemble such as novelty+iforest",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a detector setting other than its default (e.g. context_points=3); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run_nab(args: argparse.Namespace) -> int:
    """`sreops eval nab`: detect, write the result files, print the three profiles' NAB scores."""
    from sreops.cli.detect import parse_overrides
    from sreops.detection.settings import DetectorSettings, SettingsError
    from sreops.evaluation.nab import NabDataError, evaluate, format_results

    try:
        settings = DetectorSettings(member=args.detector).with_changes(**parse_overrides(args.set))
        outcome = evaluate(args.data, args.labels, args.out, args.categories, settings)
    except (NabDataError, SettingsError, TypeError) as exc:
        print(f"sreops eval nab: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([r.__dict__ for r in outcome.results], indent=2))
    else:
        print(
            f"{len(outcome.files)} files, {sum(len(f.windows) for f in outcome.files)} windows, "
            f"detector {settings.version}"
        )
        print(format_results(outcome.results))
    return 0


# ---- loghub ---------------------------------------------------------------------------------------
def add_loghub_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops eval loghub`."""
    parser.add_argument(
        "systems", nargs="*", metavar="SYSTEM", help="systems to score (default: every folder)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"Loghub folder with <System>/ subfolders (default: ${paths.SHARED_DATA_ENV['loghub']} or "
        "../shared/data/loghub)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="write OUT/<System>.csv (LineId,cluster_id,template)"
    )
    parser.add_argument(
        "--drain3", action="store_true", help="also run Drain3 on the same input, side by side"
    )
    parser.add_argument(
        "--embedding-gate",
        action="store_true",
        help="also require close sentence embeddings for variable-length merges (slower)",
    )
    parser.add_argument(
        "--perturb",
        choices=("odd", "list"),
        default=None,
        help="robustness: replace 2%% of slot values by odd values or by lists (same ground truth)",
    )
    parser.add_argument(
        "--review-slots",
        action="store_true",
        help="also let sentence embeddings decide word slots at the end of the stream (slower; docs/logs.md)",
    )


def run_loghub(args: argparse.Namespace) -> int:
    """Score and print the table; exit status 2 when the data cannot be read."""
    from sreops.evaluation.loghub import LoghubDataError, evaluate_all, summary_rows

    data_dir = args.data or paths.shared_data_dir("loghub")
    try:
        results = evaluate_all(
            data_dir,
            args.systems,
            drain3=args.drain3,
            embedding_gate=args.embedding_gate,
            review_slots=args.review_slots,
            perturb=args.perturb,
            out_dir=args.out,
        )
    except LoghubDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = summary_rows(results)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}" if v < 1000 else f"{v:,.0f}"))
    return 0


# ---- autoscale ------------------------------------------------------------------------------------
def add_autoscale_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops eval autoscale`."""
    parser.add_argument("demand", nargs="+", help="demand trace CSV(s) with columns timestamp,value")
    parser.add_argument(
        "--out",
        help="decisions CSV (decision_time,replicas); with several traces, a folder for <trace>.csv files",
    )
    parser.add_argument("--hpa-yaml", help="also write the recommender's decisions as a minReplicas schedule")
    parser.add_argument("--json", dest="json_out", help="write every measure to this JSON file")
    parser.add_argument("--jobs", type=int, default=1, help="traces replayed in parallel (default 1)")
    parser.add_argument(
        "--plot",
        help="a folder for one chart per trace (<trace>.png): the cost/breach trade-off and the worst three days",
    )
    tuning = parser.add_argument_group(
        "policy overrides", "defaults come from the config's forecasting section (see docs/forecasting.md)"
    )
    tuning.add_argument("--band-quantile", type=float)
    tuning.add_argument("--headroom", type=float)
    tuning.add_argument("--refit-hours", type=int)
    tuning.add_argument("--training-days", type=int)
    tuning.add_argument(
        "--reactive-budget",
        type=float,
        help="opt-in budgeted rule: spend this share (e.g. 0.97) of the reactive rule's last-week replica-hours",
    )


def recommender_settings(args: argparse.Namespace) -> RecommenderSettings:
    """The config's forecasting section, with the command line's policy overrides."""
    from sreops.forecasting.recommender import settings_from_config

    section = config.current().forecasting
    overrides = {
        key: getattr(args, key)
        for key in ("band_quantile", "headroom", "refit_hours", "training_days", "reactive_budget")
        if getattr(args, key, None) is not None
    }
    return settings_from_config(section.model_copy(update=overrides) if overrides else section)


def run_autoscale(args: argparse.Namespace) -> int:
    """Replay each trace, write the decisions, print the measures."""
    from sreops.evaluation import autoscale
    from sreops.forecasting import replay

    try:
        settings = recommender_settings(args)
        traces = [replay.load_trace(path) for path in args.demand]
        for trace in traces:
            replay.plan(trace)
    except (replay.TraceError, ValueError, config.ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.hpa_yaml and len(traces) != 1:
        print("error: --hpa-yaml takes one trace", file=sys.stderr)
        return 2
    if args.plot and Path(args.plot).exists() and not Path(args.plot).is_dir():
        print(f"error: --plot {args.plot} is a file; give a folder for the charts", file=sys.stderr)
        return 2
    results = autoscale.replay_all(args.demand, traces, settings, args.jobs)
    outs = autoscale.output_paths(args.out, [r.name for r in results])
    for result, out in zip(results, outs, strict=True):
        print(autoscale.format_result(result))
        if out is not None:
            replay.write_decisions(out, result.plan.decision_times, result.replicas[autoscale.RECOMMENDER])
            print(f"  decisions written to {out}")
    if len(results) > 1:
        print(autoscale.format_summary(results))
    if args.hpa_yaml:
        autoscale.write_min_replicas_schedule(results[0], Path(args.hpa_yaml))
        print(f"minReplicas schedule written to {args.hpa_yaml}")
    if args.json_out:
        autoscale.write_report(results, settings, Path(args.json_out))
    if args.plot:
        write_replay_charts(Path(args.plot), traces, results)
    return 0


def write_replay_charts(folder: Path, traces: Sequence[Trace], results: Sequence[TraceResult]) -> None:
    """One PNG per trace under `folder`, its name made safe for a path."""
    from sreops import names
    from sreops.evaluation.autoscale_plot import replay_png

    folder.mkdir(parents=True, exist_ok=True)
    for trace, result in zip(traces, results, strict=True):
        target = names.inside(folder, f"{names.path_component(result.name)}.png")
        target.write_bytes(replay_png(trace, result))
        print(f"chart written to {target}")
