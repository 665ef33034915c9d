"""Reading, checking and showing config values: YAML as researchers write it, and simple type
hints, shared by model options, run configs, spec files and cluster files; a value is shown as
YAML writes it (`show_value`, which reads back; `show`, an axis value in a report or label check)."""

from __future__ import annotations

import functools
import json
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from suite.errors import SuiteError, not_utf8


class YamlLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with YAML 1.2's booleans, integers and floats, and no duplicate keys.

    PyYAML follows YAML 1.1: a float needs a dot and a signed exponent, so `lr: 1e-3` or
    `lr=5e-4` would arrive as the string '1e-3' and be rejected as "not a number"; `seed: 010` is
    octal 8, `1:20` is the sexagesimal 80, and `yes`/`no`/`on`/`off` are booleans. And it keeps
    the last of two equal keys, so a second `grid:` section would silently drop the first's axes.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                line = first_line.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error follows
                continue
            if line is not None:  # also two equal keys on one line, in a flow mapping
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {line})", key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_BOOL, _INT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"
YamlLoader.yaml_implicit_resolvers = {  # YAML 1.1's booleans and integers out; 1.2's core schema in
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
YamlLoader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7]+|0x[0-9a-fA-F]+)$"),
                                 list("-+0123456789"))


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node)).replace("_", "")  # 10_000, as Python writes it
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text, 10)  # 010 is ten


YamlLoader.add_constructor(_INT, _construct_int)
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


# The entries a YAML text may expand to through its aliases: a spec has hundreds; nested aliases
# ("billion laughs") would otherwise be walked for hours.
MAX_YAML_ENTRIES = 100_000


def load_yaml(text: str) -> Any:
    """The data of a YAML text; an alias that contains itself or expands past MAX_YAML_ENTRIES, or
    nesting too deep to walk, is a yaml.YAMLError as a syntax error is."""
    return _load(text)[0]


