"""Configs as data: one strict reader for every config dataclass, the command-line options generated from the
same dataclasses, and config files (TOML, YAML or JSON).

A default lives in exactly one place, the dataclass field, with its help text beside it:

    hidden: int = field(default=128, metadata=opt("units per direction"))

`add_options(parser, Cls, "model")` turns every field into a flag (`--hidden`; bools as `--x/--no-x`; lists as
comma-separated values; `None` spelled `none`), `given(args, "model")` returns only the flags the user typed,
and `from_dict(Cls, values, where)` builds the dataclass, naming the key and the file on an unknown or
ill-typed key. Fields with `opt(cli=False)` (sizes filled in from the data, such as vocab_size) are not flags
and may appear in a saved config.json, where they are ignored when it is read back as a `--config`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

from rnnkit.data import DataError

SUPPRESS = argparse.SUPPRESS
CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")


def opt(help: str = "", *, flag: str | None = None, choices=None, cli: bool = True, metavar: str | None = None,
        negative: str | None = None) -> dict:
    """Field metadata for the command line: help text; `flag` (default: --field-name); `choices` (a tuple, or
    a function returning one, for registries); cli=False: not an option (filled in from the data);
    `negative`: an extra flag that sets a bool field to False (e.g. --unidirectional)."""
    return {"help": help, "flag": flag, "choices": choices, "cli": cli, "metavar": metavar, "negative": negative}


def cli_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", True)]


def field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parts(tp) -> tuple[list, bool]:
    """The non-None members of a type annotation and whether None is allowed."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = typing.get_args(tp)
        return [a for a in args if a is not type(None)], type(None) in args
    return [tp], False


def _describe(tp) -> str:
    members, optional = _parts(tp)
    names = []
    for m in members:
        origin = typing.get_origin(m)
        if origin is list:
            (item,) = typing.get_args(m) or (Any,)
            names.append(f"a list of {_describe(item)}s")
        else:
            names.append({int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
                m, getattr(m, "__name__", str(m))))
    return " or ".join(names + (["null"] if optional else []))


def _matches(value, tp) -> bool:
    members, optional = _parts(tp)
    if value is None:
        return optional
    for m in members:
        origin = typing.get_origin(m)
        if m is Any:
            return True
        if origin is list:
            (item,) = typing.get_args(m) or (Any,)
            if isinstance(value, list) and all(_matches(v, item) for v in value):
                return True
        elif m is bool:
            if isinstance(value, bool):
                return True
        elif m is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return True
        elif m is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif isinstance(m, type) and isinstance(value, m):
            return True
    return False


