"""The floor plan, checked from the source: layers, one writer per table, module size, no ambient config.

docs/architecture.md describes the plan; these tests keep it true. Each failure names the
offending module, so a newcomer can see which rule a change broke and where.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "sreops"
STAGES = ("ingest", "detection", "forecasting", "logs", "alerting")
TOOLING = ("sreops.devtools", "sreops.cli", "sreops.evaluation")
MAX_LINES = 400

# Every warehouse table and the one module that writes it (docs/architecture.md has the same map).
WRITERS = {
    "metric_samples_core": "sreops/ingest/store.py",
    "metric_samples_extra": "sreops/ingest/store.py",
    "ingested_files": "sreops/ingest/store.py",
    "partition_marks": "sreops/marks.py",
    "partition_builds": "sreops/marks.py",
    "metric_features_1m": "sreops/features.py",
    "anomalies": "sreops/detection/store.py",
    "events": "sreops/detection/store.py",
    "detector_models": "sreops/detection/store.py",
    "detector_versions": "sreops/detection/store.py",
    "detector_comparisons": "sreops/detection/store.py",
    "forecasts": "sreops/forecasting/store.py",
    "forecast_fits": "sreops/forecasting/store.py",
    "scaling_recommendations": "sreops/forecasting/store.py",
    "log_lines": "sreops/logs/store.py",
    "log_offsets": "sreops/logs/store.py",
    "log_clusters": "sreops/logs/store.py",
    "log_cluster_state": "sreops/logs/store.py",
    "log_cluster_counts_1m": "sreops/logs/store.py",
    "log_embeddings": "sreops/logs/store.py",
    "alerts": "sreops/alerting/outbox.py",
    "alert_feedback": "sreops/alerting/feedback/store.py",
    "alert_deliveries": "sreops/alerting/delivery/record.py",
    "alert_delivery_state": "sreops/alerting/delivery/record.py",
    "schema_migrations": "sreops/migrations/runner.py",  # migrations are skipped by the scan
}
# Schema changes (CREATE, ALTER, the data moves of a numbered migration) are the migrations' own.
MIGRATIONS = re.compile(r"sreops/migrations(\.py|/)")
# Where the environment and the config file may be read: the configuration, the paths, the resources.
ENVIRONMENT_READERS = ("sreops/config/", "sreops/paths.py", "assets/resources.py")
CONFIG_LOADERS = ("sreops/config/", "sreops/cli/", "assets/resources.py")

WRITE = re.compile(
    r"\b(?:INSERT(?: OR REPLACE| OR IGNORE)? INTO|UPDATE|DELETE FROM|TRUNCATE(?: TABLE)?)\s+(\{|\w+)"
)
SCHEMA_CHANGE = re.compile(r"\b(CREATE|DROP) TABLE (?:IF NOT EXISTS |IF EXISTS )?(\w+)")


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved; `from a import b` gives a.b too)."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _sql_text(path: Path) -> str:
    """The string literals of a module (f-string parts included), where its SQL lives."""
    parts = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            parts.append("".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values))
    return "\n".join(parts)


def _tables() -> set[str]:
    """Every table the migrations leave (created and not dropped since; views have no writer)."""
    files = [p for p in _python_files("sreops") if MIGRATIONS.search(_relative(p))]
    names: set[str] = set()
    for path in files:  # numbered migrations: in file and source order
        for match in SCHEMA_CHANGE.finditer(path.read_text()):
            kind, name = match.groups()
            if kind == "CREATE":
                names.add(name)
            else:
                names.discard(name)
    assert names, "no CREATE TABLE found in sreops/migrations"
    return names


def test_stages_never_import_tooling() -> None:
    offenders = [
        f"{_relative(path)} imports {name}"
        for path in _python_files("sreops", "assets", "sensors")
        if not any(_within(_module_name(path), tool) for tool in TOOLING)
        for name in sorted(_imported_modules(path))
        if any(_within(name, tool) for tool in TOOLING)
    ]
    assert offenders == [], "devtools, cli and evaluation may import stages, never the reverse"


def test_no_stage_imports_another_stages_store() -> None:
    offenders = []
    for stage in STAGES:
        for path in _python_files(f"sreops/{stage}"):
            for name in sorted(_imported_modules(path)):
                parts = name.split(".")
                if len(parts) >= 3 and parts[0] == "sreops" and "store" in parts[2:] and parts[1] != stage:
                    offenders.append(f"{_relative(path)} imports {name}")
    assert offenders == [], "a stage reads and writes another stage's tables through that stage's run or API"


def test_every_table_has_exactly_one_writing_module() -> None:
    tables = _tables()
    writers: dict[str, set[str]] = {}
    dynamic: list[str] = []
    for path in _python_files("sreops", "assets", "sensors"):
        module = _relative(path)
        if MIGRATIONS.search(module):
            continue
        for match in WRITE.finditer(_sql_text(path)):
            target = match.group(1)
            if target in ("{", "{}"):
                dynamic.append(module)
            elif target in tables:
                writers.setdefault(target, set()).add(module)
    assert sorted(tables - set(WRITERS)) == [], "a new table needs its writer in WRITERS"
    wrong = {table: sorted(modules) for table, modules in writers.items() if modules != {WRITERS.get(table)}}
    assert wrong == {}, "each table is written by the one module docs/architecture.md names"
    assert sorted(set(dynamic) - set(WRITERS.values())) == [], "SQL writes to a computed table name"


def test_no_module_is_over_the_size_limit() -> None:
    long = {
        _relative(path): n
        for path in _python_files("sreops", "assets", "sensors")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"split by responsibility: modules stay within {MAX_LINES} lines"


ENVIRONMENT_NAMES = {"environ", "getenv", "putenv", "unsetenv"}


def _reads_environment(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ENVIRONMENT_NAMES
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            return True
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and {alias.name for alias in node.names} & ENVIRONMENT_NAMES
        ):
            return True
    return False


def test_environment_is_read_only_by_the_configuration_the_paths_and_the_resources() -> None:
    offenders = [
        _relative(path)
        for path in _python_files("sreops", "assets", "sensors")
        if not _relative(path).startswith(ENVIRONMENT_READERS) and _reads_environment(path)
    ]
    assert offenders == [], "take settings as parameters: sreops.config.environment reads the environment"


def test_library_modules_take_their_config_instead_of_loading_it() -> None:
    pattern = re.compile(r"\bconfig\.current\(|from sreops\.config(?:\.loading)? import [^\n]*\bcurrent\b")
    offenders = [
        _relative(path)
        for path in _python_files("sreops", "assets", "sensors")
        if not _relative(path).startswith(CONFIG_LOADERS) and pattern.search(path.read_text())
    ]
    assert offenders == [], "callers pass the Config: only the CLI and the resources load it"


def test_the_checks_see_real_code() -> None:
    """The scanners find what they look for in a snippet, so a passing check is not a blind one."""
    sample = ROOT / "sreops" / "ingest" / "__init__.py"
    assert _module_name(sample) == "sreops.ingest"
    assert "metric_features_1m" in _tables()
    assert WRITE.search("INSERT INTO alerts (alert_id) VALUES (?)").group(1) == "alerts"
    assert WRITE.search(f"UPDATE {'{'}table{'}'} SET x = 1").group(1) == "{"
    assert _reads_environment(ROOT / "sreops" / "config" / "environment.py")
