"""The composite-rule language: conditions engineers write in the plant file, parsed (never `eval`) into an
immutable tree that detectors/composite.py evaluates.

    dust1.production and not dust1.fan_on
    cast1.casting and cast1.water_q < 0.8 * 120
    rose(dust1.production) and any_alarm(dust1, red)
    sump1.people >= 1 and sump1.h2s > limit(sump1.h2s, yellow)
    nh3.defrost and count(nh3.room_ppm > 25, 10min) >= 3

A bare id is a point's latest reading (`point("a-b")` for ids with other characters); a 0/1 status point may
stand alone as a condition (it is true at >= 0.5). Numbers, durations (`30s`, `10min`, `2h`, in seconds),
`true`/`false`, the tiers `blue yellow orange red` (1..4), `+ - * /`, `< <= > >= == !=` (no chains), `and or
not`, parentheses, and only the functions in FUNCTIONS. Strings exist only as function arguments. Bounded:
MAX_LENGTH characters, MAX_DEPTH levels.

>>> render(parse("a.b>=0.5 and not (c~2 < 1 or held(d, 5min))"))
'a.b >= 0.5 and not (c~2 < 1 or held(d, 5min))'
>>> sorted(references(parse('alarm(x) >= yellow and point("a-b") > limit(y, "red")')))
['a-b', 'x', 'y']
>>> parse("dust1.fan_on = 0")
Traceback (most recent call last):
  ...
config.expr.ExprError: '=' is not an operator: compare with == (col 14)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Callable, Iterator

MAX_LENGTH = 2000
MAX_DEPTH = 40
MAX_WINDOW_S = 86400.0  # held() and count() windows: a day at most, so a rule's memory stays bounded

TIERS = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}  # as config.model.Tier (which imports this module)
UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}
KEYWORDS = {"and", "or", "not", "true", "false", *TIERS}
NUM, BOOL = "number", "condition"


class ExprError(ValueError):
    """A rule that cannot be read: what is wrong and where (1-based column)."""

    def __init__(self, message: str, column: int, text: str = ""):
        super().__init__(f"{message} (col {column})")
        self.message, self.column, self.text = message, column, text

    def caret(self) -> str:
        """The expression with a caret under the fault, for a terminal."""
        return f"{self.text}\n{' ' * (self.column - 1)}^ {self.message}"


# --- the tree -----------------------------------------------------------------------------------------------
# `col` (where the node starts, for messages) takes no part in equality: parse(render(x)) == x.

@dataclass(frozen=True, slots=True)
class Num:
    value: float
    unit: str = ""  # "s", "min" or "h" for a duration written with its unit; value is then in seconds
    col: int = field(default=0, compare=False)
    kind = NUM


@dataclass(frozen=True, slots=True)
class Bool:
    value: bool
    col: int = field(default=0, compare=False)
    kind = BOOL


@dataclass(frozen=True, slots=True)
class TierName:
    name: str  # blue | yellow | orange | red
    col: int = field(default=0, compare=False)
    kind = NUM

    @property
    def value(self) -> int:
        return TIERS[self.name]


@dataclass(frozen=True, slots=True)
class Str:
    value: str  # only ever a function's argument
    col: int = field(default=0, compare=False)
    kind = "string"


@dataclass(frozen=True, slots=True)
class Ref:
    """A point's latest reading."""
    point: str
    col: int = field(default=0, compare=False)
    kind = NUM


@dataclass(frozen=True, slots=True)
class Status:
    """A 0/1 status point read as a condition: true at >= 0.5."""
    ref: Ref
    col: int = field(default=0, compare=False)
    kind = BOOL


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # - | not
    operand: object
    col: int = field(default=0, compare=False)

    @property
    def kind(self) -> str:
        return BOOL if self.op == "not" else NUM


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # + - * / (a number) or < <= > >= == != (a condition)
    left: object
    right: object
    col: int = field(default=0, compare=False)

    @property
    def kind(self) -> str:
        return NUM if self.op in "+-*/" else BOOL


