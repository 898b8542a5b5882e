"""Fixtures of the clusters tests: a cluster, its agent's key and an agent client."""

import pytest
from rest_framework.test import APIClient

from tests.factories import ApiKeyFactory, ClusterFactory


@pytest.fixture
def cluster(db):
    return ClusterFactory(name="hpc1")


@pytest.fixture
def agent_key(cluster):
    """A key of ``cluster``; its text is ``agent_key.plaintext``."""
    return ApiKeyFactory(cluster=cluster)


def client_with_key(text: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {text}")
    return client


@pytest.fixture
def agent_client(agent_key):
    """An API client signed with ``agent_key``."""
    return client_with_key(agent_key.plaintext)


PAYLOAD = {
    "agent_version": "0.1.0", "cpu_percent": 12.5, "memory_percent": 40.1,
    "memory_used": 1234567, "memory_total": 9999999, "disk_free": 123456789,
    "load": [0.5, 0.4, 0.3], "running": [12, 15],
    "engines": ["siesta", "pyscf", "command"], "analyses": ["energy_summary", "scf_convergence"],
}


@pytest.fixture
def payload():
    """The heartbeat of docs/agent-api.md."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in PAYLOAD.items()}
