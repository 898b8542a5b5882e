"""The end-to-end tests use the live server, cluster and agent of ``tests/live.py``."""

from tests.live import (  # noqa: F401 - fixtures
    live_admin,
    live_agent,
    live_agent_config,
    live_cluster,
    live_database,
    live_db_access,
    live_dir,
    live_gate,
    live_running,
    live_siestaflow,
    live_token,
    live_user,
    live_water,
)
