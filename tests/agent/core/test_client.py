"""The HTTP client against the fake API server: auth, retries, claim, downloads."""

from __future__ import annotations

import hashlib

import pytest
from siestaflow_agent.client import ApiError, AuthError, ChecksumError, Client, TransientError

from .conftest import KEY


def client_for(api, key=KEY, **kwargs) -> Client:
    return Client(api.url, key, timeout=2, backoff=0.01, **kwargs)


def test_it_sends_the_api_key_and_reads_pending_calculations(api):
    api.add_calculation({"id": 1, "engine": "command", "name": "a"})
    api.add_calculation({"id": 2, "engine": "command"}, cluster="theirs")
    assert [c["id"] for c in client_for(api).list_pending()] == [1]


def test_a_wrong_key_is_an_auth_error(api):
    with pytest.raises(AuthError) as error:
        client_for(api, key="wrong").heartbeat({})
    assert error.value.status == 401 and error.value.detail == "Invalid API key."


def test_another_clusters_calculation_is_not_found(api):
    api.add_calculation({"id": 9, "engine": "command"}, cluster="theirs")
    with pytest.raises(ApiError) as error:
        client_for(api).post_event(9, {"seq": 1, "state": "running"})
    assert error.value.status == 404 and not isinstance(error.value, TransientError)


def test_it_retries_a_503_and_succeeds_when_the_server_recovers(api):
    api.mode = "503"
    calls = []

    class Flaky(Client):
        def _delay(self, attempt):
            calls.append(attempt)
            if len(calls) == 2:
                api.mode = None  # the outage ends during the second back-off
            return 0.01

    answer = Flaky(api.url, KEY, timeout=2, retries=3).heartbeat({"running": []})
    assert "settings" in answer and calls == [0, 1]


def test_it_gives_up_after_the_retries_with_a_transient_error(api):
    api.mode = "503"
    with pytest.raises(TransientError) as error:
        client_for(api, retries=2).heartbeat({})
    assert error.value.status == 503
    assert [status for _, _, status in api.requests] == [503, 503, 503]


def test_a_refused_connection_is_transient(api):
    api.stop()
    with pytest.raises(TransientError):
        client_for(api, retries=1).heartbeat({})


def test_the_backoff_grows_and_is_jittered():
    client = Client("http://h", KEY, backoff=1.0)
    delays = [client._delay(3) for _ in range(200)]
    assert all(0 <= d <= 8 for d in delays) and len(set(delays)) > 150
    assert max(client._delay(0) for _ in range(200)) <= 1


def test_claim_is_never_retried(api):
    api.mode = "503"
    with pytest.raises(TransientError):
        client_for(api, retries=3).claim(1)
    assert len(api.requests) == 1


def test_claim_takes_queued_calculations_once(api):
    api.add_calculation({"id": 1, "engine": "command"})
    client = client_for(api)
    assert [c["id"] for c in client.claim(2)] == [1]
    assert client.claim(2) == []
    assert api.state_of(1) == "claimed"


def test_download_checks_the_announced_checksum(api, tmp_path):
    api.add_calculation({"id": 1, "engine": "siesta"})
    entry = api.add_file(1, "O.psf", b"pseudo")
    dest = tmp_path / "O.psf"
    assert client_for(api).download_file(entry["url"], dest, entry["sha256"]) == hashlib.sha256(b"pseudo").hexdigest()
    assert dest.read_bytes() == b"pseudo"
    with pytest.raises(ChecksumError):
        client_for(api).download_file(entry["url"], tmp_path / "bad.psf", "0" * 64)
    assert not (tmp_path / "bad.psf").exists() and not (tmp_path / "bad.psf.part").exists()


def test_download_refuses_another_host(api, tmp_path):
    with pytest.raises(ApiError, match="refusing"):
        client_for(api).download_file("http://evil.example.org/x", tmp_path / "x")
    assert api.requests == []


@pytest.mark.parametrize("base", ["http://h", "http://h/", "http://h/api/agent/v1", "http://h/api/agent/v1/"])
def test_the_api_prefix_is_added_once(base):
    assert Client(base, KEY).base == "http://h/api/agent/v1/"
