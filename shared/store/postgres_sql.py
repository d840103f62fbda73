"""The store's SQL, written for SQLite, as PostgreSQL runs it: one translation per statement, cached.

The store keeps one text per query (SQLite's, which runs unchanged and as fast as before) and this
module rewrites the few spellings PostgreSQL lacks: `?` and `:name` parameters become psycopg's
`%s` and `%(name)s`, `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`, the two-argument scalar
MAX/MIN become GREATEST/LEAST, `group_concat` becomes `string_agg`, `CAST(x AS INTEGER)` truncates as
SQLite does (PostgreSQL would round), `REAL` is double precision, `json_each(?)` of ids becomes
`json_ids(?)` (of namespaces, text: `jsonb_array_elements_text`), and `CROSS JOIN t ON` (SQLite's
join-order hint) is a plain JOIN.
IIF, TOTAL and SUM of comparisons exist on PostgreSQL as functions the schema creates
(shared/store/postgres_schema.py). Queries that differ in more than spelling branch on the dialect
where they live.
"""

from __future__ import annotations

import re
from functools import lru_cache

_INSERT_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_SCALAR_MAX_MIN = re.compile(r"\b(MAX|MIN)\(", re.IGNORECASE)
_GROUP_CONCAT = re.compile(r"\bgroup_concat\(([^(),]+)\)", re.IGNORECASE)
_UID_IN = "uid IN (SELECT value FROM json_each(?))"
# A JSON array of namespaces (text, where json_ids reads bigint ids): the same parameter on both backends.
_NAMESPACE_IN = re.compile(r"\bnamespace IN \(SELECT value FROM json_each\(\?\)\)", re.IGNORECASE)
_JSON_EACH = re.compile(r"\bjson_each\(", re.IGNORECASE)
_CAST_REAL = re.compile(r"\bAS\s+REAL\)", re.IGNORECASE)
_CAST = re.compile(r"\bCAST\(", re.IGNORECASE)
_CROSS_JOIN_ON = re.compile(r"\bCROSS\s+JOIN\s+(\w+(?:\s+(?!ON\b)\w+)?)\s+ON\b", re.IGNORECASE)
_FROM_SUBQUERY = re.compile(r"\b(FROM|JOIN)\s*\(\s*(?=SELECT\b|WITH\b)", re.IGNORECASE)
_NOT_AN_ALIAS = re.compile(r"\s*(?:$|[),;]|(?:WHERE|GROUP|ORDER|LIMIT|JOIN|CROSS|LEFT|INNER|UNION|ON|HAVING|WINDOW)\b)",
                           re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)


@lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """`sql` (SQLite's spelling, `?` or `:name` parameters) as psycopg runs it on PostgreSQL."""
    text = sql
    if _INSERT_OR_IGNORE.search(text):
        text = _INSERT_OR_IGNORE.sub("INSERT INTO", text)
        returning = _RETURNING.search(text)
        if returning:
            text = f"{text[:returning.start()]} ON CONFLICT DO NOTHING {text[returning.start():]}"
        else:
            text = text.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    text = _scalar_max_min(text)
    text = _CROSS_JOIN_ON.sub(r"JOIN \1 ON", text)  # SQLite's join-order hint; PostgreSQL plans the order itself
    text = _GROUP_CONCAT.sub(r"string_agg(CAST(\1 AS text), ',')", text)
    text = text.replace(_UID_IN, "uid = ANY(?)")  # pod uids, text: the caller passes a list (a text[])
    text = _NAMESPACE_IN.sub("namespace IN (SELECT jsonb_array_elements_text(CAST(? AS jsonb)))", text)
    text = _JSON_EACH.sub("json_ids(", text)
    text = _CAST_REAL.sub("AS double precision)", text)
    text = _truncating_integer_casts(text)
    text = _aliased_subqueries(text)
    return _parameters(text)


def _aliased_subqueries(text: str) -> str:
    """`FROM (SELECT ...)` with an alias, which PostgreSQL before 16 requires and SQLite does not."""
    out, position, count = [], 0, 0
    for match in _FROM_SUBQUERY.finditer(text):
        if match.start() < position:
            continue
        end, _ = _arguments_end(text, match.end())
        if _NOT_AN_ALIAS.match(text, end):
            count += 1
            out.append(text[position:end])
            out.append(f" AS subquery_{count}")
            position = end
    out.append(text[position:])
    return "".join(out)


def _arguments_end(text: str, start: int) -> tuple[int, list[int]]:
    """From just after an opening parenthesis: the index after its closing one, and the top-level commas."""
    depth, index, commas = 1, start, []
    while index < len(text) and depth:
        char = text[index]
        if char == "'":
            index = text.index("'", index + 1)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 1:
            commas.append(index)
        index += 1
    return index, commas


def _scalar_max_min(text: str) -> str:
    """SQLite's MAX(a, b) and MIN(a, b) (two or more arguments: scalar, not aggregate) as GREATEST and LEAST."""
    out, position = [], 0
    for match in _SCALAR_MAX_MIN.finditer(text):
        if match.start() < position:
            continue
        end, commas = _arguments_end(text, match.end())
        if not commas:
            continue
        name = "GREATEST" if match[1].upper() == "MAX" else "LEAST"
        out.append(text[position:match.start()])
        out.append(f"{name}({_scalar_max_min(text[match.end():end - 1])})")
        position = end
    out.append(text[position:])
    return "".join(out)


def _truncating_integer_casts(text: str) -> str:
    """`CAST(x AS INTEGER)` as `CAST(trunc(x) AS bigint)`: SQLite truncates a REAL, PostgreSQL rounds."""
    out, position = [], 0
    for match in _CAST.finditer(text):
        if match.start() < position:
            continue
        index, _ = _arguments_end(text, match.end())
        inner = text[match.end():index - 1]
        tail = re.search(r"\s+AS\s+INTEGER\s*$", inner, re.IGNORECASE)
        if tail is None:
            continue
        expression = _truncating_integer_casts(inner[:tail.start()])
        out.append(text[position:match.start()])
        out.append(f"CAST(trunc({expression}) AS bigint)")
        position = index
    out.append(text[position:])
    return "".join(out)


def _parameters(text: str) -> str:
    """`?` -> `%s`, `:name` -> `%(name)s`, a literal `%` -> `%%`; string literals and comments keep
    their `?` and `:`."""
    out: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char == "'":
            end = text.index("'", index + 1)
            while end + 1 < length and text[end + 1] == "'":
                end = text.index("'", end + 2)
            out.append(text[index:end + 1].replace("%", "%%"))
            index = end + 1
        elif char == "-" and text.startswith("--", index):
            end = text.find("\n", index)
            end = length if end < 0 else end
            out.append(text[index:end].replace("%", "%%"))
            index = end
        elif char == "?":
            out.append("%s")
            index += 1
        elif char == ":" and index + 1 < length and (text[index + 1].isalpha() or text[index + 1] == "_") \
                and (index == 0 or text[index - 1] != ":"):
            end = index + 1
            while end < length and (text[end].isalnum() or text[end] == "_"):
                end += 1
            out.append(f"%({text[index + 1:end]})s")
            index = end
        elif char == "%":
            out.append("%%")
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)
