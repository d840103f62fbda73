"""PromQL label matchers as typed values: parsed from a setting, rendered into queries with their quoting.

`PROMETHEUS_SELECTOR` is text an operator writes (`job="kubelet",metrics_path="/metrics/cadvisor"`);
`CLUSTER_NAME` is any string. Both end up inside every query's selectors, so neither is ever pasted
into PromQL: each is parsed into (name, operator, value) and written back out with the value quoted
and escaped, so a value holding `"`, `}` or `\\` stays one string and cannot change the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

MatchOp = Literal["=", "!=", "=~", "!~"]
OPERATORS: tuple[MatchOp, ...] = ("=~", "!~", "!=", "=")  # longest first, as the lexer tries them
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SPACE = re.compile(r"\s*")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   "'": "'", '"': '"'}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}
_REGEX_SPECIALS = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True, slots=True)
class LabelMatcher:
    """One `name op "value"` matcher; the value is plain text, never PromQL."""

    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        if not LABEL_NAME.fullmatch(self.name):
            raise ValueError(f"{self.name!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if self.op not in OPERATORS:
            raise ValueError(f"{self.op!r} is not a matcher operator (=, !=, =~, !~)")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"{self.name}{self.op}: {self.value!r} is not a regular expression: {exc}") from None

    def render(self) -> str:
        """The matcher as PromQL: the value in double quotes, escaped."""
        return f"{self.name}{self.op}{quote(self.value)}"

    def __str__(self) -> str:
        return self.render()


def quote(value: str) -> str:
    """`value` as a double-quoted PromQL string: backslash, quote and control characters escaped."""
    out = []
    for char in value:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render_matchers(matchers: Iterable[LabelMatcher]) -> str:
    """`{a="b",c!="d"}`: the matchers inside braces, in the order given."""
    return "{" + ",".join(matcher.render() for matcher in matchers) + "}"


def literal_regex(values: Iterable[str]) -> str:
    """A regex matching exactly one of `values`: each escaped, joined by `|` (PromQL anchors it)."""
    return "|".join(_REGEX_SPECIALS.sub(r"\\\1", value) for value in values)


def parse_matchers(text: str) -> tuple[LabelMatcher, ...]:
    """`job="kubelet", metrics_path=~"/metrics/c.*"` (optionally in braces) as matchers; ValueError says where.

    Values are PromQL strings: double- or single-quoted with Go escapes, or raw in backticks.
    """
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers: list[LabelMatcher] = []
    position = _skip_space(body, 0)
    while position < len(body):
        name_match = LABEL_NAME.match(body, position)
        if name_match is None:
            raise ValueError(f"expected a label name at character {position + 1}: {body[position:position + 20]!r}")
        position = _skip_space(body, name_match.end())
        op = next((candidate for candidate in OPERATORS if body.startswith(candidate, position)), None)
        if op is None:
            raise ValueError(f"expected =, !=, =~ or !~ after {name_match.group()!r} at character {position + 1}")
        value, position = _string(body, _skip_space(body, position + len(op)))
        matchers.append(LabelMatcher(name_match.group(), op, value))
        position = _skip_space(body, position)
        if position < len(body):
            if body[position] != ",":
                raise ValueError(f"expected ',' between matchers at character {position + 1}")
            position = _skip_space(body, position + 1)
    return tuple(matchers)


def _skip_space(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    return match.end() if match else position


def _string(text: str, position: int) -> tuple[str, int]:
    """The string literal starting at `position` and the position after it."""
    if position >= len(text) or text[position] not in "\"'`":
        raise ValueError(f"expected a quoted value at character {position + 1}")
    quote_char = text[position]
    if quote_char == "`":
        end = text.find("`", position + 1)
        if end == -1:
            raise ValueError(f"unterminated `raw string` starting at character {position + 1}")
        return text[position + 1:end], end + 1
    out: list[str] = []
    index = position + 1
    while index < len(text):
        char = text[index]
        if char == quote_char:
            return "".join(out), index + 1
        if char == "\n":
            break
        if char != "\\":
            out.append(char)
            index += 1
            continue
        decoded, index = _escape(text, index + 1)
        out.append(decoded)
    raise ValueError(f"unterminated string starting at character {position + 1}")


def _escape(text: str, index: int) -> tuple[str, int]:
    """The character an escape after a backslash stands for, and the position after it (Go's rules)."""
    if index >= len(text):
        raise ValueError("a backslash ends the text")
    char = text[index]
    if char in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[char], index + 1
    if char in _HEX_DIGITS:
        digits = text[index + 1:index + 1 + _HEX_DIGITS[char]]
        if len(digits) != _HEX_DIGITS[char] or not all(d in "0123456789abcdefABCDEF" for d in digits):
            raise ValueError(f"bad \\{char} escape at character {index}")
        return chr(int(digits, 16)), index + 1 + len(digits)
    if char in "01234567":
        digits = text[index:index + 3]
        if len(digits) != 3 or not all(d in "01234567" for d in digits):
            raise ValueError(f"bad octal escape at character {index}")
        return chr(int(digits, 8)), index + 3
    raise ValueError(f"unknown escape \\{char} at character {index}")
