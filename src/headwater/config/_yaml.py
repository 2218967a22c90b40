"""YAML loading that remembers the line of every key, and ``${ENV}`` / ``${file:PATH}``
interpolation (secrets from the environment or from files, as Docker and Kubernetes mount them)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import yaml

from headwater.core import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

Loc = tuple[str | int, ...]

_ENV = re.compile(r"\$\{(?:file:([^}]+)|([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?)\}")


def load_yaml(text: str, *, origin: str, env: dict[str, str] | None = None,
              root: Path | None = None) -> tuple[Any, dict]:
    """Parse YAML into plain data and a map from key paths to 1-based line numbers.

    ``${NAME}`` and ``${NAME:-default}`` in string values are replaced from ``env``
    (default: the process environment); when ``NAME`` is not set but ``NAME_FILE`` is, the
    content of that file is used. ``${file:PATH}`` is the content of a file (relative to
    ``root``, default the current folder), without its final newline. A missing variable or
    file without a default is an error that names the key, the line and what is missing.

    >>> data, lines = load_yaml("a:\\n  b: ${X:-1}\\n", origin="t.yaml", env={})
    >>> data, lines[("a", "b")]
    ({'a': {'b': '1'}}, 2)
    """
    env = dict(os.environ) if env is None else env
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{origin}{where}: not valid YAML: {problem}",
            hint="check the indentation and quoting around that line",
        ) from None
    lines: dict[Loc, int] = {}
    if node is None:
        return {}, lines
    return _build(node, (), lines, origin, _Lookup(env, root or Path("."))), lines


class _Lookup(NamedTuple):
    """Where ``${...}`` values come from: the environment and the project's folder."""

    env: dict[str, str]
    root: Path


def _build(node: yaml.Node, loc: Loc, lines: dict, origin: str, look: _Lookup) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(yaml.SafeLoader(" ").construct_object(key_node))
            if key in out:
                raise ConfigError(
                    f"{origin} line {key_node.start_mark.line + 1}: key '{key}' appears twice",
                    hint="remove one of them",
                )
            child = (*loc, key)
            out[key] = _build(value_node, child, lines, origin, look)
            lines[child] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*loc, i), lines, origin, look) for i, item in enumerate(node.value)]
    value = yaml.SafeLoader(" ").construct_object(node)
    if isinstance(value, str) and "${" in value:
        value = _interpolate(value, loc, node.start_mark.line + 1, origin, look)
    return value


def _interpolate(value: str, loc: Loc, line: int, origin: str, look: _Lookup) -> str:
    where = f"{origin} line {line}, key {dotted(loc)}"

    def replace(match: re.Match[str]) -> str:
        path, name, default = match.groups()
        if path is not None:
            return _secret_file(path.strip(), look.root, where)
        if name in look.env:
            return look.env[name]
        if f"{name}_FILE" in look.env:
            return _secret_file(look.env[f"{name}_FILE"], look.root, f"{where} ({name}_FILE)")
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: environment variable {name} is not set",
            hint=f"export {name}=... (or {name}_FILE=/path/to/a/file), or write "
            f"${{{name}:-default}}",
        )

    return _ENV.sub(replace, value)


def _secret_file(path: str, root: Path, where: str) -> str:
    """A secret kept in a file (``/run/secrets/...``): its text without the final newline."""
    file = Path(path).expanduser()
    file = file if file.is_absolute() else root / file
    try:
        return file.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the secret file {file}: {exc.strerror}",
                          hint="check the path and that this user may read it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: the secret file {file} is not UTF-8 text",
                          hint="write the secret as text (one line)") from None


def dotted(loc: Loc) -> str:
    """``('pipelines', 'orders', 'mode')`` -> ``pipelines.orders.mode``; list items as ``[0]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest known key on ``loc``'s path."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def read_text(path: Path) -> str:
    """Read a config file as UTF-8, with a clear error if it is missing or not text."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file",
            hint="run `headwater init DIR` to create a project, or pass --project PATH",
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8"
        ) from None


def validate_settings(model: type[M], values: dict[str, Any], *, what: str, hint: str) -> M:
    """``model`` validated from ``values`` (settings from headwater.yaml with command-line
    overrides); a ConfigError that names each bad key instead of pydantic's ValidationError.

    >>> from headwater.config import CVSpec
    >>> try:
    ...     validate_settings(CVSpec, {"folds": 1}, what="cv settings", hint="see --help")
    ... except ConfigError as exc:
    ...     print(exc.message)
    invalid cv settings: folds: Input should be greater than or equal to 2 (got 1)
    """
    from pydantic import ValidationError

    try:
        return model.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{dotted(tuple(e['loc']))}: {e['msg']}"
            + ("" if isinstance(e.get("input"), dict | list) else f" (got {e.get('input')!r})")
            for e in exc.errors(include_url=False))
        raise ConfigError(f"invalid {what}: {problems}", hint=hint) from None
