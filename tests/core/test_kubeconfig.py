"""Kubeconfig files read and merged as kubectl does, for the default cluster name (the credentials' side is in
tests/sources/test_kube_credentials.py)."""

from __future__ import annotations

import os
from pathlib import Path

from shared.core.kubeconfig_cluster import kubeconfig_cluster_name


def test_the_cluster_name_follows_kubectls_merge_of_a_kubeconfig_list(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("current-context: prod\ncontexts:\n- name: prod\n  context: {cluster: prod-eu-1, user: me}\n")
    second.write_text("current-context: dev\ncontexts:\n- name: prod\n  context: {cluster: shadowed, user: me}\n"
                      "- name: dev\n  context: {cluster: kind-dev, user: me}\n")
    listed = Path(f"{tmp_path / 'absent'}{os.pathsep}{first}{os.pathsep}{second}")

    assert kubeconfig_cluster_name(listed, None) == "prod-eu-1"  # the first current-context and definition win
    assert kubeconfig_cluster_name(listed, "dev") == "kind-dev"
    assert kubeconfig_cluster_name(listed, "staging") is None


def test_an_unreadable_file_of_a_list_is_left_out_of_the_cluster_name(tmp_path):
    broken, good = tmp_path / "broken", tmp_path / "good"
    broken.write_text("current-context: [unclosed\n")
    good.write_text("current-context: prod\ncontexts:\n- name: prod\n  context: {cluster: prod-eu-1, user: me}\n")

    assert kubeconfig_cluster_name(Path(f"{broken}{os.pathsep}{good}"), None) == "prod-eu-1"
    assert kubeconfig_cluster_name(broken, None) is None
