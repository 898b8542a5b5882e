"""The Calculations pages: list, detail with live progress, actions, files, form, report."""

import io
import re
import zipfile
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calculations import services
from calculations.models import Calculation, LogLine
from calculations.states import State
from tests.calculations.conftest import H2O_FDF
from tests.calculations.test_reports import SVG, artifact, pdf_pages, png_bytes, run, store
from tests.factories import ClusterFactory, HeartbeatFactory, MoleculeFactory, UserFactory

PERSONAS = ["alice", "bob", "mod", "root"]


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def calc(submit):
    return submit()


@pytest.fixture
def waiting(submit, settings):
    settings.REQUIRE_APPROVAL = True
    return submit(name="needs approval")


def html(response) -> str:
    return response.content.decode()


def pages_of(calc) -> list[str]:
    base = f"/calculations/{calc.pk}"
    return ["/calculations/", "/calculations/new/", f"{base}/", f"{base}/edit/", f"{base}/progress/",
            f"{base}/report/", f"{base}/report.pdf", f"{base}/report.zip", f"{base}/download/config.json",
            f"{base}/download/extracted.csv", f"/calculations/new/?from={calc.pk}"]


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PERSONAS)
def test_it_opens_every_page_to_every_signed_in_user(page_as, calc, name):
    client = page_as(name)
    for path in pages_of(calc):
        assert client.get(path).status_code == 200, path


def test_it_sends_anonymous_visitors_to_sign_in(page_as, calc):
    client = page_as("anon")
    for path in pages_of(calc):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path
    assert client.post(f"/calculations/{calc.pk}/actions/cancel/").status_code == 302
    calc.refresh_from_db()
    assert calc.state == State.QUEUED


def test_it_refuses_blocked_users(page_as, alice, calc):
    client = page_as("alice")
    alice.is_active = False
    alice.save()
    assert client.get(f"/calculations/{calc.pk}/").status_code in (302, 403)


@pytest.mark.parametrize("suffix", ["/", "/edit/", "/progress/", "/report/", "/report.pdf", "/report.zip",
                                    "/download/config.json", "/artifacts/1/"])
def test_it_answers_404_for_a_calculation_that_does_not_exist(page_as, suffix):
    assert page_as("alice").get(f"/calculations/999{suffix}").status_code == 404


# --- list ------------------------------------------------------------------------------------------


def _rows(count: int, cluster, owner):
    molecule = MoleculeFactory()
    Calculation.objects.bulk_create([
        Calculation(name=f"calc {i}", owner=owner if i % 2 else UserFactory(), molecule=molecule,
                    cluster=cluster if i % 3 else ClusterFactory(), engine="pyscf", inputs_hash=f"{i:064x}",
                    chain={"parameter": "x", "values": [1, 2, 3]} if i % 4 == 0 else None)
        for i in range(count)])


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/calculations/")
    assert response.status_code == 200
    return len(queries)


def test_it_lists_with_the_same_number_of_queries_for_5_and_50_rows(page_as, cluster, alice,
                                                                    django_assert_max_num_queries):
    client = page_as("alice")
    _rows(5, cluster, alice)
    at_5 = _list_queries(client)
    _rows(45, cluster, alice)
    with django_assert_max_num_queries(at_5):
        assert client.get("/calculations/").status_code == 200
    assert at_5 <= 8


def test_it_shows_the_list_columns(page_as, calc):
    page = html(page_as("bob").get("/calculations/"))
    row = re.search(r"<tbody>(.*?)</tbody>", page, re.S).group(1)
    for text in (f"#{calc.pk} water scf", "water", "hpc1", "siesta", "Queued", "1 / 1", "alice"):
        assert text in row


def test_it_filters_with_the_shared_filterset_and_searches(page_as, submit):
    submit(name="benzene relax")
    kept = submit(name="water bands")
    services.cancel(actor=kept.owner, calc=kept)
    client = page_as("alice")
    assert "benzene relax" not in html(client.get("/calculations/?state=cancelled"))
    assert "water bands" in html(client.get("/calculations/?state=cancelled"))
    found = html(client.get("/calculations/?search=benz"))
    assert "benzene relax" in found and "water bands" not in found
    assert "1 calculation" in found


def test_it_paginates_and_keeps_the_filters_in_the_page_links(page_as, cluster, alice):
    _rows(30, cluster, alice)
    page = html(page_as("alice").get("/calculations/?engine=pyscf"))
    assert "Page 1 of 2" in page and 'href="?engine=pyscf&amp;page=2"' in page
    assert "Page 2 of 2" in html(page_as("alice").get("/calculations/?engine=pyscf&page=2"))


def test_it_shows_filter_errors_instead_of_failing(page_as, calc):
    response = page_as("alice").get("/calculations/?state=nonsense&created_after=yesterday")
    assert response.status_code == 200
    assert 'class="errors"' in html(response)


# --- detail and progress -------------------------------------------------------------------------