def from_dict(cls, values, where: str, ignore: tuple[str, ...] | set[str] = ()):
    """`cls(**values)`, strictly: `values` must be a mapping whose keys are fields of `cls` (keys in `ignore`
    are dropped), every value of the field's type, every required field present. Any problem, including a
    value that `cls` itself rejects, is a DataError naming `where` ("runs/x/config.json: model") and the key."""
    if not isinstance(values, dict):
        raise DataError(f"{where}: expected an object of {cls.__name__} fields, found {_json_type(values)}")
    types_ = field_types(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key in ignore:
            continue
        if key not in types_:
            raise DataError(f"{where}: unknown key {key!r} (expected some of: {', '.join(names)})")
        if not _matches(value, types_[key]):
            raise DataError(f"{where}: {key}: expected {_describe(types_[key])}, found {value!r}")
        kwargs[key] = value
    missing = [f for f in dataclasses.fields(cls) if f.name not in kwargs and f.name not in ignore
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        f = missing[0]
        flag = f"; on the command line: {flag_of(f)} is required" if f.metadata.get("cli", True) else ""
        raise DataError(f"{where}: missing {f.name!r} ({_describe(types_[f.name])}){flag}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: {e}{_flag_hint(cls, str(e))}") from None


def _flag_hint(cls, message: str) -> str:
    """" (--flag)" for the first field of `cls` that a validation message names, so a command-line user
    sees which option to change."""
    for f in cli_fields(cls):
        if re.search(rf"\b{re.escape(f.name)}\b", message):
            return f" ({flag_of(f)})"
    return ""


def check_types(cls, values: dict, where: str) -> None:
    """The checks of `from_dict` that need no complete config: known keys, each value of its field's type."""
    types_ = field_types(cls)
    for key, value in values.items():
        if key not in types_:
            raise DataError(f"{where}: unknown key {key!r} (expected some of: {', '.join(types_)})")
        if not _matches(value, types_[key]):
            raise DataError(f"{where}: {key}: expected {_describe(types_[key])}, found {value!r}")


def defaults(cls) -> dict:
    """{field: default} of the command-line fields of `cls` that have one."""
    out = {}
    for f in cli_fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def _json_type(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)


# ---- the command line -------------------------------------------------------------------------------------


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a config field (--field-name unless its metadata names another)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _parser_for(tp, name: str):
    """argparse `type=` for a field annotation: numbers, strings, comma-separated lists, `none`."""
    members, optional = _parts(tp)

    def parse(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        errors = []
        for m in members:
            origin = typing.get_origin(m)
            try:
                if origin is list:
                    (item,) = typing.get_args(m) or (str,)
                    return [item(t.strip()) for t in text.split(",") if t.strip()]
                if m is int and text.lstrip("-").isdigit():
                    return int(text)
                if m is float:
                    return float(text)
                if m is str:
                    return text
            except ValueError as e:
                errors.append(str(e))
        raise argparse.ArgumentTypeError(f"expected {_describe(tp)}, got {text!r}")

    parse.__name__ = name
    return parse


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return "none" if value is None else str(value)


def add_options(parser, cls, section: str, title: str | None = None, skip: tuple[str, ...] = ()) -> None:
    """One flag per command-line field of `cls`, in an argument group `title` (default: the section). Values
    land in `args` as "<section>.<field>" only when given (see `given`), so a config file can fill the rest."""
    group = parser.add_argument_group(title or section)
    types_ = field_types(cls)
    for f in cli_fields(cls):
        if f.name in skip:
            continue
        meta, tp = f.metadata, types_[f.name]
        dest = f"{section}.{f.name}"
        help_ = f"{meta.get('help', '')} (default: {_default_text(f)})".strip()
        choices = meta.get("choices")
        choices = choices() if callable(choices) else choices
        if _parts(tp)[0] == [bool]:
            group.add_argument(flag_of(f), dest=dest, action=argparse.BooleanOptionalAction, default=SUPPRESS,
                               help=help_)
            if meta.get("negative"):
                group.add_argument(meta["negative"], dest=dest, action="store_false", default=SUPPRESS,
                                   help=f"same as --no-{f.name.replace('_', '-')}")
            continue
        metavar = meta.get("metavar") or (None if choices else f.name.upper())
        group.add_argument(flag_of(f), dest=dest, type=_parser_for(tp, f.name), default=SUPPRESS, help=help_,
                           choices=list(choices) if choices else None, metavar=metavar)


def given(args: argparse.Namespace, section: str) -> dict:
    """The "<section>.<field>" values the user typed, as {field: value}."""
    prefix = section + "."
    return {k[len(prefix):]: v for k, v in vars(args).items() if k.startswith(prefix)}


# ---- config files --------------------------------------------------------------------------------------------


def read_config_file(path) -> dict:
    """A config file as a dict of sections ({"data": {...}, "model": {...}, "train": {...}}): TOML, YAML or
    JSON by the file's ending. Errors name the file (and the line where the parser says)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise DataError(f"{path}: expected a config file ending in {', '.join(CONFIG_SUFFIXES)}, found {suffix!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: config file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: expected a config file, found a directory") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: expected UTF-8 text, found byte 0x{e.object[e.start]:02x} at offset "
                        f"{e.start}") from None
    if suffix == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    elif suffix == ".toml":
        import tomllib

        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise DataError(f"{path}: not valid TOML ({e})") from None
    else:
        try:
            import yaml
        except ImportError:
            raise DataError(f"{path}: YAML config files need PyYAML: pip install 'rnnkit[config]' "
                            "(or use a .toml or .json file)") from None
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise DataError(f"{path}{line}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if not isinstance(values, dict):
        raise DataError(f"{path}: expected a mapping of sections (data, model, train), found {_json_type(values)}")
    return values
