"""A small, safe expression language for row rules, compiled to Polars expressions.

    end_date >= start_date
    quantity * unit_price <= 100000 and status in ('paid', 'shipped')
    email is null or email matches '^[^@]+@[^@]+$'
    days_between(ordered_at, shipped_at) between 0 and 30

Grammar (lowest precedence first)::

    expr     := and ('or' and)*
    and      := not ('and' not)*
    not      := 'not' not | compare
    compare  := sum [ op sum | 'is' ['not'] 'null' | ['not'] 'in' '(' literal, ... ')'
                    | ['not'] 'between' sum 'and' sum | ['not'] ('like' | 'matches') string ]
    sum      := product (('+' | '-') product)*
    product  := unary (('*' | '/' | '%') unary)*
    unary    := '-' unary | atom
    atom     := number | 'text' | true | false | null | name | `odd name` | f(expr, ...)
                | '(' expr ')'

Comparisons and logic follow SQL: a comparison with null is null, ``null and false`` is false,
``null or true`` is true. A rule fails only when it is false; null passes, as in SQL CHECK.
Nothing is evaluated by Python: the text is parsed here and becomes a Polars expression.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import polars as pl

from headwater.core import ContractError

# -------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Lit:
    """A literal: number, text, true/false or null."""

    value: Any


@dataclass(frozen=True)
class Col:
    """A column reference."""

    name: str


@dataclass(frozen=True)
class Unary:
    """``not x`` or ``-x``."""

    op: str
    arg: Node


@dataclass(frozen=True)
class Binary:
    """``a op b`` for arithmetic, comparison, ``and`` and ``or``."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Func:
    """A function call: ``lower(name)``."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class In:
    """``x [not] in (a, b, c)``."""

    arg: Node
    items: tuple[Lit, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between:
    """``x [not] between lo and hi`` (inclusive)."""

    arg: Node
    low: Node
    high: Node
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    """``x is [not] null``."""

    arg: Node
    negated: bool = False


@dataclass(frozen=True)
class Match:
    """``x [not] like 'a%'`` or ``x [not] matches 'regex'``."""

    arg: Node
    pattern: str
    regex: bool
    negated: bool = False


Node = Lit | Col | Unary | Binary | Func | In | Between | IsNull | Match

# ---------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<quoted>`[^`]+`)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|<>|==|=|<|>|\+|-|\*|/|%|\(|\)|,)
""", re.VERBOSE)

_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false", "between", "like",
             "matches"}
_COMPARE = {"=", "==", "!=", "<>", "<", "<=", ">", ">="}


@dataclass(frozen=True)
class _Tok:
    kind: str  # number, string, name, keyword, op, end
    text: str
    pos: int


class ExprError(ContractError):
    """A row rule's text cannot be parsed or does not fit the columns."""


