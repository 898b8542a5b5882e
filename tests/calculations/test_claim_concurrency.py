"""50 concurrent claimers over real HTTP connections never get the same calculation twice
(on PostgreSQL through FOR UPDATE SKIP LOCKED; on SQLite through its write lock)."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from calculations.models import Calculation
from calculations.states import State
from clusters import services as cluster_services
from tests.factories import ClusterFactory, UserFactory

CLAIMERS = 50
CALCULATIONS = 300


@pytest.mark.django_db(transaction=True)
def test_it_never_hands_a_calculation_to_two_claimers(live_server):
    cluster = ClusterFactory(name="busy", max_concurrent=CALCULATIONS, engines=["command"])
    admin = UserFactory(username="boss", role="admin")
    _key, plaintext = cluster_services.create_key(actor=admin, cluster=cluster, name="agent")
    Calculation.objects.bulk_create([
        Calculation(name=f"c{n}", owner=admin, cluster=cluster, engine="command", config={}, inputs_hash=f"{n:064d}",
                    priority=n % 7) for n in range(CALCULATIONS)])
    url = f"{live_server.url}/api/agent/v1/claim/"

    def claimer(_n):
        got = []
        with requests.Session() as session:
            session.headers["Authorization"] = f"Api-Key {plaintext}"
            while True:
                answer = session.post(url, json={"max": 3}, timeout=60)
                assert answer.status_code == 200, answer.text
                batch = [c["id"] for c in answer.json()["calculations"]]
                if not batch:
                    return got
                got.extend(batch)

    with ThreadPoolExecutor(max_workers=CLAIMERS) as pool:
        handed_out = [cid for got in pool.map(claimer, range(CLAIMERS)) for cid in got]

    twice = [cid for cid, count in Counter(handed_out).items() if count > 1]
    assert twice == []
    assert len(handed_out) == CALCULATIONS
    assert Calculation.objects.filter(state=State.CLAIMED).count() == CALCULATIONS


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_exceed_the_clusters_cap(live_server):
    cap = 7
    cluster = ClusterFactory(name="capped", max_concurrent=cap, engines=["command"])
    admin = UserFactory(username="boss", role="admin")
    _key, plaintext = cluster_services.create_key(actor=admin, cluster=cluster, name="agent")
    Calculation.objects.bulk_create([
        Calculation(name=f"c{n}", owner=admin, cluster=cluster, engine="command", config={}, inputs_hash=f"{n:064d}")
        for n in range(60)])
    url = f"{live_server.url}/api/agent/v1/claim/"

    def claimer(_n):
        with requests.Session() as session:
            session.headers["Authorization"] = f"Api-Key {plaintext}"
            got = []
            for _ in range(3):  # again after an empty answer: the room is gone, not the work
                answer = session.post(url, json={"max": 2}, timeout=60)
                assert answer.status_code == 200, answer.text
                got += [c["id"] for c in answer.json()["calculations"]]
            return got

    with ThreadPoolExecutor(max_workers=20) as pool:
        handed_out = [cid for got in pool.map(claimer, range(20)) for cid in got]

    assert len(handed_out) == len(set(handed_out)) == cap
    assert Calculation.objects.filter(state=State.CLAIMED).count() == cap
