"""Credentials as kubectl loads them: kubeconfig (token, tokenFile, certificates, basic auth, exec plugins,
KUBECONFIG lists, relative paths, proxy-url, tls-server-name) and the in-cluster service account.

Each kubeconfig here is used against the simulated API server, behind a TLS front where the
setting needs TLS, so a test passes only when the server accepts what the client sent.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from shared.domain.trigger import Trigger
from shared.entry.collect import collect_once
from shared.simulator.cluster import SimulatedCluster
from shared.sources.kube import NAMESPACES, KubeClient, KubeError
from shared.sources.kube_credentials import EXEC_EXPIRY_MARGIN_SECONDS, KubeCredentialsError, load_credentials
from tests.conftest import FAKE_CLOCK_START, make_settings
from tests.support.kube_fronts import forward_proxy, tls_front

EXEC_V1 = "client.authentication.k8s.io/v1"
SECRET_TOKEN = "do-not-show-" + "x" * 24


@pytest.fixture(autouse=True)
def _no_ca_bundle_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests reads these; a test that wants one sets it."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def client_authority() -> trustme.CA:
    return trustme.CA()


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any] | None, context: str = "test") -> Path:
    """One file with one cluster, user (None: no users) and context, all named `context`, the current one."""
    config: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": user}] if user is not None else [],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def settings_for(tmp_path: Path, config: Path | str, **overrides: Any):
    return make_settings(tmp_path, None, kubeconfig=Path(config), kube_max_retries=0, **overrides)


def namespaces(settings, credentials) -> list[str]:
    """What `kubectl get namespaces` would show with these credentials."""
    with KubeClient(credentials, settings) as kube:
        return sorted(item["metadata"]["name"] for item in kube.get(NAMESPACES)["items"])


def served_namespaces(cluster: SimulatedCluster) -> list[str]:
    answer = requests.get(cluster.kube_url + "/api/v1/namespaces", timeout=5,
                          headers={"Authorization": f"Bearer {cluster.token}"})
    return sorted(item["metadata"]["name"] for item in answer.json()["items"])


def client_cert_data(client_authority: trustme.CA, name: str = "monitor") -> dict[str, str]:
    leaf = client_authority.issue_cert(f"{name}@example.com", common_name=name)
    return {"client-certificate-data": b64(leaf.cert_chain_pems[0].bytes()),
            "client-key-data": b64(leaf.private_key_pem.bytes())}


# --- kubeconfig: token, CA, client certificates -------------------------------------------------------------


def test_a_collection_works_over_tls_with_the_kubeconfig_token_and_ca_data(tmp_path, cluster, clock, authority):
    with tls_front(cluster.kube_url, authority.issue_cert("127.0.0.1")) as front:
        config = kubeconfig(tmp_path / "config", {"server": front.url,
                                                  "certificate-authority-data": b64(authority.cert_pem.bytes())},
                            {"token": cluster.token})
        body, status = collect_once(settings_for(tmp_path, config, prometheus_url=cluster.prometheus_url),
                                    Trigger("cli"), clock=clock)

    assert (status, body["status"]) == (200, "ok"), body["error"]
    assert body["pods"] == len(cluster.scenario.pods)
    assert set(front.authorizations) == {f"Bearer {cluster.token}"}


def test_the_kubeconfig_ca_is_trusted_where_requests_ca_bundle_names_another(
        tmp_path, cluster, authority, monkeypatch):
    """REQUESTS_CA_BUNDLE (set in many images) must not replace the CA the kubeconfig names."""
    import certifi

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    with tls_front(cluster.kube_url, authority.issue_cert("127.0.0.1")) as front:
        config = kubeconfig(tmp_path / "config", {"server": front.url,
                                                  "certificate-authority-data": b64(authority.cert_pem.bytes())},
                            {"token": cluster.token})
        settings = settings_for(tmp_path, config)
        listed = namespaces(settings, load_credentials(settings))

    assert listed == served_namespaces(cluster)


def test_insecure_skip_tls_verify_accepts_a_certificate_nobody_signed_for_it(tmp_path, cluster, authority):
    with tls_front(cluster.kube_url, authority.issue_cert("somewhere-else.example")) as front:
        config = kubeconfig(tmp_path / "config", {"server": front.url, "insecure-skip-tls-verify": True},
                            {"token": cluster.token})
        settings = settings_for(tmp_path, config)
        listed = namespaces(settings, load_credentials(settings))

    assert listed == served_namespaces(cluster)


def test_client_certificate_data_authenticates_to_a_server_that_requires_one(
        tmp_path, cluster, authority, client_authority):
    with tls_front(cluster.kube_url, authority.issue_cert("127.0.0.1"), client_ca=client_authority) as front:
        config = kubeconfig(tmp_path / "config", {"server": front.url,
                                                  "certificate-authority-data": b64(authority.cert_pem.bytes())},
                            {"token": cluster.token, **client_cert_data(client_authority)})
        settings = settings_for(tmp_path, config)
        credentials = load_credentials(settings)
        listed = namespaces(settings, credentials)

    assert listed == served_namespaces(cluster)
    assert front.client_names == ["monitor"]


def test_data_fields_become_private_files_removed_when_the_process_exits(tmp_path, authority, client_authority):
    config = kubeconfig(tmp_path / "config", {"server": "https://127.0.0.1:6443",
                                              "certificate-authority-data": b64(authority.cert_pem.bytes())},
                        {"token": SECRET_TOKEN, **client_cert_data(client_authority)})
    script = textwrap.dedent(f"""
        import json, os, stat
        from pathlib import Path
        from shared.core.settings import Settings
        from shared.sources.kube_credentials import load_credentials
        credentials = load_credentials(Settings(kubeconfig=Path({str(config)!r})))
        files = [credentials.verify, *credentials.cert]
        modes = [stat.S_IMODE(os.stat(f).st_mode) for f in files]
        print(json.dumps({{"files": files, "modes": modes,
                          "folder": stat.S_IMODE(os.stat(os.path.dirname(files[0])).st_mode)}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["folder"] == 0o700 and seen["modes"] == [0o600, 0o600, 0o600]
    assert [Path(f).exists() for f in seen["files"]] == [False, False, False]
    assert not Path(seen["files"][0]).parent.exists()


def test_basic_auth_sends_the_username_and_password_and_a_refusal_does_not_show_the_password(
        tmp_path, cluster, authority):
    with tls_front(cluster.kube_url, authority.issue_cert("127.0.0.1")) as front:
        config = kubeconfig(tmp_path / "config", {"server": front.url,
                                                  "certificate-authority-data": b64(authority.cert_pem.bytes())},
                            {"username": "admin", "password": SECRET_TOKEN})
        settings = settings_for(tmp_path, config)
        with pytest.raises(KubeError) as refused:  # the simulated server takes bearer tokens only
            namespaces(settings, load_credentials(settings))

    assert front.authorizations == [f"Basic {b64('admin:' + SECRET_TOKEN)}"]
    assert "401" in str(refused.value) and SECRET_TOKEN not in str(refused.value)


def test_a_rotated_token_file_is_sent_within_a_minute_without_a_restart(tmp_path, cluster, clock):
    config = kubeconfig(tmp_path / "kube" / "config", {"server": cluster.kube_url}, {"tokenFile": "token"})
    token_file = tmp_path / "kube" / "token"  # relative to the kubeconfig's folder
    token_file.write_text(cluster.token + "\n")
    settings = settings_for(tmp_path, config)
    credentials = load_credentials(settings, clock=clock)
    assert namespaces(settings, credentials) == served_namespaces(cluster)

    cluster.kube.token = "rotated-" + "r" * 30  # the old token is revoked, the file rewritten
    token_file.write_text(cluster.kube.token + "\n")
    clock.advance(61)

    assert namespaces(settings, credentials) == served_namespaces(cluster)


# --- exec plugins -------------------------------------------------------------------------------------------


PLUGIN = """\
#!{python}
import json, os, sys
plan = json.loads(open(os.environ["PLAN"]).read())
with open(os.environ["RUNS"], "a") as runs:
    runs.write(json.dumps({{"info": os.environ.get("KUBERNETES_EXEC_INFO"), "greeting": os.environ.get("GREETING"),
                           "args": sys.argv[1:], "stdin_is_tty": sys.stdin is not None and sys.stdin.isatty()}})
               + "\\n")
if plan.get("fail"):
    sys.stderr.write(plan["fail"] + "\\n")
    sys.exit(3)
status = {{key: plan[key] for key in ("token", "expirationTimestamp", "clientCertificateData", "clientKeyData")
          if key in plan}}
print(json.dumps({{"apiVersion": plan.get("apiVersion", "{api}"), "kind": "ExecCredential", "status": status}}))
"""


def write_plugin(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PLUGIN.format(python=sys.executable, api=EXEC_V1), encoding="utf-8")
    path.chmod(0o755)
    return path


def plugin_runs(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def rfc3339(seconds: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_exec_plugin_token_is_used_until_it_expires_then_the_plugin_runs_again(
        tmp_path, cluster, clock, monkeypatch, caplog):
    bin_dir = tmp_path / "bin"
    write_plugin(bin_dir / "kube-login-test")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")  # found on PATH, as kubectl finds it
    plan, runs = tmp_path / "plan.json", tmp_path / "runs.jsonl"
    expires = FAKE_CLOCK_START + 3600
    plan.write_text(json.dumps({"token": cluster.token, "expirationTimestamp": rfc3339(expires)}))
    extension = {"audience": "kube"}
    config = kubeconfig(
        tmp_path / "config",
        {"server": cluster.kube_url, "extensions": [{"name": "client.authentication.k8s.io/exec",
                                                     "extension": extension}]},
        {"exec": {"apiVersion": EXEC_V1, "command": "kube-login-test", "args": ["get-token", "--fast"],
                  "env": [{"name": "GREETING", "value": "hello"}, {"name": "PLAN", "value": str(plan)},
                          {"name": "RUNS", "value": str(runs)}],
                  "provideClusterInfo": True, "interactiveMode": "Never"}})
    settings = settings_for(tmp_path, config)
    caplog.set_level(logging.DEBUG)

    credentials = load_credentials(settings, clock=clock)
    first = namespaces(settings, credentials)
    clock.now = expires - EXEC_EXPIRY_MARGIN_SECONDS - 1
    namespaces(settings, credentials)
    ran_before_expiry = len(plugin_runs(runs))
    cluster.kube.token = "renewed-" + "n" * 30
    plan.write_text(json.dumps({"token": cluster.kube.token, "expirationTimestamp": rfc3339(expires + 3600)}))
    clock.now = expires
    after = namespaces(settings, credentials)
    plan.write_text(json.dumps({"fail": "error: the refresh token expired, log in again"}))
    clock.now = expires + 3600
    with pytest.raises(KubeError) as renewal_failed:
        namespaces(settings, credentials)

    assert first == after == served_namespaces(cluster)
    assert ran_before_expiry == 1 and len(plugin_runs(runs)) == 3
    assert str(renewal_failed.value).startswith("cannot load Kubernetes credentials (KUBECONFIG=")
    assert "exited with status 3: error: the refresh token expired, log in again" in str(renewal_failed.value)
    run = plugin_runs(runs)[0]
    assert (run["greeting"], run["args"], run["stdin_is_tty"]) == ("hello", ["get-token", "--fast"], False)
    assert json.loads(run["info"]) == {"apiVersion": EXEC_V1, "kind": "ExecCredential", "spec": {
        "interactive": False, "cluster": {"server": cluster.kube_url, "config": extension}}}
    assert cluster.kube.token not in caplog.text


def test_an_exec_plugin_named_relative_to_the_kubeconfig_can_answer_with_a_client_certificate(
        tmp_path, cluster, clock, authority, client_authority):
    write_plugin(tmp_path / "kube" / "plugins" / "cert-plugin")
    leaf = client_authority.issue_cert("plugin@example.com", common_name="from-plugin")
    plan, runs = tmp_path / "plan.json", tmp_path / "runs.jsonl"
    plan.write_text(json.dumps({"token": cluster.token, "apiVersion": "client.authentication.k8s.io/v1beta1",
                                "clientCertificateData": leaf.cert_chain_pems[0].bytes().decode(),
                                "clientKeyData": leaf.private_key_pem.bytes().decode()}))
    with tls_front(cluster.kube_url, authority.issue_cert("127.0.0.1"), client_ca=client_authority) as front:
        config = kubeconfig(
            tmp_path / "kube" / "config",
            {"server": front.url, "certificate-authority-data": b64(authority.cert_pem.bytes())},
            {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "./plugins/cert-plugin",
                      "env": [{"name": "PLAN", "value": str(plan)}, {"name": "RUNS", "value": str(runs)}],
                      "provideClusterInfo": True}})
        settings = settings_for(tmp_path, config)
        listed = namespaces(settings, load_credentials(settings, clock=clock))

    assert listed == served_namespaces(cluster)
    assert front.client_names == ["from-plugin"]
    cluster_info = json.loads(plugin_runs(runs)[0]["info"])["spec"]["cluster"]
    assert cluster_info == {"server": front.url, "certificate-authority-data": b64(authority.cert_pem.bytes())}


def test_a_missing_exec_command_is_named_with_its_install_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    config = kubeconfig(tmp_path / "config", {"server": "https://127.0.0.1:6443"},
                        {"exec": {"apiVersion": EXEC_V1, "command": "gke-gcloud-auth-plugin",
                                  "installHint": "Install gke-gcloud-auth-plugin: gcloud components install ..."}})

    with pytest.raises(KubeCredentialsError) as refused:
        load_credentials(settings_for(tmp_path, config))

    message = str(refused.value)
    assert message.startswith(f"cannot load Kubernetes credentials (KUBECONFIG={config}, KUBE_CONTEXT=current): ")
    assert "gke-gcloud-auth-plugin" in message and "not found" in message
    assert "Install gke-gcloud-auth-plugin: gcloud components install ..." in message


def test_a_failing_exec_plugin_is_named_with_its_exit_status_and_what_it_said(tmp_path, clock):
    write_plugin(tmp_path / "plugin")
    plan, runs = tmp_path / "plan.json", tmp_path / "runs.jsonl"
    plan.write_text(json.dumps({"fail": "error: not logged in, run: login-tool login"}))
    config = kubeconfig(tmp_path / "config", {"server": "https://127.0.0.1:6443"},
                        {"exec": {"apiVersion": EXEC_V1, "command": str(tmp_path / "plugin"),
                                  "env": [{"name": "PLAN", "value": str(plan)}, {"name": "RUNS", "value": str(runs)}]}})

    with pytest.raises(KubeCredentialsError) as refused:
        load_credentials(settings_for(tmp_path, config), clock=clock)

    assert "exited with status 3" in str(refused.value)
    assert "error: not logged in, run: login-tool login" in str(refused.value)


# --- KUBECONFIG lists and relative paths --------------------------------------------------------------------


def test_a_kubeconfig_list_is_merged_as_kubectl_merges_it(tmp_path, cluster):
    """The first file to set current-context wins, and so does the first to define a name."""
    first = tmp_path / "first"
    first.write_text(json.dumps({"current-context": "sim",
                                 "users": [{"name": "sim", "user": {"token": cluster.token}}]}))
    second = tmp_path / "second"
    second.write_text(json.dumps({
        "current-context": "elsewhere",
        "clusters": [{"name": "sim", "cluster": {"server": cluster.kube_url}},
                     {"name": "nowhere", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "sim", "user": {"token": "wrong-" + "w" * 20}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim"}},
                     {"name": "elsewhere", "context": {"cluster": "nowhere", "user": "sim"}}]}))
    settings = settings_for(tmp_path, f"{tmp_path / 'absent'}{os.pathsep}{first}{os.pathsep}{second}")

    assert namespaces(settings, load_credentials(settings)) == served_namespaces(cluster)
    assert settings.cluster_name == "sim"


def test_relative_paths_are_read_from_the_folder_of_the_file_that_names_them(
        tmp_path, cluster, authority, client_authority):
    leaf = client_authority.issue_cert("monitor@example.com", common_name="relative")
    clusters, users = tmp_path / "clusters", tmp_path / "users"
    clusters.mkdir()
    authority.cert_pem.write_to_path(str(clusters / "ca.pem"))
    (users / "certs").mkdir(parents=True)
    leaf.cert_chain_pems[0].write_to_path(str(users / "certs" / "client.pem"))
    leaf.private_key_pem.write_to_path(str(users / "certs" / "client-key.pem"))
    with tls_front(cluster.kube_url, authority.issue_cert("127.0.0.1"), client_ca=client_authority) as front:
        (clusters / "config").write_text(json.dumps({
            "current-context": "sim", "clusters": [{"name": "sim", "cluster": {
                "server": front.url, "certificate-authority": "ca.pem"}}],
            "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "me"}}]}))
        (users / "config").write_text(json.dumps({"users": [{"name": "me", "user": {
            "token": cluster.token, "client-certificate": "certs/client.pem", "client-key": "certs/client-key.pem"}}]}))
        settings = settings_for(tmp_path, f"{clusters / 'config'}{os.pathsep}{users / 'config'}")
        listed = namespaces(settings, load_credentials(settings))

    assert listed == served_namespaces(cluster)
    assert front.client_names == ["relative"]


# --- proxy-url and tls-server-name ---------------------------------------------------------------------------


def test_proxy_url_sends_the_requests_through_that_proxy(tmp_path, cluster, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # the kubeconfig's proxy is used all the same, as by kubectl
    with forward_proxy() as proxy:
        config = kubeconfig(tmp_path / "config", {"server": cluster.kube_url, "proxy-url": proxy.url},
                            {"token": cluster.token})
        settings = settings_for(tmp_path, config)
        listed = namespaces(settings, load_credentials(settings))

    assert listed == served_namespaces(cluster)
    assert proxy.targets == [cluster.kube_url + "/api/v1/namespaces"]


def test_tls_server_name_is_the_name_the_certificate_is_checked_against(tmp_path, cluster, authority):
    with tls_front(cluster.kube_url, authority.issue_cert("kube.internal")) as front:
        cluster_entry = {"server": front.url, "certificate-authority-data": b64(authority.cert_pem.bytes())}
        named = kubeconfig(tmp_path / "named", {**cluster_entry, "tls-server-name": "kube.internal"},
                           {"token": cluster.token})
        unnamed = kubeconfig(tmp_path / "unnamed", cluster_entry, {"token": cluster.token})
        settings = settings_for(tmp_path, named)
        listed = namespaces(settings, load_credentials(settings))
        plain = settings_for(tmp_path, unnamed)
        with pytest.raises(KubeError) as refused:
            namespaces(plain, load_credentials(plain))

    assert listed == served_namespaces(cluster)
    assert "certificate" in str(refused.value)


# --- in-cluster ---------------------------------------------------------------------------------------------


def service_account(folder: Path, token: str | None, ca: bytes | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if token is not None:
        (folder / "token").write_text(token)
    if ca is not None:
        (folder / "ca.crt").write_bytes(ca)
    return folder


def in_cluster_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str, port: str):
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    settings = make_settings(tmp_path, None, kubeconfig=None, kube_max_retries=0)
    assert settings.in_cluster
    return settings


def test_in_cluster_the_service_account_token_is_used_and_read_again_after_rotation(
        tmp_path, cluster, clock, authority, monkeypatch):
    with tls_front(cluster.kube_url, authority.issue_cert("127.0.0.1")) as front:
        folder = service_account(tmp_path / "sa", cluster.token, authority.cert_pem.bytes())
        settings = in_cluster_settings(tmp_path, monkeypatch, "127.0.0.1", front.url.rsplit(":", 1)[1])
        credentials = load_credentials(settings, clock=clock, service_account_dir=folder)
        before = namespaces(settings, credentials)
        first_token, cluster.kube.token = cluster.token, "bound-token-" + "b" * 30
        (folder / "token").write_text(cluster.kube.token)  # the kubelet rewrote the projected token
        clock.advance(61)
        after = namespaces(settings, credentials)

    assert credentials.host == front.url
    assert before == after == served_namespaces(cluster)
    assert front.authorizations == [f"Bearer {first_token}", f"Bearer {cluster.kube.token}"]


def test_in_cluster_an_ipv6_service_host_is_bracketed(tmp_path, authority, monkeypatch):
    folder = service_account(tmp_path / "sa", SECRET_TOKEN, authority.cert_pem.bytes())
    settings = in_cluster_settings(tmp_path, monkeypatch, "fd00:10:96::1", "443")

    credentials = load_credentials(settings, service_account_dir=folder)

    assert credentials.host == "https://[fd00:10:96::1]:443"
    assert credentials.verify == str(folder / "ca.crt")
    assert credentials.authorization() == f"Bearer {SECRET_TOKEN}"


@pytest.mark.parametrize(("token", "ca", "named"), [
    (None, True, "token does not exist"),
    ("", True, "token is empty"),
    (SECRET_TOKEN, False, "ca.crt (the cluster's CA) does not exist"),
])
def test_in_cluster_a_missing_token_or_ca_is_named(tmp_path, monkeypatch, authority, token, ca, named):
    folder = service_account(tmp_path / "sa", token, authority.cert_pem.bytes() if ca else None)
    settings = in_cluster_settings(tmp_path, monkeypatch, "10.96.0.1", "443")

    with pytest.raises(KubeCredentialsError) as refused:
        load_credentials(settings, service_account_dir=folder)

    assert str(refused.value).startswith("cannot load Kubernetes credentials (in-cluster service account")
    assert str(folder / named) in str(refused.value) and SECRET_TOKEN not in str(refused.value)


# --- kubeconfigs that cannot be used -------------------------------------------------------------------------


SERVER = {"server": "https://127.0.0.1:6443"}
TOKEN_USER = {"token": SECRET_TOKEN}


def _missing(path: Path) -> Path:
    return path.parent / "no-such-kubeconfig"


def _context_without(field: str):
    def write(path: Path) -> Path:
        kubeconfig(path, SERVER, TOKEN_USER)
        config = json.loads(path.read_text())
        del config["contexts"][0]["context"][field]
        path.write_text(json.dumps(config))
        return path
    return write


def _broken_yaml(path: Path) -> Path:
    path.write_text(f"users:\n- name: x\n  user: {{token: {SECRET_TOKEN}\n")  # the mapping is never closed
    return path


def _user(user: dict[str, Any], cluster: dict[str, Any] = SERVER):
    return lambda path: kubeconfig(path, cluster, {**TOKEN_USER, **user})


@pytest.mark.parametrize(("write", "context", "named"), [
    (_missing, None, ("no-such-kubeconfig does not exist",)),
    (lambda path: kubeconfig(path, SERVER, TOKEN_USER), "staging", ("context 'staging' is not in",)),
    (_context_without("cluster"), None, ("context 'test' in", "names no cluster")),
    (_context_without("user"), None, ("context 'test' in", "names no user")),
    (lambda path: kubeconfig(path, SERVER, None), None, ("user 'test' (of context 'test') is not in",)),
    (lambda path: kubeconfig(path, {}, TOKEN_USER), None, ("cluster 'test' in", "server is not set")),
    (_user({"client-certificate-data": "LS0t", "client-key-data": "not base64!"}), None,
     ("user 'test' in", "client-key-data is not valid base64")),
    (lambda path: kubeconfig(path, {**SERVER, "certificate-authority-data": "%%%"}, TOKEN_USER), None,
     ("cluster 'test' in", "certificate-authority-data is not valid base64")),
    (lambda path: kubeconfig(path, SERVER, {"auth-provider": {"name": "gcp", "config": {
        "access-token": SECRET_TOKEN}}}), None, ("user 'test' in", "auth-provider 'gcp'")),
    (lambda path: kubeconfig(path, SERVER, {"auth-provider": {"name": "oidc", "config": {
        "id-token": SECRET_TOKEN}}}), None, ("auth-provider 'oidc'", "use an exec plugin")),
    (lambda path: kubeconfig(path, SERVER, {"exec": {"apiVersion": "client.authentication.k8s.io/v1alpha1",
                                                     "command": "x"}}), None,
     ("user 'test' in", "exec apiVersion client.authentication.k8s.io/v1alpha1")),
    (lambda path: kubeconfig(path, {**SERVER, "proxy-url": "socks5://127.0.0.1:1080"}, TOKEN_USER), None,
     ("cluster 'test' in", "proxy-url", "socks5")),
    (_broken_yaml, None, ("config is not valid YAML (line",)),
], ids=["missing file", "unknown context", "context without cluster", "context without user", "user not defined",
        "cluster without server", "bad base64 key", "bad base64 CA", "auth-provider gcp", "auth-provider oidc",
        "exec v1alpha1", "socks proxy", "broken YAML"])
def test_a_kubeconfig_that_cannot_be_used_is_named_without_its_secrets(tmp_path, write, context, named):
    config = write(tmp_path / "config")
    settings = settings_for(tmp_path, config, kube_context=context)

    with pytest.raises(KubeCredentialsError) as refused:
        load_credentials(settings)

    message = str(refused.value)
    assert message.startswith(f"cannot load Kubernetes credentials (KUBECONFIG={config}, "
                              f"KUBE_CONTEXT={context or 'current'}): ")
    assert all(fragment in message for fragment in named), message
    assert SECRET_TOKEN not in message


def test_an_auth_provider_refusal_says_which_exec_plugin_replaces_it(tmp_path):
    config = kubeconfig(tmp_path / "config", SERVER, {"auth-provider": {"name": "gcp"}})

    with pytest.raises(KubeCredentialsError) as refused:
        load_credentials(settings_for(tmp_path, config))

    assert "gke-gcloud-auth-plugin" in str(refused.value) and "kubelogin" in str(refused.value)