@dataclass(frozen=True, slots=True)
class Logic:
    op: str  # and | or
    operands: tuple
    col: int = field(default=0, compare=False)
    kind = BOOL


@dataclass(frozen=True, slots=True)
class Call:
    func: str
    args: tuple
    col: int = field(default=0, compare=False)

    @property
    def kind(self) -> str:
        return FUNCTIONS[self.func][2]


Node = Num | Bool | TierName | Str | Ref | Status | Unary | Binary | Logic | Call

# --- the functions: argument kinds, how many may be left out at the end, result ------------------------------
POINT, RULE, AREA, TIER, COND, WINDOW, VALUE = "point", "rule", "area", "tier", "cond", "window", "value"
FUNCTIONS: dict[str, tuple[tuple[str, ...], int, str]] = {
    "abs": ((VALUE,), 0, NUM),
    "age": ((POINT,), 0, NUM),                   # seconds since the point's last reading
    "alarm": ((POINT, RULE), 1, NUM),            # highest active tier on the point (of one rule), 0..4
    "any_alarm": ((AREA, TIER), 0, BOOL),        # any alert in the area ("*": anywhere) at or above the tier
    "count": ((COND, WINDOW), 0, NUM),           # false -> true transitions of cond within the window
    "held": ((COND, WINDOW), 0, BOOL),           # cond continuously true for the window
    "limit": ((POINT, TIER), 0, NUM),            # the point's configured high limit at that tier
    "low_limit": ((POINT, TIER), 0, NUM),        # ... its low limit
    "max": ((VALUE, VALUE), 0, NUM),             # max / min take two or more values
    "min": ((VALUE, VALUE), 0, NUM),
    "point": ((POINT,), 0, NUM),                 # point("a-b"): a point whose id is not a bare name
    "rose": ((COND,), 0, BOOL),                  # true at the moment cond turns from false to true
}
STATEFUL = {"rose", "held", "count"}  # remember the past: evaluated at every evaluation, never skipped
_HINTS = {POINT: "a point id, e.g. sump1.h2s or point(\"a-b\")", RULE: "a rule name in quotes, e.g. \"high\"",
          AREA: "an area id or \"*\"", TIER: "a tier: blue, yellow, orange or red", COND: "a condition",
          WINDOW: "a duration with its unit, e.g. 10min", VALUE: "a number"}

# --- tokens ------------------------------------------------------------------------------------------------
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.~]*")
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?P<unit>[A-Za-z_]\w*)?
  | (?P<name>[A-Za-z_][A-Za-z0-9_.~]*)
  | (?P<str>"[^"\n]*"|'[^'\n]*')
  | (?P<op><=|>=|==|!=|[-+*/<>(),])
