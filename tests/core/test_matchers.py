"""Label matchers from settings, and the selectors every query carries: parsed, rendered, never pasted."""

from __future__ import annotations

import pytest

from shared.core.matchers import LabelMatcher, literal_regex, parse_matchers, quote, render_matchers
from shared.simulator import promql
from shared.sources.selectors import container_matchers, scope_matchers
from shared.sources.usage import duplicates_usage_query, usage_queries
from tests.conftest import make_settings


def test_a_selector_setting_parses_into_typed_matchers() -> None:
    assert parse_matchers(' {job="kubelet", metrics_path=~\'/metrics/c.*\' ,endpoint!=`https-metrics`} ') == (
        LabelMatcher("job", "=", "kubelet"), LabelMatcher("metrics_path", "=~", "/metrics/c.*"),
        LabelMatcher("endpoint", "!=", "https-metrics"))
    assert parse_matchers("") == ()


@pytest.mark.parametrize(("text", "expected"), [
    ('a="x\\"y"', 'x"y'), (r'a="back\\slash"', "back\\slash"), (r'a="tab\there"', "tab\there"),
    (r'a="\u00e9t\xc3"', "\u00e9t\u00c3"), (r'a="\101"', "A"), ("a=`raw\\n`", "raw\\n"),
])
def test_values_are_read_with_promql_string_escapes(text: str, expected: str) -> None:
    assert parse_matchers(text)[0].value == expected


@pytest.mark.parametrize(("text", "says"), [
    ("job=kubelet", "expected a quoted value at character 5"),
    ('job="kubelet" instance="a"', "expected ',' between matchers"),
    ('job=="kubelet"', "expected a quoted value"),
    ('9job="x"', "expected a label name at character 1"),
    ('job="unterminated', "unterminated string"),
    ('job="\\q"', "unknown escape"),
    ('job=~"(unclosed"', "is not a regular expression"),
])
def test_text_that_is_not_matchers_is_refused_saying_where(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        parse_matchers(text)


@pytest.mark.parametrize("value", [
    'prod"} or vector(1) or up{x="', "a\\", "line\nbreak", "}", "\x00\x1f", "é ✓",
    'x",namespace=~".+',
])
def test_any_value_renders_as_one_string_the_promql_parser_reads_back(value: str) -> None:
    """A crafted value stays a value: the rendered matcher parses back to exactly it, alone."""
    matcher = LabelMatcher("cluster", "=", value)
    node = promql.parse("up" + render_matchers((matcher,)))
    assert node == promql.Selector("up", (promql.Matcher("cluster", "=", value),))
    assert parse_matchers(matcher.render()) == (matcher,)


def test_quote_escapes_only_what_a_promql_string_needs() -> None:
    assert quote('say "hi"\\\n') == '"say \\"hi\\"\\\\\\n"'
    assert quote("plain-value_1.2") == '"plain-value_1.2"'


def test_namespace_lists_become_an_escaped_alternation() -> None:
    assert literal_regex(["team-a", "a.b", "x+"]) == "team-a|a\\.b|x\\+"


def test_every_selector_of_every_query_carries_the_cluster_and_the_selector(tmp_path) -> None:
    crafted = 'prod"} or vector(1) #'
    settings = make_settings(tmp_path, cluster_name=crafted, prometheus_cluster_label="cluster",
                             prometheus_selector='job="kubelet",metrics_path="/metrics/cadvisor"')
    scope = (promql.Matcher("cluster", "=", crafted), promql.Matcher("job", "=", "kubelet"),
             promql.Matcher("metrics_path", "=", "/metrics/cadvisor"))
    assert [m.render() for m in scope_matchers(settings)] == [
        'cluster="prod\\"} or vector(1) #"', 'job="kubelet"', 'metrics_path="/metrics/cadvisor"']
    queries = [*usage_queries(settings), duplicates_usage_query(settings)]
    for namespaces in (None, ("team-a",), ("team-a", "team-b")):
        for query in queries:
            selectors = list(_selectors(promql.parse(query.render(container_matchers(settings, namespaces)))))
            assert selectors, query.figure
            for selector in selectors:
                assert selector.matchers[:3] == scope, (query.figure, selector)
                assert promql.Matcher("container", "!=", "POD") in selector.matchers


def _selectors(node: promql.Node):
    """Every metric selector in a parsed query."""
    if isinstance(node, promql.Selector):
        yield node
    for child in ("expr", "arg", "lhs", "rhs"):
        if hasattr(node, child):
            yield from _selectors(getattr(node, child))
