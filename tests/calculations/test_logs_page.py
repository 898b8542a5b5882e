"""The Logs page: the filtered feed, its live JSON feed and the admins' deletion."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from calculations import ingest
from calculations.models import LogLine

PERSONAS = ["alice", "mod", "root"]


@pytest.fixture
def calc(submit):
    return submit(name="water scf")


@pytest.fixture
def log(cluster, calc):
    """``log("message", level=..., calc=..., cluster=...)``: a line stored as agents store them."""

    def make(message: str, *, level: str = "INFO", calc=calc, cluster=cluster, age: timedelta | None = None):
        ingest.store_logs(cluster=cluster, calc=calc, lines=[{"message": message, "level": level}])
        line = LogLine.objects.latest("id")
        if age:
            LogLine.objects.filter(pk=line.pk).update(created_at=timezone.now() - age)
        return line

    return make


def shown(html: str) -> list[str]:
    return re.findall(r'<td class="log-message">(.*?)</td>', html, re.S)


# --- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/logs/", "/logs/feed/?after=0", "/logs/delete/?level=DEBUG"])
def test_it_sends_anonymous_visitors_to_sign_in(page_as, url):
    response = page_as("anon").get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", PERSONAS)
def test_it_shows_every_role_the_logs_and_the_feed(page_as, persona, log):
    log("hello from the agent")
    client = page_as(persona)
    assert shown(client.get("/logs/").content.decode()) == ["hello from the agent"]
    assert client.get("/logs/feed/?after=0").json()["lines"][0]["message"] == "hello from the agent"


@pytest.mark.parametrize(("persona", "visible"), [("alice", False), ("mod", False), ("root", True)])
def test_it_shows_the_delete_button_to_admins_only(page_as, persona, visible):
    html = page_as(persona).get("/logs/").content.decode()
    assert ("Delete these lines" in html) is visible


@pytest.mark.parametrize("persona", ["alice", "mod"])
def test_it_refuses_deleting_logs_to_everyone_but_admins(page_as, persona, log):
    line = log("keep me", level="DEBUG")
    client = page_as(persona)
    assert client.get("/logs/delete/?level=DEBUG").status_code == 403
    assert client.post("/logs/delete/", {"level": "DEBUG"}).status_code == 403
    assert LogLine.objects.filter(pk=line.pk).exists()


# --- the page --------------------------------------------------------------------------------


def test_it_shows_the_newest_line_at_the_bottom(page_as, log):
    for n in range(3):
        log(f"line {n}")
    assert shown(page_as("alice").get("/logs/").content.decode()) == ["line 0", "line 1", "line 2"]


def test_it_escapes_log_messages(page_as, log):
    log("<script>alert('x')</script>")
    html = page_as("alice").get("/logs/").content.decode()
    assert "<script>alert" not in html
    assert shown(html) == ["&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"]


def test_it_filters_by_cluster_calculation_and_level(page_as, log, submit, other_cluster, calc):
    other = submit(name="other calc")
    log("mine info")
    log("mine error", level="ERROR")
    log("other calc", calc=other)
    log("other cluster", calc=None, cluster=other_cluster)
    client = page_as("alice")
    assert shown(client.get(f"/logs/?calculation={calc.pk}").content.decode()) == ["mine info", "mine error"]
    assert shown(client.get("/logs/?level=ERROR").content.decode()) == ["mine error"]
    assert shown(client.get(f"/logs/?cluster={other_cluster.pk}").content.decode()) == ["other cluster"]
    html = client.get(f"/logs/?calculation={calc.pk}&level=INFO&level=WARNING").content.decode()
    assert shown(html) == ["mine info"]


def test_it_shows_a_bad_filter_next_to_its_field(page_as, log):
    log("anything")
    response = page_as("alice").get("/logs/?calculation=abc&level=LOUD")
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'<div class="field invalid">\s*<label for="id_calculation"', html)
    assert re.search(r'<fieldset class="field choices invalid" id="id_level_group">\s*<legend>Level</legend>', html)
    assert shown(html) == [] and 'data-live="false"' in html


def test_it_pages_back_by_id(page_as, log, settings, monkeypatch):
    from calculations import views

    monkeypatch.setattr(views, "LOG_LINES", 3)
    lines = [log(f"line {n}") for n in range(5)]
    client = page_as("alice")
    html = client.get("/logs/").content.decode()
    assert shown(html) == ["line 2", "line 3", "line 4"]
    assert f'href="?older={lines[2].pk}"' in html and 'data-live="true"' in html
    older = client.get(f"/logs/?older={lines[2].pk}").content.decode()
    assert shown(older) == ["line 0", "line 1"]
    assert "Older lines" not in older and 'data-live="false"' in older  # history is not live


@pytest.mark.parametrize("count", [5, 50])
def test_it_renders_in_a_constant_number_of_queries(page_as, cluster, calc, django_assert_max_num_queries, count):
    ingest.store_logs(cluster=cluster, calc=calc, lines=[{"message": f"m{n}"} for n in range(count)])
    client = page_as("root")
    with django_assert_max_num_queries(5):  # session, user, cluster choices, the calculation, the lines
        html = client.get(f"/logs/?calculation={calc.pk}").content.decode()
    assert len(shown(html)) == count


def test_it_starts_the_live_feed_after_the_newest_line_shown(page_as, log):
    newest = log("newest")
    html = page_as("alice").get("/logs/?level=INFO").content.decode()
    assert f'data-last="{newest.pk}"' in html
    assert 'data-feed="/logs/feed/?level=INFO"' in html
    assert '<script src="/static/siestaflow/logs.js" defer></script>' in html


# --- the live feed ---------------------------------------------------------------------------


def test_it_feeds_only_the_lines_after_the_given_id(page_as, log):
    first, _second, third = log("one"), log("two"), log("three")
    data = page_as("alice").get(f"/logs/feed/?after={first.pk}").json()
    assert [line["message"] for line in data["lines"]] == ["two", "three"]
    assert data["last"] == third.pk and data["more"] is False
    assert page_as("alice").get(f"/logs/feed/?after={third.pk}").json() == {
        "lines": [], "more": False, "last": third.pk}


def test_it_feeds_only_lines_matching_the_filters(page_as, log, other_cluster, calc):
    log("info")
    log("error", level="ERROR")
    log("elsewhere", level="ERROR", calc=None, cluster=other_cluster)
    client = page_as("alice")
    data = client.get(f"/logs/feed/?after=0&level=ERROR&calculation={calc.pk}").json()
    assert [line["message"] for line in data["lines"]] == ["error"]
    line = data["lines"][0]
    assert line["calculation"] == calc.pk and line["calculation_name"] == "water scf" and line["cluster"] == "hpc1"
    data = client.get(f"/logs/feed/?after=0&cluster={other_cluster.pk}").json()
    assert [line["message"] for line in data["lines"]] == ["elsewhere"]


def test_it_feeds_in_batches_and_says_there_is_more(page_as, log, monkeypatch):
    from calculations import views

    monkeypatch.setattr(views, "FEED_LINES", 2)
    lines = [log(f"l{n}") for n in range(3)]
    data = page_as("alice").get("/logs/feed/?after=0").json()
    assert [line["message"] for line in data["lines"]] == ["l0", "l1"]
    assert data["more"] is True and data["last"] == lines[1].pk


@pytest.mark.parametrize("query", ["", "?after=", "?after=-1", "?after=abc", "?after=0&calculation=x",
                                   "?after=0&level=LOUD"])
def test_it_refuses_a_bad_feed_request_with_the_reason(page_as, db, query):
    response = page_as("alice").get(f"/logs/feed/{query}")
    assert response.status_code == 400
    assert response.json()["errors"]


@pytest.mark.parametrize("count", [5, 50])
def test_it_feeds_in_a_constant_number_of_queries(page_as, cluster, calc, django_assert_max_num_queries, count):
    ingest.store_logs(cluster=cluster, calc=calc, lines=[{"message": f"m{n}"} for n in range(count)])
    client = page_as("alice")
    with django_assert_max_num_queries(4):  # session, user, the calculation filter, the lines
        data = client.get(f"/logs/feed/?after=0&calculation={calc.pk}").json()
    assert len(data["lines"]) == count


# --- deleting --------------------------------------------------------------------------------


def test_it_asks_the_admin_to_confirm_what_is_deleted(page_as, log, cluster):
    line = log("still here")
    response = page_as("root").get(f"/logs/delete/?cluster={cluster.pk}&level=DEBUG")
    assert response.status_code == 200
    html = response.content.decode()
    chosen = html[html.index('<dl class="log-delete-filters">'):html.index("</dl>")]
    assert "<dt>Cluster</dt><dd>hpc1</dd>" in chosen and "<dt>Level</dt><dd>DEBUG</dd>" in chosen, chosen
    assert "This cannot be undone" in html
    assert f'<input type="hidden" name="cluster" value="{cluster.pk}">' in html
    assert LogLine.objects.filter(pk=line.pk).exists()  # nothing deleted before the POST


def test_it_deletes_only_the_lines_the_filters_select(page_as, log, submit, calc):
    other = submit(name="other")
    log("mine")
    kept = log("theirs", calc=other)
    response = page_as("root").post("/logs/delete/", {"calculation": calc.pk})
    assert response.status_code == 302 and response["Location"] == "/logs/"
    assert list(LogLine.objects.values_list("pk", flat=True)) == [kept.pk]


def test_it_deletes_lines_older_than_a_date(page_as, log):
    log("old", age=timedelta(days=40))
    recent = log("recent")
    before = (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    page_as("root").post("/logs/delete/", {"before": before})
    assert list(LogLine.objects.values_list("pk", flat=True)) == [recent.pk]


def test_it_says_how_many_lines_were_deleted(page_as, log):
    log("a", level="DEBUG")
    log("b", level="DEBUG")
    html = page_as("root").post("/logs/delete/", {"level": "DEBUG"}, follow=True).content.decode()
    assert "Deleted 2 log lines." in html


@pytest.mark.parametrize("data", [{}, {"calculation": "abc"}, {"calculation": "abc", "level": "DEBUG"},
                                  {"before": "last tuesday"}])
def test_it_never_deletes_without_a_valid_filter(page_as, log, data):
    log("keep", level="DEBUG")
    response = page_as("root").post("/logs/delete/", data)
    assert response.status_code == 400
    assert "Choose at least one valid filter" in response.content.decode()
    assert LogLine.objects.count() == 1