""", re.VERBOSE)
_BAD = {"=": "'=' is not an operator: compare with ==", "!": "'!' is not an operator: use not, or != to compare",
        "&": "use and", "|": "use or", "%": "'%' is not an operator: write 0.8 * x for 80 % of x",
        '"': "string not closed", "'": "string not closed",
        ".": "attribute access is not part of the language", "[": "no indexing in rules", "]": "no indexing in rules"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # num | name | str | op | end
    text: str
    col: int
    value: object = None


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        col = pos + 1
        if m is None:
            ch = text[pos]
            raise ExprError(_BAD.get(ch, f"unexpected character {ch!r}"), col, text)
        pos = m.end()
        if m.lastgroup == "ws":
            continue
        if m.group("num") is not None:
            value = float(m.group("num"))
            unit = m.group("unit") or ""
            if unit and unit not in UNITS:
                raise ExprError(f"unknown unit {unit!r} after a number: durations are written 30s, 10min or 2h",
                                col, text)
            value *= UNITS.get(unit, 1.0)
            if value != value or value in (float("inf"), float("-inf")):
                raise ExprError("number out of range", col, text)
            out.append(_Tok("num", m.group(0), col, (value, unit)))
        elif m.group("name") is not None:
            out.append(_Tok("name", m.group("name"), col))
        elif m.group("str") is not None:
            out.append(_Tok("str", m.group("str"), col, m.group("str")[1:-1]))
        else:
            out.append(_Tok("op", m.group("op"), col))
    out.append(_Tok("end", "", len(text) + 1))
    return out


# --- the parser ----------------------------------------------------------------------------------------------

def parse(text: str) -> Node:
    """The condition written in `text`, type-checked, or ExprError naming what is wrong and its column."""
    if len(text) > MAX_LENGTH:
        raise ExprError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH + 1, text[:MAX_LENGTH])
    if not text.strip():
        raise ExprError("empty condition", 1, text)
    p = _Parser(text, _tokenize(text))
    node = p.as_cond(p.expr())
    if p.tok.kind != "end":
        raise p.error(f"unexpected {p.tok.text!r}: expected and, or, an operator or the end")
    if depth(node) > MAX_DEPTH:
        raise ExprError(f"nested more than {MAX_DEPTH} levels deep", 1, text)
    return node


class _Parser:
    """Recursive descent, lowest precedence first: or < and < not < comparison < + - < * / < unary minus."""

    def __init__(self, text: str, tokens: list[_Tok]):
        self.text, self.tokens, self.i, self.nesting = text, tokens, 0, 0

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def error(self, message: str, col: int | None = None) -> ExprError:
        return ExprError(message, self.tok.col if col is None else col, self.text)

    def take(self) -> _Tok:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def at(self, kind: str, text: str) -> bool:
        return self.tok.kind == kind and self.tok.text == text

    def expect(self, text: str, what: str) -> None:
        if not self.at("op", text):
            found = "the end" if self.tok.kind == "end" else repr(self.tok.text)
            raise self.error(f"expected {what}, found {found}")
        self.take()

    def nest(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} levels deep")

    # typing: a condition where a condition is wanted, a number where a number is
    def as_cond(self, node: Node) -> Node:
        if isinstance(node, Ref):
            return Status(node, node.col)
        if node.kind != BOOL:
            raise ExprError(f"expected a condition here, got a {node.kind}: compare it (e.g. x > 5)",
                            node.col, self.text)
        return node

    def as_num(self, node: Node) -> Node:
        if node.kind == "string":
            raise ExprError("a quoted string can only be a function's argument (point(\"a-b\"), limit(p, \"red\"))",
                            node.col, self.text)
        if node.kind != NUM:
            raise ExprError("expected a number here, got a condition", node.col, self.text)
        return node

    def expr(self) -> Node:
        return self.logic("or", self.and_)

    def and_(self) -> Node:
        return self.logic("and", self.not_)

    def logic(self, op: str, operand: Callable[[], Node]) -> Node:
        first = operand()
        if not self.at("name", op):
            return first
        items = [self.as_cond(first)]
        while self.at("name", op):
            self.take()
            items.append(self.as_cond(operand()))
        return Logic(op, tuple(items), first.col)

    def not_(self) -> Node:
        if self.at("name", "not"):
            col = self.take().col
            self.nest()
            node = Unary("not", self.as_cond(self.not_()), col)
            self.nesting -= 1
            return node
        return self.compare()

    def compare(self) -> Node:
        left = self.sum()
        if self.tok.kind == "op" and self.tok.text in ("<", "<=", ">", ">=", "==", "!="):
            op = self.take().text
            right = self.sum()
            if self.tok.kind == "op" and self.tok.text in ("<", "<=", ">", ">=", "==", "!="):
                raise self.error("comparisons do not chain: write a < b and b < c")
            return Binary(op, self.as_num(left), self.as_num(right), left.col)
        return left

    def sum(self) -> Node:
        return self.arith(("+", "-"), self.term)

    def term(self) -> Node:
        return self.arith(("*", "/"), self.unary)

    def arith(self, ops: tuple[str, ...], operand: Callable[[], Node]) -> Node:
        node = operand()
        while self.tok.kind == "op" and self.tok.text in ops:
            op = self.take().text
            node = Binary(op, self.as_num(node), self.as_num(operand()), node.col)
        return node

    def unary(self) -> Node:
        if self.at("op", "-"):
            col = self.take().col
            self.nest()
            operand = self.as_num(self.unary())
            self.nesting -= 1
            if isinstance(operand, Num):  # a negative literal is a number, not an operation
                return Num(-operand.value, operand.unit, col)
            return Unary("-", operand, col)
        return self.atom()

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.take()
            value, unit = t.value
            return Num(value, unit, t.col)
        if t.kind == "str":
            self.take()
            return Str(t.value, t.col)
        if self.at("op", "("):
            self.take()
            self.nest()
            node = self.expr()
            self.nesting -= 1
            self.expect(")", "')'")
            return node
        if t.kind == "name":
            self.take()
            if self.at("op", "("):
                return self.call(t)
            if t.text in ("true", "false"):
                return Bool(t.text == "true", t.col)
            if t.text in TIERS:
                return TierName(t.text, t.col)
            if t.text in KEYWORDS:
                raise ExprError(f"expected a value, found {t.text!r}", t.col, self.text)
            if t.text.startswith("__") or ".__" in t.text:
                raise ExprError(f"{t.text!r} is not a point id: no attribute access in rules (an id with other "
                                f"characters is written point(\"...\"))", t.col, self.text)
            return Ref(t.text, t.col)
        found = "the end" if t.kind == "end" else repr(t.text)
        raise self.error(f"expected a value (a point id, a number, a function or '('), found {found}")

    def call(self, name: _Tok) -> Node:
        spec = FUNCTIONS.get(name.text)
        if spec is None:
            raise ExprError(f"unknown function {name.text!r}; the functions are {', '.join(sorted(FUNCTIONS))}",
                            name.col, self.text)
        kinds, optional, _ = spec
        self.take()  # (
        self.nest()
        args: list[Node] = []
        while not self.at("op", ")"):
            if args:
                self.expect(",", "',' or ')'")
            if name.text == "any_alarm" and not args and self.at("op", "*"):
                args.append(Str("*", self.take().col))  # any_alarm(*, red): every area
            else:
                args.append(self.expr())
        self.take()  # )
        self.nesting -= 1
        variadic = name.text in ("min", "max")
        if len(args) < len(kinds) - optional or (len(args) > len(kinds) and not variadic):
            want = ", ".join(_HINTS[k] for k in kinds)
            n = f"{len(kinds) - optional} or {len(kinds)}" if optional else f"{len(kinds)}{' or more' * variadic}"
            raise ExprError(f"{name.text}() takes {n} argument{'s' * (n != '1')} ({want}), got {len(args)}",
                            name.col, self.text)
        if name.text == "point":
            if not isinstance(args[0], Str):
                raise ExprError("point() takes a point id in quotes, e.g. point(\"a-b\")", args[0].col, self.text)
            return Ref(args[0].value, name.col)
        typed = tuple(self.argument(name.text, i, kinds[min(i, len(kinds) - 1)], a) for i, a in enumerate(args))
        return Call(name.text, typed, name.col)

    def argument(self, func: str, i: int, kind: str, node: Node) -> Node:
        wrong = ExprError(f"{func}(): argument {i + 1} must be {_HINTS[kind]}", node.col, self.text)
        if kind == POINT:
            if not isinstance(node, Ref):
                raise wrong
            return node
        if kind == RULE:
            if not isinstance(node, Str):
                raise wrong
            return node
        if kind == AREA:
            if isinstance(node, Ref) and re.fullmatch(r"[A-Za-z0-9_-]+", node.point):
                return Str(node.point, node.col)
            if not isinstance(node, Str):
                raise wrong
            return node
        if kind == TIER:
            if isinstance(node, TierName):
                return node
            if isinstance(node, Str) and node.value in TIERS:
                return TierName(node.value, node.col)
            raise wrong
        if kind == WINDOW:
            if not isinstance(node, Num) or not node.unit:
                raise wrong
            if not 0 < node.value <= MAX_WINDOW_S:
                raise ExprError(f"{func}() window must be more than 0 and at most 24h", node.col, self.text)
            return node
        if kind == COND:
            node = self.as_cond(node)
            if func == "held" and any(isinstance(n, Call) and n.func == "rose" for n in walk(node)):
                raise ExprError("rose() is true for one moment only, so held(rose(...)) never is", node.col,
                                self.text)
            return node
        return self.as_num(node)


# --- reading the tree ----------------------------------------------------------------------------------------

def children(node: Node) -> tuple:
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, (Logic, Call)):
        return node.operands if isinstance(node, Logic) else node.args
    if isinstance(node, Status):
        return (node.ref,)
    return ()


def walk(node: Node) -> Iterator[Node]:
    """Every node, parents before children (iterative: a deep tree costs no recursion)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(children(n)))


