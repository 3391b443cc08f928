"""The code location: it loads from workspace.yaml, and the layers keep their boundaries."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parents[1]
COMPOSITION_ROOT = ROOT / "sreops" / "definitions.py"


def test_definitions_are_loadable() -> None:
    from sreops.definitions import defs

    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"metric_samples", "metric_features_1m"} <= keys
    sensors = {s.name: s for s in defs.sensors}
    assert sensors["landing_metrics"].default_status == dg.DefaultSensorStatus.RUNNING


def test_code_location_loads_from_workspace_yaml(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "SREOPS_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_library_never_imports_dagster() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "sreops").rglob("*.py")
        if path != COMPOSITION_ROOT and {"dagster", "assets", "sensors"} & _imports(path)
    ]
    assert offenders == []


def test_loading_the_code_location_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys, sreops.definitions\n"
        "heavy = [m for m in ('torch', 'prophet', 'sentence_transformers', 'pyod', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