def test_it_shows_the_live_progress_of_a_running_siesta(page_as, calc):
    run(calc, State.RUNNING, progress={"program": "siesta", "scf_iteration": 7, "energy": -465.123})
    data = page_as("bob").get(f"/calculations/{calc.pk}/progress/").json()
    assert data["state"] == "running" and data["step"] == 1 and data["steps"] == 1
    assert data["progress"]["scf_iteration"] == 7 and data["progress"]["energy"] == -465.123
    page = html(page_as("bob").get(f"/calculations/{calc.pk}/"))
    assert 'data-terminal="false"' in page and "siestaflow/calculations.js" in page
    assert '<dd data-live="progress.scf_iteration">7</dd>' in page


def test_it_draws_the_energy_trend_from_the_first_load(page_as, calc):
    run(calc, State.RUNNING)
    Calculation.objects.filter(pk=calc.pk).update(progress={  # as three progress events leave it
        "scf_iteration": 3, "energy": -465.0, "trend": [[1, -460.0], [2, -464.0], [3, -465.0]]})
    page = html(page_as("bob").get(f"/calculations/{calc.pk}/"))
    points = re.search(r'id="energy-trend".*?points="([^"]*)"', page, re.S).group(1).split()
    assert points == ["0.0,0.0", "150.0,48.0", "300.0,60.0"]  # highest energy at the top


def test_it_says_why_a_calculation_is_not_running(page_as, calc):
    page = html(page_as("alice").get(f"/calculations/{calc.pk}/"))
    assert "Why isn't it running?" in page and "is offline (never heard from)" in page


def test_it_shows_the_timeline_logs_and_the_link_to_all_logs(page_as, calc):
    calc = run(calc, State.RUNNING)
    LogLine.objects.create(cluster=calc.cluster, calculation=calc, message="SCF cycle 3 converged",
                           time=timezone.now())
    page = html(page_as("alice").get(f"/calculations/{calc.pk}/"))
    assert "Queued → Claimed" in page and "Claimed → Running" in page and "by the agent" in page
    assert "SCF cycle 3 converged" in page
    assert f'href="/logs/?calculation={calc.pk}"' in page


def test_it_draws_the_clusters_resources_while_it_ran(page_as, calc):
    calc = run(calc, State.RUNNING)
    Calculation.objects.filter(pk=calc.pk).update(started_at=timezone.now() - timedelta(minutes=10))
    for minutes, cpu in ((9, 10.0), (5, 90.0), (1, 50.0)):
        HeartbeatFactory(cluster=calc.cluster, time=timezone.now() - timedelta(minutes=minutes), cpu_percent=cpu)
    page = html(page_as("alice").get(f"/calculations/{calc.pk}/"))
    points = re.search(r'<polyline class="cpu"[^>]*points="([^"]*)"', page).group(1).split()
    assert [p.split(",")[1] for p in points] == ["54.0", "6.0", "30.0"]  # 10, 90, 50 % of a 60-high box
    svg = re.search(r'<svg class="resources".*?</svg>', page, re.S).group(0)
    assert [t for t in re.findall(r">([^<>]*%)</text>", svg)] == ["100 %", "50 %", "0 %"]  # the value axis
    assert "(10\xa0minutes)</text>" in svg  # the time axis: start, end and the span


def test_it_shows_results_analyses_plots_and_the_duplicate_flag(page_as, submit):
    first = run(submit(), State.RUNNING)
    store(first, artifacts=[artifact("energy.svg", SVG, "image/svg+xml")])
    run(first, State.VALIDATING, State.EXTRACTING, State.SUCCEEDED)
    again = submit()
    assert again.duplicate_of_id == first.pk
    page = html(page_as("alice").get(f"/calculations/{first.pk}/"))
    assert "Energy summary" in page and "-465.1" in page
    plot = first.artifacts.get()
    assert f'src="/calculations/{first.pk}/artifacts/{plot.pk}/"' in page
    flagged = html(page_as("alice").get(f"/calculations/{again.pk}/"))
    assert f'href="/calculations/{first.pk}/"' in flagged and "Same inputs as" in flagged


# --- actions -------------------------------------------------------------------------------------


def test_it_cancels_a_queued_calculation(page_as, calc):
    response = page_as("bob").post(f"/calculations/{calc.pk}/actions/cancel/", follow=True)
    calc.refresh_from_db()
    assert calc.state == State.CANCELLED and "water scf: done." in html(response)


def test_it_resumes_a_failed_calculation(page_as, calc):
    calc = run(calc, State.RUNNING, State.FAILED)
    page = html(page_as("alice").get(f"/calculations/{calc.pk}/"))
    assert "Resume at step 1" in page
    page_as("alice").post(f"/calculations/{calc.pk}/actions/resume/")
    calc.refresh_from_db()
    assert calc.state == State.QUEUED and calc.attempt == 2


def test_it_explains_a_refused_action_on_the_page(page_as, calc):
    response = page_as("alice").post(f"/calculations/{calc.pk}/actions/resume/", follow=True)
    assert response.status_code == 200
    assert "Only a failed calculation can be resumed" in html(response)


