"""Reading the config file: strict YAML, actionable errors, the cached config of a process."""

from __future__ import annotations

import datetime as dt
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)
from yaml.constructor import SafeConstructor

from sreops.config import environment
from sreops.config.bounds import (
    MAX_CONFIG_BYTES,
    MAX_PROBLEMS_SHOWN,
    MAX_YAML_DEPTH,
    ConfigError,
    partition_day,
)
from sreops.config.sections import Config


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: nesting at most MAX_YAML_DEPTH deep, impossible dates as text."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 (PyYAML's node types)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_timestamp(self, node: Any) -> Any:  # noqa: ANN401
        # 2026-13-45 looks like a timestamp but is none: as text, validation names its field.
        try:
            return SafeConstructor.construct_yaml_timestamp(self, node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)


class _DuplicateKey(Exception):
    """A mapping key that appears twice; the message names its YAML path and both lines."""


def _refuse_duplicate_keys(root: Any) -> None:
    """Raise `_DuplicateKey` for the first mapping key that appears twice (PyYAML keeps the last)."""
    stack: list[tuple[Any, str]] = [(root, "")]
    seen: set[int] = set()
    while stack:
        node, where = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                label = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                path = f"{where}.{label}" if where else label
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    ident = (key.tag, key.value)
                    if ident in first_line:
                        raise _DuplicateKey(
                            f"{path}: the key {key.value!r} appears twice (lines {first_line[ident]} and"
                            f" {key.start_mark.line + 1}); keep one"
                        )
                    first_line[ident] = key.start_mark.line + 1
                stack.append((value, path))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, f"{where}.{i}" if where else str(i)))


def _parse(target: Path, text: str) -> Any:  # noqa: ANN401 (whatever the YAML holds)
    loader = _StrictLoader(text)
    loader.name = str(target)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _problem(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, str | int | float) and repr(value) not in message:
        shown = repr(value)
        message += f" (got {shown[:60]}{'…' if len(shown) > 60 else ''})"
    return f"{where}: {message}"


def config_path() -> Path:
    """`$SREOPS_CONFIG`, else `./sreops.yaml`."""
    return Path(environment.config_file_override() or "sreops.yaml")


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file; the embedded defaults when there is none."""
    explicit = path is not None or environment.config_file_override() is not None
    target = Path(path) if path is not None else config_path()
    if not target.exists():
        if explicit:
            raise ConfigError(f"config file {target} does not exist (set SREOPS_CONFIG or create it)")
        return Config()
    try:
        if target.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"config file {target} has {target.stat().st_size:,} bytes; a config file has at most"
                f" {MAX_CONFIG_BYTES:,}: is SREOPS_CONFIG pointing at the right file?"
            )
        data = target.read_bytes()
    except OSError as exc:
        raise ConfigError(f"config file {target} cannot be read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"config file {target} is not UTF-8 text: byte {data[exc.start]:#04x} at line {line},"
            f" column {column}; save it as UTF-8"
        ) from None
    try:
        raw = _parse(target, text)
    except _DuplicateKey as exc:
        raise ConfigError(f"config file {target} is invalid: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {target} is not valid YAML: {exc}") from None
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError) as exc:
        # PyYAML's explicit tags (!!int abc, !!bool maybe) fail with plain Python errors.
        raise ConfigError(
            f"config file {target} is not valid YAML: a tagged value cannot be read"
            f" ({type(exc).__name__}: {exc}); remove the !! tag or fix the value"
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {target}: the top level must be a mapping of sections")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(_problem(err) for err in errors[:MAX_PROBLEMS_SHOWN])
        if len(errors) > MAX_PROBLEMS_SHOWN:
            problems += f"; and {len(errors) - MAX_PROBLEMS_SHOWN} more"
        raise ConfigError(f"config file {target} is invalid: {problems}") from None


@lru_cache(maxsize=1)
def current() -> Config:
    """The config of this process, loaded once."""
    return load()


def partitions_start(cfg: Config, today: dt.date | None = None) -> dt.date:
    """First partition day: `$SREOPS_PARTITIONS_START`, the config, else the previous month's first day."""
    override = environment.partitions_start_override()
    if override:
        try:
            return partition_day(dt.date.fromisoformat(override))
        except ValueError as exc:
            raise ConfigError(
                f"SREOPS_PARTITIONS_START={override!r} is not a usable date (YYYY-MM-DD): {exc}"
            ) from exc
    if cfg.partitions.start is not None:
        return cfg.partitions.start
    today = today or dt.datetime.now(dt.UTC).date()
    first_this_month = today.replace(day=1)
    return (first_this_month - dt.timedelta(days=1)).replace(day=1)
