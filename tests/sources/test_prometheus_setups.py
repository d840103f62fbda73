"""Prometheus behind what real setups put in front of it: a tenant header, basic auth, a path prefix, TLS
with a private CA, a rotating bearer token; and a run's queries sent side by side, never more than allowed.

The upstream is the simulated Prometheus; the proxy in front of it is a real HTTP(S) server
(tests/prometheus_proxy.py) that refuses what Mimir's gateway or a managed endpoint refuses.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import ssl
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from shared.core.logs import configure_logging, register_secrets
from shared.core.settings import Settings
from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.ops.diagnose.archive import write_archive
from shared.ops.diagnose.diagnosis import diagnose
from shared.ops.diagnose.findings import OK
from shared.ops.health import DEGRADED, HEALTHY, check_health
from shared.simulator.cluster import SimulatedCluster
from tests.conftest import FakeClock, make_settings
from tests.support.prometheus_proxy import ProxyRules, prometheus_proxy

TENANT = "team-a"
PASSWORD = "s3cret-proxy-pass"


@pytest.fixture
def live_cluster(small_scenario, tmp_path) -> Iterator[tuple[SimulatedCluster, FakeClock]]:
    """The simulated cluster on real time: health and diagnose ask Prometheus about the last hour."""
    clock = FakeClock(time.time())
    with SimulatedCluster(small_scenario, clock=clock) as cluster:
        yield cluster, clock


@pytest.fixture
def proxy(live_cluster) -> Iterator[tuple[str, ProxyRules]]:
    """A Mimir-like gateway: X-Scope-OrgID and basic auth required, the API under /prometheus."""
    cluster, _ = live_cluster
    rules = ProxyRules(cluster.prometheus_url, tenant=TENANT, username="monitor", password=PASSWORD)
    with prometheus_proxy(rules) as url:
        yield url, rules


def behind_proxy(tmp_path: Path, cluster: SimulatedCluster, url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "prometheus_url": url, "prometheus_path_prefix": "/prometheus",
        "prometheus_headers": f"X-Scope-OrgID={TENANT}", "prometheus_username": "monitor",
        "prometheus_password": PASSWORD, **overrides}
    return make_settings(tmp_path, cluster, **values)


def test_collect_health_and_diagnose_work_through_a_tenant_gateway(tmp_path, live_cluster, proxy) -> None:
    cluster, clock = live_cluster
    url, _ = proxy
    settings = behind_proxy(tmp_path, cluster, url)

    body, status = collect_once(settings, Trigger("cli"), clock=clock)
    health = check_health(settings, now=clock())
    diagnosis = diagnose(settings, now=clock(), timeout_seconds=5)

    assert (status, body["status"]) == (200, "ok"), body["error"]
    assert body["prometheus_queries"] == 7 and body["warnings"] == []
    assert health.checks["prometheus"].status == HEALTHY, health.checks["prometheus"].error
    prometheus = diagnosis.sections["prometheus"]
    assert prometheus.status == OK, prometheus.summary
    assert prometheus.data["access"]["header_names"] == ["X-Scope-OrgID"]
    assert prometheus.data["access"]["auth"] == "basic"


def test_the_path_prefix_may_also_be_part_of_the_url(tmp_path, live_cluster, proxy) -> None:
    cluster, clock = live_cluster
    url, _ = proxy
    settings = behind_proxy(tmp_path, cluster, f"{url}/prometheus/", prometheus_path_prefix="")

    body, _ = collect_once(settings, Trigger("cli"), clock=clock)

    assert body["status"] == "ok", body["error"]


@pytest.mark.parametrize(("overrides", "named"), [
    ({"prometheus_headers": "X-Scope-OrgID=team-b"}, "PROMETHEUS_HEADERS, e.g. X-Scope-OrgID=<tenant>"),
    ({"prometheus_headers": None}, "PROMETHEUS_HEADERS, e.g. X-Scope-OrgID=<tenant>"),
    ({"prometheus_password": "wrong-password"}, "check PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD"),
    ({"prometheus_username": None, "prometheus_password": None},
     "set PROMETHEUS_BEARER_TOKEN_FILE, or PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD"),
    ({"prometheus_path_prefix": ""}, "check PROMETHEUS_URL and PROMETHEUS_PATH_PREFIX"),
])
def test_a_refusal_names_the_setting_to_change_in_collect_health_and_diagnose(
        tmp_path, live_cluster, proxy, overrides, named) -> None:
    cluster, clock = live_cluster
    url, _ = proxy
    settings = behind_proxy(tmp_path, cluster, url, **overrides)
    cluster.prometheus.queries.clear()

    body, status = collect_once(settings, Trigger("cli"), clock=clock)
    health = check_health(settings, now=clock()).checks["prometheus"]
    diagnosis = diagnose(settings, now=clock(), timeout_seconds=5).sections["prometheus"]

    assert (status, body["status"]) == (200, "partial")  # Kubernetes data stored; usage missing
    assert named in body["error"] and "Traceback" not in body["error"]
    assert body["prometheus_queries"] == 1  # refused once: the six figures are not asked in vain
    assert cluster.prometheus.queries == []
    assert health.status == DEGRADED and named in (health.error or "")
    assert named in diagnosis.findings[0].detail
    assert PASSWORD not in json.dumps(body) + (health.error or "") + diagnosis.findings[0].detail


def test_tls_with_a_private_ca_works_with_the_ca_file_and_is_refused_clearly_without(
        tmp_path, live_cluster) -> None:
    cluster, clock = live_cluster
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    rules = ProxyRules(cluster.prometheus_url, path_prefix="", tenant=None, username=None)
    with prometheus_proxy(rules, tls=server_context) as url:
        trusted = make_settings(tmp_path / "trusted", cluster, prometheus_url=url, prometheus_ca_file=ca_file)
        untrusted = make_settings(tmp_path / "untrusted", cluster, prometheus_url=url)
        ok, _ = collect_once(trusted, Trigger("cli"), clock=clock)
        refused, _ = collect_once(untrusted, Trigger("cli"), clock=clock)
        health = check_health(untrusted, now=clock()).checks["prometheus"]

    assert url.startswith("https://")
    assert ok["status"] == "ok", ok["error"]
    assert refused["status"] == "partial"
    assert ("its TLS certificate does not verify with the system's CAs: set PROMETHEUS_CA_FILE to the CA that "
            "signed it") in refused["error"]
    assert health.status == DEGRADED and "set PROMETHEUS_CA_FILE" in (health.error or "")


def test_a_bearer_token_file_rewritten_between_runs_sends_the_new_token(
        tmp_path, live_cluster, capsys) -> None:
    cluster, clock = live_cluster
    token_file = tmp_path / "token"
    first, second = "first-token-" + "a" * 24, "second-token-" + "b" * 24
    token_file.write_text(first + "\n")
    rules = ProxyRules(cluster.prometheus_url, path_prefix="", tenant=None, username=None, bearer_token=first)
    with prometheus_proxy(rules) as url:
        settings = make_settings(tmp_path, cluster, prometheus_url=url, prometheus_bearer_token_file=token_file)
        one, _ = collect_once(settings, Trigger("cli"), clock=clock)
        seen_first = set(rules.authorizations)
        rules.authorizations.clear()
        token_file.write_text(second + "\n")  # rotated by the platform; the same settings, no restart
        rules.bearer_token = second
        clock.advance(300)
        two, _ = collect_once(settings, Trigger("cli"), clock=clock)

    assert (one["status"], two["status"]) == ("ok", "ok"), (one["error"], two["error"])
    assert seen_first == {f"Bearer {first}"}
    assert set(rules.authorizations) == {f"Bearer {second}"}


def test_queries_run_side_by_side_never_more_than_the_bound(tmp_path, cluster, clock) -> None:
    """Held until four are in flight (or a second passed): a client that sends more than three at once
    would show four; one that sends them one by one would show one."""
    seen = {}
    for bound in (3, 1):
        cluster.prometheus.max_in_flight = 0
        cluster.prometheus.hold_queries(until_in_flight=bound + 1, at_most_seconds=1.0, after=1)  # after the check
        settings = make_settings(tmp_path / str(bound), cluster, prometheus_max_concurrency=bound)
        body, _ = collect_once(settings, Trigger("cli"), clock=clock)
        assert body["status"] == "ok" and body["prometheus_queries"] == 7, body
        seen[bound] = cluster.prometheus.max_in_flight
    assert seen == {3: 3, 1: 1}


def test_prometheus_usage_of_a_run_is_counted_and_answered(settings, clock) -> None:
    body, _ = collect_once(settings, Trigger("cli"), clock=clock)

    assert body["prometheus_queries"] == 7
    assert body["prometheus_series_returned"] > 6 * body["containers"] * 0.5  # six figures for most containers
    assert body["prometheus_response_bytes"] > 1000
    assert body["prometheus_samples_processed"] > body["prometheus_series_returned"]
    assert body["cluster"] == "simulated"  # the kubeconfig context's cluster


def test_no_secret_reaches_logs_answers_health_or_the_diagnose_archive(tmp_path, live_cluster, proxy) -> None:
    cluster, clock = live_cluster
    url, _ = proxy
    api_key = "hdr-value-" + "k" * 20
    token_file = tmp_path / "token"
    token_file.write_text("bearer-" + "t" * 30)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        wrong = behind_proxy(tmp_path, cluster, url, prometheus_password="wrong-" + PASSWORD,
                             prometheus_headers=f"X-Scope-OrgID={TENANT},X-Api-Key={api_key}")
        configure_logging("DEBUG", "json", stream, cluster=wrong.cluster_name)
        register_secrets(wrong.secret_values())
        body, _ = collect_once(wrong, Trigger("cli"), clock=clock)
        health = check_health(wrong, now=clock()).as_dict()
        archive = write_archive(diagnose(wrong, now=clock(), timeout_seconds=5), tmp_path / "diagnose")
        bearer = behind_proxy(tmp_path / "bearer", cluster, url, prometheus_username=None, prometheus_password=None,
                              prometheus_bearer_token_file=token_file)
        bearer_body, _ = collect_once(bearer, Trigger("cli"), clock=clock)  # the proxy wants basic auth: refused
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)
    with tarfile.open(archive) as tar:
        archived = "".join(tar.extractfile(member).read().decode() for member in tar.getmembers()  # type: ignore[union-attr]
                           if member.isfile())
    everything = "\n".join([json.dumps(body), json.dumps(bearer_body), json.dumps(health), archived, stream.getvalue()])

    assert "PROMETHEUS_PASSWORD" in body["error"] and "PROMETHEUS_BEARER_TOKEN_FILE" in bearer_body["error"]
    assert '"cluster": "simulated"' in stream.getvalue()  # every log line names the cluster
    for secret in ("wrong-" + PASSWORD, api_key, "bearer-" + "t" * 30):
        assert secret not in everything


def test_every_run_stores_and_answers_its_cluster_ok_or_failed(tmp_path, cluster, clock) -> None:
    settings = make_settings(tmp_path, cluster, cluster_name="prod-eu-1")
    body, _ = collect_once(settings, Trigger("cli"), clock=clock)
    failed, _ = collect_once(make_settings(tmp_path, None, cluster_name="prod-eu-1"), Trigger("cli"), clock=clock)

    conn = sqlite3.connect(settings.database_path)
    stored = conn.execute("SELECT status, cluster FROM runs ORDER BY id").fetchall()
    conn.close()
    assert (body["cluster"], failed["cluster"]) == ("prod-eu-1", "prod-eu-1")
    assert stored == [("ok", "prod-eu-1"), ("failed", "prod-eu-1")]
