"""The demo's local agent: ``manage.py setup_local_agent`` registers cluster ``local`` and
writes the agent's configuration; an agent started from it reports to the live server."""

from __future__ import annotations

import stat
import tomllib

import pytest
from django.core.management import CommandError, call_command
from siestaflow_agent import config as agent_config

from clusters.models import ApiKey, Cluster, hash_key
from tests.live import NO_SIESTA_PATH, LiveAgent, wait_until


@pytest.fixture
def paths(tmp_path):
    return {"config": tmp_path / "agent" / "agent.toml", "work_dir": tmp_path / "agent" / "work"}


def setup_local(paths, admin, **options):
    call_command("setup_local_agent", admin=admin.username, config=paths["config"], work_dir=paths["work_dir"],
                 **options)
    return tomllib.loads(paths["config"].read_text())


def test_it_registers_cluster_local_and_writes_a_private_working_config(db, root, paths, monkeypatch):
    monkeypatch.setenv("PATH", NO_SIESTA_PATH)
    values = setup_local(paths, root, api_url="http://127.0.0.1:8765")

    cluster = Cluster.objects.get(name="local")
    assert cluster.enabled
    key = ApiKey.objects.get(cluster=cluster)
    assert key.key_hash == hash_key(values["api_key"]) and not key.is_revoked and key.created_by == root
    assert stat.S_IMODE(paths["config"].stat().st_mode) == 0o600
    loaded = agent_config.load(paths["config"], environ={})
    assert loaded.api_url == "http://127.0.0.1:8765"
    assert loaded.work_dir == paths["work_dir"].resolve()
    assert loaded.executor == "local"
    assert set(loaded.engines) == {"pyscf"}


def test_it_reuses_the_stored_key_when_run_again(db, root, paths):
    first = setup_local(paths, root)
    second = setup_local(paths, root, api_url="http://127.0.0.1:9000")

    assert second["api_key"] == first["api_key"]
    assert second["api_url"] == "http://127.0.0.1:9000"
    assert ApiKey.objects.filter(cluster__name="local").count() == 1
    assert Cluster.objects.filter(name="local").count() == 1


def test_it_rotates_the_key_when_the_config_file_is_gone(db, root, paths):
    first = setup_local(paths, root)
    paths["config"].unlink()
    second = setup_local(paths, root)

    assert second["api_key"] != first["api_key"]
    old, new = (ApiKey.objects.get(key_hash=hash_key(values["api_key"])) for values in (first, second))
    assert old.is_revoked and not new.is_revoked


def test_it_replaces_a_revoked_key_and_enables_the_cluster_again(db, root, paths):
    from clusters import services

    first = setup_local(paths, root)
    cluster = Cluster.objects.get(name="local")
    services.revoke_key(actor=root, key=cluster.api_keys.get())
    services.set_enabled(actor=root, cluster=cluster, enabled=False)
    second = setup_local(paths, root)

    cluster.refresh_from_db()
    assert cluster.enabled
    assert second["api_key"] != first["api_key"]
    assert ApiKey.objects.active().get(cluster=cluster).key_hash == hash_key(second["api_key"])


def test_it_offers_siesta_when_a_siesta_executable_is_on_the_path(db, root, paths, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "siesta").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "siesta").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")

    values = setup_local(paths, root)

    assert values["engines"]["siesta"] == "siesta"
    assert "tbtrans" not in values["engines"]


def test_it_provisions_an_agent_for_admins_only(db, alice, mod):
    from django.core.exceptions import PermissionDenied

    from clusters import services

    for actor in (alice, mod):
        with pytest.raises(PermissionDenied):
            services.provision_agent(actor=actor, name="local", key_name="local agent")
    assert not Cluster.objects.exists() and not ApiKey.objects.exists()


def test_it_refuses_without_the_admin(db, alice, paths):
    with pytest.raises(CommandError, match="bootstrap_demo"):
        setup_local(paths, alice)
    assert not Cluster.objects.filter(name="local").exists()
    assert not paths["config"].exists()


@pytest.mark.slow
def test_an_agent_started_from_the_written_config_reports_to_the_server(live_siestaflow, live_admin, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv("PATH", NO_SIESTA_PATH)
    paths = {"config": tmp_path / "agent.toml", "work_dir": tmp_path / "work"}
    setup_local(paths, live_admin, name="local-e2e", api_url=live_siestaflow.url)
    agent = LiveAgent(paths["config"], paths["work_dir"], SIESTAFLOW_AGENT_CLAIM_WAIT="1")
    try:
        agent.start()
        cluster = Cluster.objects.get(name="local-e2e")

        def reported():
            cluster.refresh_from_db()
            return cluster.last_heartbeat_at is not None

        wait_until(reported, timeout=30, what="the local agent's first heartbeat")
    finally:
        agent.stop()
    assert cluster.engines == ["pyscf"]  # what the agent offers, not what the command guessed
    assert cluster.is_online
