"""The dashboard: clusters with their last hour, calculation counts, the latest events and
the user's own calculations, in a fixed number of queries."""

import re
from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calculations.models import Calculation, CalculationEvent
from siestaflow.views import DASHBOARD_CLUSTERS
from tests.factories import ClusterFactory, HeartbeatFactory


def _calc(cluster, owner, state="queued", n=0):
    return Calculation.objects.create(name=f"calc {cluster.pk}-{n}", owner=owner, cluster=cluster,
                                      engine="command", inputs_hash=f"{cluster.pk}-{n}", state=state)


def _fill(clusters: int, owner, other):
    now = timezone.now()
    for _ in range(clusters):
        cluster = ClusterFactory(last_heartbeat_at=now)
        for minute in (50, 30, 5):
            HeartbeatFactory(cluster=cluster, time=now - timedelta(minutes=minute), cpu_percent=minute)
        for n, state in enumerate(["running", "queued", "failed", "succeeded"]):
            calc = _calc(cluster, owner if n % 2 else other, state, n)
            CalculationEvent.objects.create(calculation=calc, attempt=1, from_state="queued", to_state=state)


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    return len(queries)


def test_it_sends_visitors_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_answers_in_the_same_number_of_queries_at_5_and_50_rows(page_as, alice, bob):
    client = page_as("alice")
    _fill(5, alice, bob)
    few = _queries(client)
    _fill(45, alice, bob)
    assert _queries(client) == few <= 9


def test_it_shows_the_clusters_heard_from_last_and_links_to_all(page_as):
    now = timezone.now()
    for n in range(DASHBOARD_CLUSTERS + 3):
        ClusterFactory(name=f"c{n:02d}", last_heartbeat_at=now - timedelta(minutes=n))
    ClusterFactory(name="never")  # no heartbeat yet: last
    html = page_as("alice").get("/").content.decode()
    shown = re.findall(r'<a href="/clusters/\d+/">(\w+)</a>', html)
    assert shown == [f"c{n:02d}" for n in range(DASHBOARD_CLUSTERS)]
    assert f'<a href="/clusters/">All {DASHBOARD_CLUSTERS + 4} clusters</a>' in html


def test_it_counts_running_queued_and_failed_calculations(page_as, alice, bob):
    cluster = ClusterFactory()
    for n, state in enumerate(["running", "claimed", "analysing", "queued", "pending_approval", "failed",
                               "succeeded", "cancelled"]):
        _calc(cluster, bob, state, n)
    html = page_as("alice").get("/").content.decode()
    counts = dict((word, int(n)) for n, word in re.findall(r"<strong>(\d+)</strong> (running|queued|failed)", html))
    assert counts == {"running": 3, "queued": 2, "failed": 1}


def test_it_draws_each_clusters_last_hour_of_cpu_and_memory(page_as):
    now = timezone.now()
    up = ClusterFactory(name="up", last_heartbeat_at=now)
    ClusterFactory(name="silent", last_heartbeat_at=now - timedelta(hours=3))
    HeartbeatFactory(cluster=up, time=now - timedelta(minutes=90), cpu_percent=99)  # outside the hour
    HeartbeatFactory(cluster=up, time=now - timedelta(minutes=40), cpu_percent=10, memory_percent=50)
    HeartbeatFactory(cluster=up, time=now - timedelta(minutes=2), cpu_percent=30, memory_percent=60)
    html = page_as("alice").get("/").content.decode()
    rows = {re.search(r">(\w+)</a>", row).group(1): row for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)
            if "/clusters/" in row}
    assert "online" in rows["up"] and "offline" in rows["silent"]
    cpu, memory = re.findall(r'<polyline points="([^"]+)"', rows["up"])
    assert len(cpu.split()) == 2 and len(memory.split()) == 2
    assert cpu.split()[-1].endswith(",19.6")  # 30 % of a 28 px high line, from the top
    assert "CPU over the last hour: now 30 %, highest 30 %" in rows["up"]
    assert "no data" in rows["silent"]


def test_it_lists_the_latest_events_and_only_my_calculations(page_as, alice, bob):
    cluster = ClusterFactory()
    mine, theirs = _calc(cluster, alice, n=1), _calc(cluster, bob, n=2)
    mine.name, theirs.name = "my water run", "bobs benzene run"
    Calculation.objects.bulk_update([mine, theirs], ["name"])
    CalculationEvent.objects.create(calculation=theirs, attempt=1, from_state="queued", to_state="claimed",
                                    by_agent=True)
    html = page_as("alice").get("/").content.decode()
    events = re.search(r"<h2>Latest events</h2>(.*?)</section>", html, re.S).group(1)
    my_calcs = re.search(r"<h2>My calculations</h2>(.*?)</section>", html, re.S).group(1)
    assert "bobs benzene run" in events and "Claimed" in events and "(agent)" in events
    assert "my water run" in my_calcs and "bobs benzene run" not in my_calcs


def test_it_shows_honest_empty_states(page_as):
    html = page_as("alice").get("/").content.decode()
    assert "No clusters yet" in html and "No events yet" in html and "no calculations yet" in html
    assert "Add one" not in html
    assert "Add one" in page_as("root").get("/").content.decode()
