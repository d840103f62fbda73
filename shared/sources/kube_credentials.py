"""Kubernetes credentials as kubectl loads them: the pod's service account, or a kubeconfig context.

What KubeClient needs: the API server's URL, how to verify its certificate, a client certificate,
a proxy and TLS server name, and per request the Authorization header. Written here rather than
taken from the official client, which every process that talks to Kubernetes imported for this one
job (on top of what the monitor imports anyway: 160 modules, 3.5-7.5 MB of RSS and 0.05-0.1 s when
it was replaced). Kubeconfig files are read and merged by shared.core.kubeconfig.

Credentials stay fresh while a process runs, as kubectl keeps them: a token file (the service
account's bound token, a kubeconfig tokenFile) is read again every minute, and an exec plugin runs
again once the credential it gave expires. Certificates and keys given inline (the *-data fields,
an exec plugin's answer) become files, since requests takes paths, in a private folder removed at
exit. Errors name the kubeconfig file, the context and the field, never a secret's value.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import logging
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.core.kubeconfig import Entry, Kubeconfig, KubeconfigError, kubeconfig_files, read_kubeconfig
from shared.core.private_files import PRIVATE_FILES

if TYPE_CHECKING:
    from shared.core.settings import Settings

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60.0
"""How often a token file is read again (the official clients' period): a rotated token is sent within it."""
EXEC_EXPIRY_MARGIN_SECONDS = 60.0
"""An exec credential this close to its expirationTimestamp is renewed first: the server must still accept it."""
EXEC_TIMEOUT_SECONDS = 60.0
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
_EXEC_EXTENSION = "client.authentication.k8s.io/exec"  # a cluster's extension passed to its plugins as `config`
_REMOVED_AUTH_PROVIDERS = ("use an exec plugin instead (gke-gcloud-auth-plugin on GKE; kubelogin on Azure "
                           "and for OIDC), as kubectl does since Kubernetes 1.26 removed auth-provider")


class KubeCredentialsError(Exception):
    """The credentials could not be loaded (kubeconfig, context or service account): nothing was asked yet."""


class _Refused(Exception):
    """What is wrong, in words naming the file and field; load_credentials adds where it looked."""


@dataclass(frozen=True)
class KubeCredentials:
    """Where the API server is and how to authenticate, loaded once per collection (or health check)."""

    host: str
    verify: bool | str  # a CA file, True for the system's CAs, False not to verify
    cert: str | tuple[str, str] | None = None  # a client certificate file, or certificate and key files
    proxy: str | None = None  # the kubeconfig's proxy-url
    tls_server_name: str | None = None  # the name the server's certificate is checked against, if not the host's
    authorize: Callable[[], str | None] = field(default=lambda: None, repr=False)

    def authorization(self) -> str | None:
        """The `Authorization` header value, fresh for each request (a rotated token is picked up); None without
        one. Raises KubeCredentialsError when an expired exec credential cannot be renewed."""
        return self.authorize()


def load_credentials(settings: Settings, clock: Callable[[], float] = time.time,
                     service_account_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeCredentials:
    """In-cluster service account, else KUBECONFIG / KUBE_CONTEXT (or ~/.kube/config); `clock` times the
    re-reading of token files and the expiry of exec credentials."""
    if settings.in_cluster:
        where = f"in-cluster service account, {service_account_dir}"
    else:
        where = (f"KUBECONFIG={settings.kubeconfig or '~/.kube/config'}, "
                 f"KUBE_CONTEXT={settings.kube_context or 'current'}")
    try:
        if settings.in_cluster:
            return _in_cluster(service_account_dir, clock)
        return _from_kubeconfig(settings.kubeconfig, settings.kube_context, clock, where)
    except (_Refused, KubeconfigError) as exc:
        raise KubeCredentialsError(f"cannot load Kubernetes credentials ({where}): {exc}") from None


# --- in-cluster ----------------------------------------------------------------------------------------------


def _in_cluster(folder: Path, clock: Callable[[], float]) -> KubeCredentials:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise _Refused("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set")
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    ca = folder / "ca.crt"
    _check_ca(ca, f"{ca} (the cluster's CA)")
    token = _TokenFile(folder / "token", clock, str(folder / "token"))
    return KubeCredentials(f"https://{host}:{port}", str(ca), authorize=token)


# --- kubeconfig ----------------------------------------------------------------------------------------------


def _from_kubeconfig(path: Path | None, context_name: str | None, clock: Callable[[], float],
                     where: str) -> KubeCredentials:
    config = read_kubeconfig(path)
    if not config.files:
        named = kubeconfig_files(path)
        raise _Refused(f"{named[0]} does not exist" if len(named) == 1 else
                       f"none of {', '.join(map(str, named))} exists")
    cluster, user = _chosen(config, context_name)
    server = cluster.text("server")
    if server is None:
        raise _Refused(f"{cluster}: server is not set")
    if "auth-provider" in user.fields:
        provider = user.fields["auth-provider"]
        name = provider.get("name") if isinstance(provider, dict) else None
        raise _Refused(f"{user}: auth-provider '{name}' is not supported: {_REMOVED_AUTH_PROVIDERS}")
    tls = server.startswith("https://")
    verify = _verify(cluster) if tls else True
    plugin = None
    if "exec" in user.fields and user.text("token") is None and user.text("tokenFile") is None:
        plugin = _ExecPlugin(user, cluster, verify if isinstance(verify, str) else None, clock, where)
    cert = _client_certificate(user) if tls else None
    if tls and cert is None and plugin is not None:
        cert = plugin.certificate
    return KubeCredentials(server.rstrip("/"), verify, cert, _proxy(cluster), cluster.text("tls-server-name"),
                           plugin.authorization if plugin else _static_authorization(user, clock))


def _chosen(config: Kubeconfig, context_name: str | None) -> tuple[Entry, Entry]:
    """The cluster and user of the context (KUBE_CONTEXT, else current-context)."""
    files = ", ".join(map(str, config.files))
    name = context_name or config.current_context
    if name is None:
        raise _Refused(f"no current-context in {files}: set KUBE_CONTEXT")
    context = config.contexts.get(name)
    if context is None:
        raise _Refused(f"context '{name}' is not in {files}")
    cluster_name, user_name = context.text("cluster"), context.text("user")
    if cluster_name is None or user_name is None:
        raise _Refused(f"{context} names no {'cluster' if cluster_name is None else 'user'}")
    if cluster_name not in config.clusters:
        raise _Refused(f"cluster '{cluster_name}' (of context '{name}') is not in {files}")
    if user_name not in config.users:
        raise _Refused(f"user '{user_name}' (of context '{name}') is not in {files}")
    return config.clusters[cluster_name], config.users[user_name]


def _verify(cluster: Entry) -> bool | str:
    """The CA file to verify the server with, True for the system's CAs, False with insecure-skip-tls-verify."""
    ca = _file_or_data(cluster, "certificate-authority")
    if cluster.fields.get("insecure-skip-tls-verify") is True:
        if ca is not None:
            raise _Refused(f"{cluster}: insecure-skip-tls-verify and a certificate-authority are both set "
                           f"(kubectl refuses them too): keep one")
        return False
    return ca if ca is not None else True


def _client_certificate(user: Entry) -> tuple[str, str] | None:
    cert, key = _file_or_data(user, "client-certificate"), _file_or_data(user, "client-key")
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise _Refused(f"{user}: client-certificate and client-key go together: set both")
    _check_pair(cert, key, f"{user}: client-certificate and client-key")
    return cert, key


def _proxy(cluster: Entry) -> str | None:
    url = cluster.text("proxy-url")
    scheme = urlsplit(url).scheme if url else None
    if scheme not in (None, "http", "https"):
        raise _Refused(f"{cluster}: proxy-url is a {scheme} proxy: only http:// and https:// proxies are supported")
    return url


def _static_authorization(user: Entry, clock: Callable[[], float]) -> Callable[[], str | None]:
    """tokenFile (re-read; `token` stands in while it cannot be read, as in client-go), else token, else basic auth."""
    token, token_file = user.text("token"), user.text("tokenFile")
    if token_file is not None:
        return _TokenFile(user.path(token_file), clock, f"{user}: tokenFile {user.path(token_file)}", token)
    if token is not None:
        header = f"Bearer {token}"
        return lambda: header
    username, password = user.text("username"), user.text("password")
    if username is None and password is None:
        return lambda: None
    if username is None or password is None:
        raise _Refused(f"{user}: basic auth needs both username and password")
    basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    return lambda: basic


def _file_or_data(entry: Entry, key: str) -> str | None:
    """The file `key` names, or a private file holding `key`-data (which wins, as in kubectl); None without."""
    data = entry.text(f"{key}-data")
    if data is not None:
        try:
            decoded = base64.b64decode("".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _Refused(f"{entry}: {key}-data is not valid base64") from None
        path, named = Path(PRIVATE_FILES.holding(decoded)), f"{entry}: {key}-data"
    else:
        file = entry.text(key)
        if file is None:
            return None
        path = entry.path(file)
        named = f"{entry}: {key} {path}"
        if not path.is_file():
            raise _Refused(f"{named} does not exist")
    if key == "certificate-authority":
        _check_ca(path, named)
    return str(path)


def _check_ca(path: Path, named: str) -> None:
    if not path.is_file():
        raise _Refused(f"{named} does not exist")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError):
        raise _Refused(f"{named} is not a PEM certificate") from None


def _check_pair(cert: str, key: str, named: str) -> None:
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key)
    except (ssl.SSLError, OSError):
        raise _Refused(f"{named} are not a PEM certificate and its key") from None


# --- token files ---------------------------------------------------------------------------------------------


class _TokenFile:
    """A bearer token kept in a file, read again every TOKEN_REREAD_SECONDS: the kubelet rewrites a pod's bound
    service-account token long before it expires, and a kubeconfig tokenFile may be rotated the same way. A
    re-read that fails keeps the last token, as client-go does."""

    def __init__(self, path: Path, clock: Callable[[], float], named: str, fallback: str | None = None):
        self._path, self._clock, self._named = path, clock, named
        self._lock = threading.Lock()
        try:
            self._token = self._read()
        except _Refused:
            if fallback is None:
                raise
            self._token = fallback
        self._read_at = clock()

    def __call__(self) -> str:
        with self._lock:
            if self._clock() - self._read_at >= TOKEN_REREAD_SECONDS:
                self._read_at = self._clock()
                try:
                    self._token = self._read()
                except _Refused as exc:
                    log.warning("kept the last Kubernetes token: %s", exc)
            return f"Bearer {self._token}"

    def _read(self) -> str:
        try:
            token = self._path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise _Refused(f"{self._named} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _Refused(f"{self._named} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
        if not token:
            raise _Refused(f"{self._named} is empty")
        return token


# --- exec plugins --------------------------------------------------------------------------------------------


class _ExecPlugin:
    """A kubeconfig user's exec plugin, run as kubectl runs it (client.authentication.k8s.io/v1 or v1beta1).

    The command is looked up on PATH, or, when it names a folder, relative to the kubeconfig's; it
    gets the kubeconfig's `env` on top of ours and KUBERNETES_EXEC_INFO (never interactive: no
    terminal, no stdin; the cluster when `provideClusterInfo`). Its credential (a token and/or a
    client certificate) is kept until its expirationTimestamp, then it runs again. A renewed
    certificate replaces the files of the old one, which new connections read.
    """

    def __init__(self, user: Entry, cluster: Entry, ca_file: str | None, clock: Callable[[], float], where: str):
        spec = user.fields["exec"]
        if not isinstance(spec, dict):
            raise _Refused(f"{user}: exec must be a mapping")
        exec_entry = Entry("user", user.name, spec, user.source)
        self._api = exec_entry.text("apiVersion")
        if self._api not in EXEC_API_VERSIONS:
            raise _Refused(f"{user}: exec apiVersion {self._api} is not supported: use {EXEC_API_VERSIONS[0]} "
                           f"(or {EXEC_API_VERSIONS[1]})")
        if spec.get("interactiveMode") == "Always":
            raise _Refused(f"{user}: the exec plugin needs a terminal (interactiveMode: Always), which the monitor "
                           f"never has")
        command = exec_entry.text("command")
        if command is None:
            raise _Refused(f"{user}: exec command is not set")
        self._named = f"{user}: exec command '{command}'"
        args = spec.get("args") or []
        if not isinstance(args, list):
            raise _Refused(f"{user}: exec args must be a list")
        self._argv = [_command_path(command, user, exec_entry.text("installHint")), *map(str, args)]
        info: dict[str, Any] = {"apiVersion": self._api, "kind": "ExecCredential", "spec": {"interactive": False}}
        if spec.get("provideClusterInfo") is True:
            info["spec"]["cluster"] = _cluster_info(cluster, ca_file)
        self._env = {**os.environ, **_plugin_env(user, spec.get("env")), "KUBERNETES_EXEC_INFO": json.dumps(info)}
        identity = json.dumps([self._argv, spec.get("env"), cluster.fields.get("server")]).encode()
        self._files_name = "exec-" + hashlib.sha256(identity).hexdigest()[:16]
        self._clock, self._where = clock, where
        self._lock = threading.Lock()
        self._token: str | None = None
        self.certificate: tuple[str, str] | None = None
        self._expires_at: float | None = None
        self._run()

    def authorization(self) -> str | None:
        with self._lock:
            if self._expires_at is not None and self._clock() >= self._expires_at - EXEC_EXPIRY_MARGIN_SECONDS:
                try:
                    self._run()
                except (_Refused, KubeconfigError) as exc:
                    raise KubeCredentialsError(f"cannot load Kubernetes credentials ({self._where}): {exc}") from None
            return f"Bearer {self._token}" if self._token else None

    def _run(self) -> None:
        try:
            done = subprocess.run(self._argv, env=self._env, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=EXEC_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise _Refused(f"{self._named} did not answer within {EXEC_TIMEOUT_SECONDS:g}s") from None
        except OSError as exc:
            raise _Refused(f"{self._named} could not be run: {exc.strerror or exc}") from None
        if done.returncode != 0:
            said = " ".join(done.stderr.decode("utf-8", "replace").split())[-300:]
            raise _Refused(f"{self._named} exited with status {done.returncode}" + (f": {said}" if said else ""))
        status = self._status(done.stdout)
        token, cert, key = status.get("token"), status.get("clientCertificateData"), status.get("clientKeyData")
        if (cert is None) != (key is None):
            raise _Refused(f"{self._named} answered clientCertificateData without clientKeyData, or the reverse")
        if not token and cert is None:
            raise _Refused(f"{self._named} answered neither a token nor a client certificate")
        self._token = str(token) if token else None
        if cert is not None:
            files = (PRIVATE_FILES.replaced(f"{self._files_name}-cert.pem", str(cert).encode()),
                     PRIVATE_FILES.replaced(f"{self._files_name}-key.pem", str(key).encode()))
            _check_pair(*files, f"{self._named}: clientCertificateData and clientKeyData")
            self.certificate = files
        self._expires_at = self._expiry(status.get("expirationTimestamp"))
        log.debug("%s gave a credential valid until %s", self._named,
                  status.get("expirationTimestamp") or "the process ends")

    def _status(self, stdout: bytes) -> dict[str, Any]:
        """The answer's status; its words are never quoted (they hold the credential)."""
        try:
            answer = json.loads(stdout)
        except ValueError:
            raise _Refused(f"{self._named} did not answer with JSON (an ExecCredential)") from None
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise _Refused(f"{self._named} did not answer with an ExecCredential")
        if answer.get("apiVersion") != self._api:
            raise _Refused(f"{self._named} answered apiVersion {answer.get('apiVersion')}, not {self._api}")
        status = answer.get("status")
        if not isinstance(status, dict):
            raise _Refused(f"{self._named} answered an ExecCredential without status")
        return status

    def _expiry(self, stamp: object) -> float | None:
        if stamp is None:
            return None
        try:
            moment = datetime.datetime.fromisoformat(str(stamp))
        except ValueError:
            raise _Refused(f"{self._named} answered expirationTimestamp {stamp!r}, not an RFC 3339 time") from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)).timestamp()


def _command_path(command: str, user: Entry, install_hint: str | None) -> str:
    """The plugin's executable: looked up on PATH, or relative to the kubeconfig's folder when it names a folder."""
    if os.sep in command:
        path = user.path(command)
        found, looked = (str(path) if path.is_file() else None), f" at {path}"
    else:
        found, looked = shutil.which(command), " on PATH"
    if found is None:
        raise _Refused(f"{user}: exec command '{command}' was not found{looked}" +
                       (f": {install_hint}" if install_hint else ""))
    return found


def _plugin_env(user: Entry, env: object) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, list) or not all(isinstance(item, dict) and isinstance(item.get("name"), str)
                                            for item in env):
        raise _Refused(f"{user}: exec env must be a list of name and value")
    return {item["name"]: str(item.get("value", "")) for item in env}


def _cluster_info(cluster: Entry, ca_file: str | None) -> dict[str, Any]:
    """The cluster as an exec plugin is told it (ExecCredential spec.cluster): what it needs to reach the server."""
    fields = cluster.fields
    info: dict[str, Any] = {"server": fields.get("server")}
    for key in ("tls-server-name", "insecure-skip-tls-verify", "proxy-url", "disable-compression"):
        if fields.get(key):
            info[key] = fields[key]
    if ca_file is not None:
        info["certificate-authority-data"] = base64.b64encode(Path(ca_file).read_bytes()).decode()
    for extension in fields.get("extensions") or ():
        if isinstance(extension, dict) and extension.get("name") == _EXEC_EXTENSION:
            info["config"] = extension.get("extension")
    return info