def depth(node: Node) -> int:
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in children(n))
    return best


def references(node: Node) -> set[str]:
    """The point ids a condition uses (readings, alarms, ages, limits)."""
    return {n.point for n in walk(node) if isinstance(n, Ref)}


def momentary(node: Node) -> bool:
    """True if the condition can hold for one moment only: it needs a rose() (outside a count())."""
    stack = [(node, False)]
    while stack:
        n, counted = stack.pop()
        if isinstance(n, Call) and n.func == "rose" and not counted:
            return True
        counted = counted or (isinstance(n, Call) and n.func == "count")
        stack.extend((c, counted) for c in children(n))
    return False


def rename(node: Node, new_id: Callable[[str], str]) -> Node:
    """The same condition on other points (a scaled plant's copies)."""
    if isinstance(node, Ref):
        return replace(node, point=new_id(node.point))
    changes = {}
    for f in fields(node):
        v = getattr(node, f.name)
        if isinstance(v, tuple):
            changes[f.name] = tuple(rename(x, new_id) for x in v)
        elif f.name in ("operand", "left", "right", "ref"):
            changes[f.name] = rename(v, new_id)
    return replace(node, **changes) if changes else node


# --- writing the tree back -----------------------------------------------------------------------------------
_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}


def render(node: Node) -> str:
    """Canonical text of a condition: parse(render(x)) == x."""
    return _render(node, 0)


