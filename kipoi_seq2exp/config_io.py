"""Reading user-written configuration: YAML files and the types of dataclass fields.

Two checks that every config object (model, data, training) shares, so that a typo in a YAML
file is one line naming the file, line and key instead of a PyYAML traceback against
``<unicode string>`` or a ``'>' not supported between 'str' and 'int'`` from deep inside a
validation. No imports from the rest of the package: every layer may use it.
"""
from __future__ import annotations

import dataclasses
import functools
import numbers
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

PathLike = Union[str, os.PathLike]


# ---------------------------------------------------------------------- YAML
def yaml_error_message(where: str, err: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: where, line and column (1-based), PyYAML's reason, the fix."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    position = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    reason = "; ".join(str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part)
    return (f"{where}{position}: not valid YAML ({reason or str(err).splitlines()[0]}). Fix: correct that line "
            "(indentation, a missing ':' after a key, an unclosed quote or bracket, a tab instead of spaces).")


def parse_yaml(text: str, where: str, error: type[Exception] = ValueError) -> Any:
    """``yaml.safe_load(text)``; a syntax error becomes ``error`` naming ``where`` and the line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(yaml_error_message(where, err)) from err


def read_yaml(path: PathLike, error: type[Exception] = ValueError) -> Any:
    """The YAML content of ``path``; a syntax error becomes ``error`` naming the file, line and column."""
    return parse_yaml(Path(path).read_text(), str(path), error)


# ---------------------------------------------------------------------- field types
@functools.lru_cache(maxsize=None)
def field_hints(cls: type) -> dict[str, Any]:
    """The resolved type of each field of dataclass ``cls`` (cached: configs are built often)."""
    return typing.get_type_hints(cls)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType)


def matches(hint: Any, value: Any) -> bool:
    """Whether ``value`` (as YAML gives it) fits field type ``hint``; types we do not model pass."""
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is type(None):
        return value is None
    if dataclasses.is_dataclass(hint):
        return isinstance(value, (hint, dict))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(hint):
        return any(matches(arg, value) for arg in args)
    if origin is Literal:
        return isinstance(value, tuple({type(arg) for arg in args}))
    if origin is list:
        return isinstance(value, (list, tuple)) and (not args or all(matches(args[0], item) for item in value))
    return True


def describe(hint: Any, plural: bool = False) -> str:
    """What a biologist should write for a field of type ``hint`` ("an integer", "a list of numbers")."""
    names = {bool: ("true or false", "true/false values"), int: ("an integer", "integers"),
             float: ("a number", "numbers"), str: ("text", "texts"), type(None): ("null", "nulls")}
    if hint in names:
        return names[hint][plural]
    if dataclasses.is_dataclass(hint):
        return "mappings of keys" if plural else "a mapping of keys"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(hint):
        return " or ".join(describe(arg, plural) for arg in args)
    if origin is Literal:
        return f"one of {list(args)}"
    if origin is list and args:
        return f"a list of {describe(args[0], plural=True)}"
    return str(hint)


def _kind(value: Any) -> str:
    """The YAML kind of ``value`` for messages: 'abc' is "text", 64.0 "a number"."""
    for hint in (bool, int, float, str, type(None)):
        if matches(hint, value):
            return describe(hint)
    if isinstance(value, (list, tuple)):
        return "a list"
    return "a mapping" if isinstance(value, dict) else type(value).__name__


def _default_of(field: dataclasses.Field) -> Optional[str]:
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return None
    try:
        return yaml.safe_dump(_plain(value), default_flow_style=True).strip().removesuffix("...").strip()
    except yaml.YAMLError:  # a default YAML cannot show: the message goes without an example
        return None


def _plain(value: Any) -> Any:
    """A default as YAML-dumpable data: dataclasses (also inside lists) as mappings."""
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def type_error_message(cls: type, key: str, value: Any) -> Optional[str]:
    """None when ``value`` fits field ``key`` of dataclass ``cls``; else one line naming the key, the
    expected type, the value and an example (the default)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hint = field_hints(cls).get(key)
    if key not in fields or hint is None or matches(hint, value):
        return None
    quoted = " (without quotes)" if isinstance(value, str) and hint in (int, float, bool) else ""
    default = _default_of(fields[key])
    example = f", e.g. `{key}: {default}`" if default is not None else ""
    expected = describe(hint)
    return f"{key} must be {expected}, got {value!r} ({_kind(value)}). Fix: write {expected}{quoted}{example}."


def check_field_types(cls: type, values: dict[str, Any], where: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` for the first value of ``values`` that does not fit its field of dataclass ``cls``.

    Keys that are not fields are left to the caller's unknown-key check."""
    for key, value in values.items():
        message = type_error_message(cls, key, value)
        if message:
            raise error(f"{where}: {message}")


def check_instance_types(obj: Any, where: str, error: type[Exception] = ValueError) -> None:
    """`check_field_types` on the fields of a dataclass instance (for ``__post_init__``)."""
    check_field_types(type(obj), {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, where, error)


__all__ = ["read_yaml", "parse_yaml", "yaml_error_message", "check_field_types", "check_instance_types",
           "type_error_message", "matches", "describe"]
