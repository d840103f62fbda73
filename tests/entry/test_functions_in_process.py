"""Each function's settings belong to its app: two apps in one process, each with its own settings."""

from __future__ import annotations

import functions_framework
import pytest

from shared.entry.http import use_settings
from tests.conftest import BACKENDS, make_settings
from tests.support.servers import REPO

pytestmark = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


def app_of(name: str):  # type: ignore[no-untyped-def]
    return functions_framework.create_app(name, str(REPO / "functions" / name / "main.py"))


@pytest.mark.sqlite_only("each app's own SQLite file")
def test_two_collect_apps_in_one_process_write_where_their_own_settings_say(tmp_path, cluster):
    first, second = app_of("collect"), app_of("collect")
    use_settings(first, make_settings(tmp_path / "a", cluster))
    use_settings(second, make_settings(tmp_path / "b", cluster, namespaces_include=("shop",)))

    answered = [app.test_client().post("/", json={}) for app in (first, second)]

    assert [a.status_code for a in answered] == [200, 200]
    assert answered[0].json["pods"] > answered[1].json["pods"] > 0, "the second app collected only its namespace"
    assert all((tmp_path / app / "data" / "k8s_metrics.db").exists() for app in ("a", "b"))


@pytest.mark.parametrize("name", ["collect", "backup", "report", "health", "alert_notify"])
def test_bad_settings_are_answered_naming_the_variable_and_the_app_keeps_serving(name, monkeypatch):
    monkeypatch.setenv("COLLECT_INTERVAL_SECONDS", "five minutes")
    client = app_of(name).test_client()
    path = "/health" if name == "health" else "/"

    for _ in range(2):
        answered = client.get(path) if name in ("report", "health") else client.post(path, json={})
        assert answered.status_code == 500
        assert answered.json["error"].startswith(f"{name}: invalid configuration: COLLECT_INTERVAL_SECONDS: ")