def _render(node: Node, outer: int) -> str:
    if isinstance(node, Num):
        v = node.value / UNITS[node.unit] if node.unit else node.value
        return (str(int(v)) if v == int(v) and abs(v) < 1e15 else repr(v)) + node.unit
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, TierName):
        return node.name
    if isinstance(node, Str):
        return f"'{node.value}'" if '"' in node.value else f'"{node.value}"'
    if isinstance(node, Ref):
        bare = NAME_RE.fullmatch(node.point) and node.point not in KEYWORDS
        return node.point if bare else f'point("{node.point}")'
    if isinstance(node, Status):
        return _render(node.ref, outer)
    if isinstance(node, Call):
        args = [_render(a, 0) for a in node.args]
        area = node.args[0].value if node.func == "any_alarm" else ""
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", area) and area not in KEYWORDS:
            args[0] = area  # any_alarm(dust1, red), as written
        return f"{node.func}({', '.join(args)})"
    if isinstance(node, Unary):
        prec = _PREC["neg" if node.op == "-" else "not"]
        inner = ("-" if node.op == "-" else "not ") + _render(node.operand, prec)
    elif isinstance(node, Logic):
        prec = _PREC[node.op]
        inner = f" {node.op} ".join(_render(x, prec + 1) for x in node.operands)
    elif node.kind == BOOL:
        prec = _PREC["cmp"]
        inner = f"{_render(node.left, prec + 1)} {node.op} {_render(node.right, prec + 1)}"
    else:
        prec = _PREC[node.op]
        inner = f"{_render(node.left, prec)} {node.op} {_render(node.right, prec + 1)}"
    return f"({inner})" if prec < outer else inner