def _tokens(text: str, rule: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise _error(rule, text, pos, f"unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        value = m.group()
        if kind == "name" and value.lower() in _KEYWORDS:
            out.append(_Tok("keyword", value.lower(), pos))
        elif kind == "quoted":
            out.append(_Tok("name", value[1:-1], pos))
        elif kind != "ws":
            out.append(_Tok(kind, value, pos))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


def _error(rule: str, text: str, pos: int, what: str) -> ExprError:
    return ExprError(
        f"rule '{rule}': {what} at position {pos + 1}\n    {text}\n    {' ' * pos}^",
        hint="rules use column names, numbers, 'text', = != < <= > >=, + - * / %, and/or/not, "
        "is null, in (...), between ... and ..., like, matches, and functions such as lower()",
    )


# ---------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, rule: str) -> None:
        self.text, self.rule = text, rule
        self.toks = _tokens(text, rule)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, text: str | None = None) -> bool:
        tok = self.tok
        if tok.kind == kind and (text is None or tok.text == text):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, text: str | None = None) -> _Tok:
        tok = self.tok
        if tok.kind != kind or (text is not None and tok.text != text):
            want = text or kind
            got = tok.text or "the end"
            raise _error(self.rule, self.text, tok.pos, f"expected {want!r}, found {got!r}")
        return self.take()

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise _error(self.rule, self.text, 0, "the rule is empty")
        node = self.or_()
        if self.tok.kind != "end":
            raise _error(self.rule, self.text, self.tok.pos, f"unexpected {self.tok.text!r}")
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.accept("keyword", "or"):
            node = Binary("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.accept("keyword", "and"):
            node = Binary("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.accept("keyword", "not"):
            return Unary("not", self.not_())
        return self.compare()

    def compare(self) -> Node:
        left = self.sum_()
        tok = self.tok
        if tok.kind == "op" and tok.text in _COMPARE:
            self.take()
            op = {"=": "==", "<>": "!="}.get(tok.text, tok.text)
            return Binary(op, left, self.sum_())
        if self.accept("keyword", "is"):
            negated = self.accept("keyword", "not")
            self.expect("keyword", "null")
            return IsNull(left, negated)
        negated = False
        if tok.kind == "keyword" and tok.text == "not":
            nxt = self.toks[self.i + 1]
            if nxt.kind == "keyword" and nxt.text in {"in", "between", "like", "matches"}:
                self.take()
                negated = True
        if self.accept("keyword", "in"):
            self.expect("op", "(")
            items = [self.literal()]
            while self.accept("op", ","):
                items.append(self.literal())
            self.expect("op", ")")
            return In(left, tuple(items), negated)
        if self.accept("keyword", "between"):
            low = self.sum_()
            self.expect("keyword", "and")
            return Between(left, low, self.sum_(), negated)
        for word in ("like", "matches"):
            if self.accept("keyword", word):
                pattern = self.expect("string")
                text = _unquote(pattern.text)
                if word == "matches":
                    _check_regex(text, self.rule, self.text, pattern.pos)
                return Match(left, text, word == "matches", negated)
        return left

    def literal(self) -> Lit:
        tok = self.tok
        negative = False
        if tok.kind == "op" and tok.text == "-":
            self.take()
            negative = True
            tok = self.tok
        if tok.kind == "number":
            self.take()
            value = _number(tok.text)
            return Lit(-value if negative else value)
        if negative:
            raise _error(self.rule, self.text, tok.pos, "expected a number after '-'")
        if tok.kind == "string":
            self.take()
            return Lit(_unquote(tok.text))
        if tok.kind == "keyword" and tok.text in {"true", "false", "null"}:
            self.take()
            return Lit({"true": True, "false": False, "null": None}[tok.text])
        raise _error(self.rule, self.text, tok.pos, "expected a literal (number, 'text', true, "
                     f"false or null), found {tok.text or 'the end'!r}")

    def sum_(self) -> Node:
        node = self.product()
        while self.tok.kind == "op" and self.tok.text in {"+", "-"}:
            node = Binary(self.take().text, node, self.product())
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in {"*", "/", "%"}:
            node = Binary(self.take().text, node, self.unary())
        return node

    def unary(self) -> Node:
        if self.accept("op", "-"):
            arg = self.unary()
            if isinstance(arg, Lit) and isinstance(arg.value, int | float) and not isinstance(
                    arg.value, bool):
                return Lit(-arg.value)
            return Unary("-", arg)
        self.accept("op", "+")
        return self.atom()

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind in {"number", "string"} or (
                tok.kind == "keyword" and tok.text in {"true", "false", "null"}):
            return self.literal()
        if tok.kind == "name":
            self.take()
            if self.accept("op", "("):
                args: list[Node] = []
                if not self.accept("op", ")"):
                    args.append(self.or_())
                    while self.accept("op", ","):
                        args.append(self.or_())
                    self.expect("op", ")")
                return Func(tok.text.lower(), tuple(args))
            return Col(tok.text)
        if self.accept("op", "("):
            node = self.or_()
            self.expect("op", ")")
            return node
        raise _error(self.rule, self.text, tok.pos,
                     f"expected a value, found {tok.text or 'the end'!r}")


def _number(text: str) -> int | float:
    return float(text) if any(c in text for c in ".eE") else int(text)


def _unquote(text: str) -> str:
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def _check_regex(pattern: str, rule: str, text: str, pos: int) -> None:
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except Exception as exc:
        raise _error(rule, text, pos, f"invalid regular expression {pattern!r}: "
                     f"{str(exc).splitlines()[0]}") from None


def parse(text: str, rule: str = "rule") -> Node:
    """Parse rule text into an expression tree.

    >>> parse("a >= b")
    Binary(op='>=', left=Col(name='a'), right=Col(name='b'))
    """
    return _Parser(text, rule).parse()


def columns_of(node: Node) -> list[str]:
    """The columns an expression reads, in order of first use."""
    out: dict[str, None] = {}

    def walk(n: Node) -> None:
        if isinstance(n, Col):
            out.setdefault(n.name)
        elif isinstance(n, Unary | IsNull | Match):
            walk(n.arg)
        elif isinstance(n, Binary):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, Func):
            for a in n.args:
                walk(a)
        elif isinstance(n, In):
            walk(n.arg)
        elif isinstance(n, Between):
            walk(n.arg)
            walk(n.low)
            walk(n.high)

    walk(node)
    return list(out)


def render(node: Node) -> str:
    """Expression text for a tree (fully parenthesised); ``parse(render(t)) == t``."""
    if isinstance(node, Lit):
        v = node.value
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return "'" + v.replace("'", "''") + "'"
        return repr(v)
    if isinstance(node, Col):
        return node.name if re.fullmatch(r"[A-Za-z_]\w*", node.name) and (
            node.name.lower() not in _KEYWORDS) else f"`{node.name}`"
    if isinstance(node, Unary):
        return f"(not {render(node.arg)})" if node.op == "not" else f"(-{render(node.arg)})"
    if isinstance(node, Binary):
        return f"({render(node.left)} {node.op} {render(node.right)})"
    if isinstance(node, Func):
        return f"{node.name}({', '.join(render(a) for a in node.args)})"
    if isinstance(node, In):
        items = ", ".join(render(i) for i in node.items)
        return f"({render(node.arg)} {'not ' if node.negated else ''}in ({items}))"
    if isinstance(node, Between):
        return (f"({render(node.arg)} {'not ' if node.negated else ''}between "
                f"{render(node.low)} and {render(node.high)})")
    if isinstance(node, IsNull):
        return f"({render(node.arg)} is {'not ' if node.negated else ''}null)"
    word = "matches" if node.regex else "like"
    pattern = "'" + node.pattern.replace("'", "''") + "'"
    return f"({render(node.arg)} {'not ' if node.negated else ''}{word} {pattern})"


# -------------------------------------------------------------------------------- compiler

#: Kinds of values in expressions, from contract types.
KIND_OF_TYPE = {"string": "string", "json": "string", "integer": "number", "float": "number",
                "boolean": "boolean", "date": "date", "timestamp": "timestamp", "time": "time",
                "uuid": "binary", "binary": "binary"}


def kind_of(type_: str) -> str:
    """The expression kind of a contract type (``decimal(p,s)`` is a number)."""
    return "number" if type_.startswith("decimal") else KIND_OF_TYPE.get(type_, "string")


@dataclass
class Compiled:
    """A compiled rule: the Polars expression, the columns it reads, its source text."""

    expr: pl.Expr
    columns: list[str]
    text: str

    @property
    def fails(self) -> pl.Expr:
        """True where the rule is false (null passes)."""
        return (~self.expr.cast(pl.Boolean)).fill_null(False)


def compile_rule(text: str, kinds: dict[str, str], rule: str = "rule") -> Compiled:
    """Parse and compile rule text against columns ``name -> kind`` (see :func:`kind_of`).

    Raises :class:`ExprError` naming the rule, the position and what to change.

    >>> import polars as pl
    >>> r = compile_rule("b >= a", {"a": "number", "b": "number"})
    >>> pl.DataFrame({"a": [1, 5], "b": [2, 3]}).select(r.fails).to_series().to_list()
    [False, True]
    """
    node = parse(text, rule)
    compiler = _Compiler(text, rule, kinds)
    expr, kind = compiler.compile(node)
    if kind not in {"boolean", "null"}:
        raise ExprError(f"rule '{rule}': '{text}' is a {kind}, not a condition",
                        hint="compare it with something, e.g. amount > 0")
    return Compiled(expr, columns_of(node), text)


class _Compiler:
    def __init__(self, text: str, rule: str, kinds: dict[str, str]) -> None:
        self.text, self.rule, self.kinds = text, rule, kinds

    def fail(self, what: str) -> ExprError:
        return ExprError(f"rule '{self.rule}' ({self.text}): {what}",
                         hint="see the row rules section of docs/contracts.md")

    def compile(self, node: Node) -> tuple[pl.Expr, str]:
        method = getattr(self, "_" + type(node).__name__.lower())
        return method(node)

    def _lit(self, node: Lit) -> tuple[pl.Expr, str]:
        v = node.value
        if v is None:
            return pl.lit(None), "null"
        if isinstance(v, bool):
            return pl.lit(v, dtype=pl.Boolean), "boolean"
        if isinstance(v, int | float):
            return pl.lit(v), "number"
        return pl.lit(v, dtype=pl.String), "string"

    def _col(self, node: Col) -> tuple[pl.Expr, str]:
        if node.name not in self.kinds:
            known = ", ".join(self.kinds) or "none"
            raise self.fail(f"unknown column '{node.name}' (columns: {known})")
        return pl.col(node.name), self.kinds[node.name]

    def _unary(self, node: Unary) -> tuple[pl.Expr, str]:
        expr, kind = self.compile(node.arg)
        if node.op == "not":
            self.need(kind, {"boolean"}, "not")
            return ~expr.cast(pl.Boolean), "boolean"
        self.need(kind, {"number"}, "-")
        return -expr, "number"

    def need(self, kind: str, allowed: set[str], what: str) -> None:
        if kind not in allowed and kind != "null":
            raise self.fail(f"'{what}' needs a {' or '.join(sorted(allowed))}, not a {kind}")

    def _binary(self, node: Binary) -> tuple[pl.Expr, str]:
        op = node.op
        if op in {"and", "or"}:
            left, lk = self.compile(node.left)
            right, rk = self.compile(node.right)
            self.need(lk, {"boolean"}, op)
            self.need(rk, {"boolean"}, op)
            left, right = left.cast(pl.Boolean), right.cast(pl.Boolean)
            return (left & right if op == "and" else left | right), "boolean"
        if op in {"==", "!=", "<", "<=", ">", ">="}:
            left, right, _ = self.comparable(node.left, node.right, op)
            return {
                "==": left == right, "!=": left != right, "<": left < right,
                "<=": left <= right, ">": left > right, ">=": left >= right,
            }[op], "boolean"
        left, lk = self.compile(node.left)
        right, rk = self.compile(node.right)
        if op == "-" and lk == rk and lk in {"date", "timestamp"}:
            return _days(left - right, lk), "number"
        if op in {"+", "-"} and lk in {"date", "timestamp"} and rk in {"number", "null"}:
            shift = pl.duration(days=right) if op == "+" else pl.duration(days=-right)
            return left + shift, lk
        if op == "+" and lk == rk == "string":
            return left + right, "string"
        self.need(lk, {"number"}, op)
        self.need(rk, {"number"}, op)
        if op == "+":
            return left + right, "number"
        if op == "-":
            return left - right, "number"
        if op == "*":
            return left * right, "number"
        safe = pl.when(right == 0).then(None)
        if op == "/":
            return safe.otherwise(left / right), "number"
        return safe.otherwise(left % right), "number"

    def comparable(self, a: Node, b: Node, op: str) -> tuple[pl.Expr, pl.Expr, str]:
        left, lk = self.compile(a)
        right, rk = self.compile(b)
        if lk in {"date", "timestamp", "time"} and rk == "string" and isinstance(b, Lit):
            right, rk = self.temporal_literal(b.value, lk), lk
        elif rk in {"date", "timestamp", "time"} and lk == "string" and isinstance(a, Lit):
            left, lk = self.temporal_literal(a.value, rk), rk
        if lk == "date" and rk == "timestamp":
            left, lk = left.cast(pl.Datetime("us", "UTC")), "timestamp"
        if rk == "date" and lk == "timestamp":
            right, rk = right.cast(pl.Datetime("us", "UTC")), "timestamp"
        if lk != rk and "null" not in {lk, rk}:
            raise self.fail(f"cannot compare a {lk} with a {rk} ('{op}')")
        return left, right, lk

    def temporal_literal(self, text: str, kind: str) -> pl.Expr:
        try:
            if kind == "date":
                return pl.lit(date.fromisoformat(text))
            if kind == "time":
                return pl.lit(time.fromisoformat(text))
            value = datetime.fromisoformat(text)
        except ValueError:
            raise self.fail(f"{text!r} is not an ISO {kind} (e.g. 2024-01-31"
                            f"{'T12:00:00Z' if kind == 'timestamp' else ''})") from None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return pl.lit(value, dtype=pl.Datetime("us", "UTC"))

    def _in(self, node: In) -> tuple[pl.Expr, str]:
        expr, kind = self.compile(node.arg)
        values = [i.value for i in node.items if i.value is not None]
        kinds = {self._lit(i)[1] for i in node.items if i.value is not None}
        if kind in {"date", "timestamp", "time"} and kinds <= {"string"}:
            lit_values = [self.temporal_literal(v, kind) for v in values]
            inside = pl.any_horizontal([expr == v for v in lit_values]) if values else pl.lit(False)
        else:
            if kinds - {kind} and kind != "null":
                raise self.fail(f"'in' compares a {kind} with {', '.join(sorted(kinds))} values")
            inside = expr.is_in(values) if values else pl.lit(False)
        inside = pl.when(expr.is_null()).then(None).otherwise(inside)
        return (~inside if node.negated else inside), "boolean"

    def _between(self, node: Between) -> tuple[pl.Expr, str]:
        x1, lo, _ = self.comparable(node.arg, node.low, "between")
        x2, hi, _ = self.comparable(node.arg, node.high, "between")
        inside = (x1 >= lo) & (x2 <= hi)
        return (~inside if node.negated else inside), "boolean"

    def _isnull(self, node: IsNull) -> tuple[pl.Expr, str]:
        expr, _ = self.compile(node.arg)
        return (expr.is_not_null() if node.negated else expr.is_null()), "boolean"

    def _match(self, node: Match) -> tuple[pl.Expr, str]:
        expr, kind = self.compile(node.arg)
        self.need(kind, {"string"}, "matches" if node.regex else "like")
        pattern = node.pattern if node.regex else _like_regex(node.pattern)
        found = expr.str.contains(pattern)
        return (~found if node.negated else found), "boolean"

    def _func(self, node: Func) -> tuple[pl.Expr, str]:
        spec = _FUNCTIONS.get(node.name)
        if spec is None:
            known = ", ".join(sorted(_FUNCTIONS))
            raise self.fail(f"unknown function {node.name}(); known: {known}")
        arity, build = spec
        low, high = arity
        if not low <= len(node.args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise self.fail(f"{node.name}() takes {want} argument(s), got {len(node.args)}")
        if node.name in {"date", "timestamp"}:
            arg = node.args[0]
            if isinstance(arg, Lit) and isinstance(arg.value, str):
                return self.temporal_literal(arg.value, node.name), node.name
            expr, kind = self.compile(arg)
            if node.name == "date" and kind in {"date", "timestamp"}:
                return (expr if kind == "date" else expr.dt.date()), "date"
            if node.name == "timestamp" and kind in {"date", "timestamp"}:
                return expr.cast(pl.Datetime("us", "UTC")), "timestamp"
            raise self.fail(f"{node.name}() takes a text literal such as "
                            f"{node.name}('2024-01-31'), or a date or timestamp column")
        args = [self.compile(a) for a in node.args]
        return build(self, args)


def _days(delta: pl.Expr, kind: str) -> pl.Expr:
    if kind == "date":
        return delta.dt.total_days()
    return delta.dt.total_microseconds() / 86_400_000_000


def _like_regex(pattern: str) -> str:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "^(?s:" + "".join(out) + ")$"


def _f_num(name: str, fn):  # one numeric argument
    def build(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
        c.need(args[0][1], {"number"}, name)
        return fn(args[0][0]), "number"
    return build


def _f_str(name: str, fn, result: str = "string"):
    def build(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
        c.need(args[0][1], {"string"}, name)
        return fn(args[0][0]), result
    return build


def _f_part(name: str, fn, kinds: set[str]):
    def build(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
        c.need(args[0][1], kinds, name)
        return fn(args[0][0]).cast(pl.Int64), "number"
    return build


def _f_text_test(name: str, method: str):
    def build(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
        c.need(args[0][1], {"string"}, name)
        c.need(args[1][1], {"string"}, name)
        expr = getattr(args[0][0].str, method)
        return (expr(args[1][0], literal=True) if method == "contains" else expr(args[1][0])
                ), "boolean"
    return build


def _f_round(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
    c.need(args[0][1], {"number"}, "round")
    return args[0][0].round(0, mode="half_away_from_zero"), "number"


def _f_same(name: str, horizontal):
    def build(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
        kinds = {k for _, k in args} - {"null"}
        if len(kinds) > 1:
            raise c.fail(f"{name}() mixes {', '.join(sorted(kinds))}")
        return horizontal([e for e, _ in args]), (kinds.pop() if kinds else "null")
    return build


def _f_days_between(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
    (a, ak), (b, bk) = args
    if ak == "date" and bk == "timestamp":
        a, ak = a.cast(pl.Datetime("us", "UTC")), "timestamp"
    if bk == "date" and ak == "timestamp":
        b, bk = b.cast(pl.Datetime("us", "UTC")), "timestamp"
    c.need(ak, {"date", "timestamp"}, "days_between")
    c.need(bk, {"date", "timestamp"}, "days_between")
    return _days(b - a, ak), "number"


def _f_now(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
    return pl.lit(datetime.now(UTC), dtype=pl.Datetime("us", "UTC")), "timestamp"


def _f_today(c: _Compiler, args: list[tuple[pl.Expr, str]]) -> tuple[pl.Expr, str]:
    return pl.lit(datetime.now(UTC).date()), "date"


_FUNCTIONS: dict[str, tuple[tuple[int, int], Any]] = {
    "abs": ((1, 1), _f_num("abs", lambda e: e.abs())),
    "floor": ((1, 1), _f_num("floor", lambda e: e.floor())),
    "ceil": ((1, 1), _f_num("ceil", lambda e: e.ceil())),
    "round": ((1, 1), _f_round),
    "lower": ((1, 1), _f_str("lower", lambda e: e.str.to_lowercase())),
    "upper": ((1, 1), _f_str("upper", lambda e: e.str.to_uppercase())),
    "trim": ((1, 1), _f_str("trim", lambda e: e.str.strip_chars())),
    "length": ((1, 1), _f_str("length", lambda e: e.str.len_chars().cast(pl.Int64), "number")),
    "len": ((1, 1), _f_str("len", lambda e: e.str.len_chars().cast(pl.Int64), "number")),
    "year": ((1, 1), _f_part("year", lambda e: e.dt.year(), {"date", "timestamp"})),
    "month": ((1, 1), _f_part("month", lambda e: e.dt.month(), {"date", "timestamp"})),
    "day": ((1, 1), _f_part("day", lambda e: e.dt.day(), {"date", "timestamp"})),
    "hour": ((1, 1), _f_part("hour", lambda e: e.dt.hour(), {"timestamp", "time"})),
    "weekday": ((1, 1), _f_part("weekday", lambda e: e.dt.weekday(), {"date", "timestamp"})),
    "starts_with": ((2, 2), _f_text_test("starts_with", "starts_with")),
    "ends_with": ((2, 2), _f_text_test("ends_with", "ends_with")),
    "contains": ((2, 2), _f_text_test("contains", "contains")),
    "coalesce": ((1, 16), _f_same("coalesce", pl.coalesce)),
    "least": ((1, 16), _f_same("least", pl.min_horizontal)),
    "greatest": ((1, 16), _f_same("greatest", pl.max_horizontal)),
    "days_between": ((2, 2), _f_days_between),
    "now": ((0, 0), _f_now),
    "today": ((0, 0), _f_today),
    "date": ((1, 1), None),
    "timestamp": ((1, 1), None),
}
