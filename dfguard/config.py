"""Typed configuration: YAML files loaded into frozen dataclasses, strictly.

A key the dataclass does not declare, a missing required key or a value of the wrong type is an error that names
the file and the dotted key: a typo in a config never silently falls back to a default, and nothing is merged
with ``dict.update``. Overrides (``--set stage1.lr=3e-4``) go through the same checks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override does not match its dataclass."""


def load_config(cls: type[T], path: Path, overrides: typing.Sequence[str] = ()) -> T:
    """Read ``path`` (YAML) into ``cls``, applying ``key.sub=value`` overrides (values parsed as YAML)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    for override in overrides:
        _apply_override(data, override, path)
    return from_dict(cls, data, source=str(path))


def from_dict(cls: type[T], data: Any, *, source: str = "<dict>", prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys and value types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix or 'top level'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(prefix + k for k in unknown)} "
                          f"(known: {', '.join(sorted(fields))})")
    values = {}
    for name, field in fields.items():
        key = prefix + name
        if name in data:
            values[name] = _convert(hints[name], data[name], source, key)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key {key}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {prefix.rstrip('.') or cls.__name__}: {error}") from error


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain data (tuples become lists), ready for ``yaml.safe_dump``."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    return plain(config)


def _convert(hint: Any, value: Any, source: str, key: str) -> Any:
    """Check ``value`` against the type ``hint`` (converting lists to tuples and ints to floats where declared)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, source, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{source}: {key}: {value!r} matches none of {hint}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, source=source, prefix=key + ".")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: {key} must be a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{source}: {key} must be one of {list(args)}, got {value!r}")
        return value
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # PyYAML follows YAML 1.1, which reads 3e-4 (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint is Path and isinstance(value, str):
        return Path(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{source}: {key} must be {getattr(hint, '__name__', hint)}, got {value!r}")
    return value


def _apply_override(data: dict[str, Any], override: str, path: Path) -> None:
    """Set ``a.b.c=value`` in nested ``data`` (the value parsed as YAML, so ``3e-4`` is a float)."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.subkey=value")
    dotted, raw = override.split("=", 1)
    *parents, leaf = dotted.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: override {dotted}: {part} is not a section")
    node[leaf] = yaml.safe_load(raw)