def test_it_refuses_get_and_unknown_actions(page_as, calc):
    assert page_as("alice").get(f"/calculations/{calc.pk}/actions/cancel/").status_code == 405
    assert page_as("alice").post(f"/calculations/{calc.pk}/actions/explode/").status_code == 404


@pytest.mark.parametrize(("name", "shown"), [("alice", False), ("bob", False), ("mod", True), ("root", True)])
def test_it_shows_approve_and_reject_only_to_moderators_and_admins(page_as, waiting, name, shown):
    page = html(page_as(name).get(f"/calculations/{waiting.pk}/"))
    assert (f"/calculations/{waiting.pk}/actions/approve/" in page) is shown
    assert (f"/calculations/{waiting.pk}/actions/reject/" in page) is shown


@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("name", ["alice", "bob"])
def test_it_refuses_approval_posts_from_users(page_as, waiting, name, action):
    response = page_as(name).post(f"/calculations/{waiting.pk}/actions/{action}/", {"reason": "no"})
    assert response.status_code == 403
    waiting.refresh_from_db()
    assert waiting.state == State.PENDING_APPROVAL


@pytest.mark.parametrize("name", ["mod", "root"])
def test_it_lets_moderators_and_admins_approve(page_as, waiting, name, personas):
    page_as(name).post(f"/calculations/{waiting.pk}/actions/approve/")
    waiting.refresh_from_db()
    assert waiting.state == State.QUEUED and waiting.approved_by == personas[name]


def test_it_rejects_only_with_a_reason(page_as, waiting):
    response = page_as("mod").post(f"/calculations/{waiting.pk}/actions/reject/", {"reason": " "}, follow=True)
    assert "Say why the calculation is rejected." in html(response)
    waiting.refresh_from_db()
    assert waiting.state == State.PENDING_APPROVAL
    page_as("mod").post(f"/calculations/{waiting.pk}/actions/reject/", {"reason": "too many atoms"})
    waiting.refresh_from_db()
    assert waiting.state == State.CANCELLED and waiting.approval_reason == "too many atoms"
    assert "Rejected: too many atoms" in html(page_as("alice").get(f"/calculations/{waiting.pk}/"))


# --- files and downloads --------------------------------------------------------------------------


def test_it_streams_plots_inline_as_images_only(page_as, calc):
    calc = run(calc, State.RUNNING)
    store(calc, artifacts=[artifact("dos.png", png_bytes()), artifact("evil.html", b"<script>", "text/html")])
    png, evil = calc.artifacts.get(name="dos.png"), calc.artifacts.get(name="evil.html")
    response = page_as("alice").get(f"/calculations/{calc.pk}/artifacts/{png.pk}/")
    assert response["Content-Type"] == "image/png" and b"".join(response.streaming_content) == png_bytes()
    assert "sandbox" in response["Content-Security-Policy"] and response["X-Content-Type-Options"] == "nosniff"
    other = page_as("alice").get(f"/calculations/{calc.pk}/artifacts/{evil.pk}/")
    assert other["Content-Type"] == "application/octet-stream" and "attachment" in other["Content-Disposition"]


def test_it_hides_an_artifact_under_another_calculation(page_as, calc, submit):
    calc = run(calc, State.RUNNING)
    store(calc, artifacts=[artifact("dos.png", png_bytes())])
    other = submit(name="other")
    assert page_as("alice").get(f"/calculations/{other.pk}/artifacts/{calc.artifacts.get().pk}/").status_code == 404


def test_it_downloads_the_configuration_and_extracted_data(page_as, calc):
    store(run(calc, State.RUNNING))
    client = page_as("alice")
    assert client.get(f"/calculations/{calc.pk}/download/config.fdf").content.decode() == H2O_FDF
    assert client.get(f"/calculations/{calc.pk}/download/config.json").json()["engine"] == "siesta"
    csv_text = client.get(f"/calculations/{calc.pk}/download/extracted.csv").content.decode()
    assert "energies.total" in csv_text and "-465.1" in csv_text
    assert client.get(f"/calculations/{calc.pk}/download/extracted.xml").status_code == 404


# --- report ---------------------------------------------------------------------------------------


def test_it_serves_the_report_page_pdf_and_zip(page_as, calc):
    calc = run(calc, State.RUNNING)
    store(calc, analyses=[{"name": "scf_convergence", "status": "ok", "data": {"dDmax": [0.1, 0.01]}}],
          artifacts=[artifact("scf_convergence.png", png_bytes())])
    client = page_as("bob")
    page = html(client.get(f"/calculations/{calc.pk}/report/"))
    assert "Energy summary" in page and "-465.1" in page and "SCF convergence" in page
    pdf = client.get(f"/calculations/{calc.pk}/report.pdf")
    content = b"".join(pdf.streaming_content)
    assert pdf["Content-Type"] == "application/pdf" and content.startswith(b"%PDF-") and pdf_pages(content) == 2
    archive = zipfile.ZipFile(io.BytesIO(b"".join(client.get(f"/calculations/{calc.pk}/report.zip").streaming_content)))
    assert f"calculation-{calc.pk}/artifacts/step-1/scf_convergence.png" in archive.namelist()

