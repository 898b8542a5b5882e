"""``siestaflow-agent check`` against the live server: 0 fine, 1 problems, 2 bad configuration."""

from __future__ import annotations

import os
import subprocess

from clusters import services
from tests.live import AGENT, write_agent_config


def check(config) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIESTAFLOW_AGENT_")}
    return subprocess.run([str(AGENT), "check", "--config", str(config)], capture_output=True, text=True,
                          timeout=60, env=env)


def test_check_passes_with_a_good_key(live_siestaflow, live_cluster, tmp_path):
    config = write_agent_config(tmp_path / "agent.toml", api_url=live_siestaflow.url,
                                api_key=live_cluster.key_text, work_dir=str(tmp_path / "work"))
    done = check(config)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: API reachable with the key" in done.stdout
    assert "all checks passed" in done.stdout


def test_check_reports_a_revoked_key(live_siestaflow, live_cluster, live_admin, tmp_path):
    key, text = services.create_key(actor=live_admin, cluster=live_cluster.cluster, name="to revoke")
    services.revoke_key(actor=live_admin, key=key)
    config = write_agent_config(tmp_path / "agent.toml", api_url=live_siestaflow.url, api_key=text,
                                work_dir=str(tmp_path / "work"))
    done = check(config)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "problem: api_key rejected by the server (401)" in done.stdout


def test_check_names_the_bad_key_of_a_bad_configuration(live_siestaflow, tmp_path):
    config = write_agent_config(tmp_path / "agent.toml", api_url="ftp://example.org", api_key="k",
                                work_dir=str(tmp_path / "work"))
    done = check(config)

    assert done.returncode == 2
    assert "configuration error" in done.stderr and "api_url" in done.stderr