def _load(text: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """The data of a YAML text and the line of each key path in it (("grid", "lr"), ("when", "0")),
    its aliases walked (and checked) before PyYAML builds them."""
    lines: dict[tuple[str, ...], int] = {}
    try:
        node = yaml.compose(text, Loader=YamlLoader)
        if node is not None:
            _record_lines(node, (), lines, set())
    except RecursionError:
        raise yaml.YAMLError("nested too deeply") from None
    return yaml.load(text, Loader=YamlLoader), lines  # noqa: S506 (a SafeLoader)


def read_yaml(path: Path, what: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    """A YAML file's data and the line of each key path in it (("grid", "lr"), ("when", "0")), so
    that errors about its values can say file:line; a file that cannot be read or parsed is a
    SuiteError naming it (`what` it should have been: "spec", "cluster options")."""
    try:
        text = path.read_text()
        raw, lines = _load(text)
    except OSError as exc:
        raise SuiteError(f"cannot read {what}: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"cannot read {what}: {not_utf8(exc)}", file=str(path)) from None
    except yaml.YAMLError as exc:
        problem, line, _ = yaml_problem(exc, text)
        raise SuiteError(f"bad YAML: {problem}", file=str(path), line=line) from None
    return raw, lines


def yaml_problem(exc: yaml.YAMLError, text: str) -> tuple[str, int | None, int | None]:
    """What is wrong with a YAML text, on one line, and its 1-based line and column when known.
    PyYAML's own message draws a caret diagram; for a control character (a ReaderError) it gives
    an offset, on a second line, where the others give a mark."""
    if isinstance(exc, yaml.reader.ReaderError):
        start = text.rfind("\n", 0, exc.position) + 1
        return (f"unacceptable character #x{exc.character:04x}: {exc.reason}", text.count("\n", 0, exc.position) + 1,
                exc.position - start + 1)
    mark = getattr(exc, "problem_mark", None)
    problem = str(getattr(exc, "problem", None) or exc)
    return problem, None if mark is None else mark.line + 1, None if mark is None else mark.column + 1


def _record_lines(node: yaml.Node, prefix: tuple[str, ...], out: dict[tuple[str, ...], int],
                  enclosing: set[int]) -> None:
    if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        return
    if id(node) in enclosing:
        raise yaml.MarkedYAMLError(problem="an alias refers to a collection that contains it",
                                   problem_mark=node.start_mark)
    if isinstance(node, yaml.MappingNode):
        entries = [(prefix + (str(k.value),), k.start_mark.line + 1, v) for k, v in node.value]
    else:
        entries = [(prefix + (str(i),), v.start_mark.line + 1, v) for i, v in enumerate(node.value)]
    enclosing.add(id(node))
    for path, line, value in entries:
        out[path] = line
        if len(out) > MAX_YAML_ENTRIES:
            raise yaml.MarkedYAMLError(problem=f"its aliases expand to more than {MAX_YAML_ENTRIES:,} entries",
                                       problem_mark=node.start_mark)
        _record_lines(value, path, out, enclosing)
    enclosing.discard(id(node))


def show_value(value: Any, *, _flow: bool = False) -> str:
    """`value` as a key=VALUE override (YAML) writes it, so that it reads back as the same value:
    true, not Python's True; "16" quoted where a bare 16 would read as a number. Quoting it for a
    shell is the caller's part (shlex). (`_flow`: an item or key of a [list] or {mapping}.)"""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):  # str() says inf, which YAML reads as text
        return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
    if isinstance(value, str):
        return value if _plain_text(value, _flow) else _double_quoted(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show_value(v, _flow=True) for v in value) + "]"
    if isinstance(value, Mapping):  # keys too: `1`, `""` or `a{` would not read back as the same text
        items = (f"{show_value(k, _flow=True)}: {show_value(v, _flow=True)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return str(value)


def show(value: Any) -> str:
    """An axis value as reports show it unlabelled, and so as a spec's label must not read (it would
    pass for that value): text as it is, anything else as YAML writes it (null, true, [1, 2])."""
    return value if isinstance(value, str) else show_value(value)


def _double_quoted(text: str) -> str:
    """`text` in YAML's double quotes, with each character YAML would refuse or read otherwise (a
    control character such as \\x7f, a line break such as \\x85) escaped as YAML escapes it."""
    body = json.dumps(text, ensure_ascii=False)[1:-1]  # quotes, backslashes and the C0 controls escaped
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}"
                         for c in body) + '"'


@functools.lru_cache(maxsize=4096)  # a dry run labels up to 10,000 runs with the same few values
def _plain_text(text: str, flow: bool = False) -> bool:
    """Whether `text` reads back as itself unquoted, and is one word: labels separate key=value pairs
    with spaces, lists their items with commas. `flow`: also as an item or key of a [list] or
    {mapping}, where some words that stand alone do not (`?0` starts an explicit key there)."""
    try:
        if load_yaml(text) != text or re.search(r"[\s,\[\]{}]", text):
            return False
        return not flow or (load_yaml(f"[{text}]") == [text] and load_yaml(f"{{{text}: 0}}") == {text: 0})
    except yaml.YAMLError:
        return False


def coerce(value: Any, annotation: Any) -> Any:
    """Return `value` if it fits `annotation` (ints pass as floats, lists as tuples), else ValueError.

    Only the hints configs use are understood: Literal, unions/Optional, bool, int, float, str,
    tuple[...]/list[...]; anything else passes unchecked.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        for a in args:
            if value == a and _kind(value) is _kind(a):
                return a
        raise ValueError("not one of the valid values")
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return coerce(value, arm)
            except ValueError:
                continue
        raise ValueError(f"expected {type_name(annotation)}")
    if annotation is type(None):
        if value is None:
            return None
        raise ValueError("expected null")
    if annotation is bool:
        if _kind(value) is bool:
            return bool(value)
        raise ValueError("expected true or false")
    if annotation is int:
        if _kind(value) is int:
            return int(value)
        raise ValueError("expected an integer")
    if annotation is float:
        if _kind(value) in (int, float):
            return float(value)
        raise ValueError("expected a number")
    if annotation is str:
        if isinstance(value, str):
            return str(value)
        raise ValueError("expected a string")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"expected {type_name(annotation)}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_items(value, [args[0]] * len(value)))
        if origin is tuple and args:
            if len(value) != len(args):
                raise ValueError(f"expected {len(args)} values")
            return tuple(_items(value, args))
        return _items(value, [args[0] if args else Any] * len(value))
    return value


def checkable(annotation: Any) -> bool:
    """Whether `coerce` really checks values against `annotation` (what it leaves unchecked, such
    as `Any`, a class or an unparametrised list, would let any value into a config, its run id and
    its JSON records): the scalars, `None`, Literals of scalars, and unions, tuples and lists of
    these."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation in (bool, int, float, str, type(None)):
        return True
    if origin is Literal:
        return all(a is None or type(a) in (bool, int, float, str) for a in args)
    if origin in (typing.Union, types.UnionType):
        return all(checkable(a) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return checkable(args[0])
    if origin in (tuple, list):
        return bool(args) and all(checkable(a) for a in args)
    return False


def as_written(checked: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """`checked` (coerced) values with each number `given` as an integer put back as that integer
    where `coerce` made it a float (1, not 1.0; [30, 60], not (30.0, 60.0)), for the checks that
    echo a value in their message: it reads as the user wrote it, and compares the same."""
    return {k: _written(v, given[k]) if k in given else v for k, v in checked.items()}


def _written(checked: Any, given: Any) -> Any:
    if _kind(given) is int and _kind(checked) is float and given == checked:
        return given
    if isinstance(checked, tuple) and isinstance(given, list) and len(given) == len(checked):
        return tuple(_written(c, g) for c, g in zip(checked, given))
    return checked


def _items(values: Sequence[Any], annotations: Sequence[Any]) -> list[Any]:
    """Coerce item by item, so an error names the item at fault rather than the whole list."""
    out = []
    for i, (v, annotation) in enumerate(zip(values, annotations)):
        try:
            out.append(coerce(v, annotation))
        except ValueError as exc:
            raise ValueError(f"item {i} ({v!r}): {exc}") from None
    return out


def _kind(value: Any) -> type:
    """bool, int, float or str for values of those kinds, numpy's included (np.int64 is an int
    here, and True is not); the type itself otherwise."""
    if isinstance(value, (bool, np.bool_)):
        return bool
    if isinstance(value, numbers.Integral):
        return int
    if isinstance(value, numbers.Real):
        return float
    return str if isinstance(value, str) else type(value)


_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}


def type_name(annotation: Any) -> str:
    """A type hint in a researcher's words: `float | None` is 'a number or null'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin in (tuple, list):
        items = args[0] if args else Any
        return "a list" if items is Any else f"a list of {_plural(type_name(items))}"
    if annotation in _WORDS:
        return _WORDS[annotation]
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _plural(words: str) -> str:
    return {"an integer": "integers", "a number": "numbers", "a string": "strings"}.get(words, words)
