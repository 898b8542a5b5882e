"""siestaflow.postgresql: Django's backend, whose health check asks the server only when the
connection is in doubt, with parameters bound by the server and frequent statements prepared
(PostgreSQL only)."""

import select

import pytest
from django.db import close_old_connections, connection, connections

from accounts.models import User
from siestaflow.postgresql.base import quiet_and_idle
from tests.factories import UserFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend")


@pytest.fixture
def other():
    """A second connection to the test database, as a gunicorn worker would hold."""
    wrapper = connections.create_connection("default")
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def _wait_readable(conn, timeout=10.0):
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    assert poller.poll(timeout * 1000), "the server did not write to the connection"


def _last_statement(wrapper) -> str:
    """What the server last ran for ``wrapper``'s connection (``pg_stat_activity``, seen from another)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [wrapper.connection.info.backend_pid])
        return cursor.fetchone()[0]


def _mark(wrapper) -> None:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT 'marker'")


def test_an_idle_connection_is_usable_without_asking(transactional_db, other):
    _mark(other)
    assert quiet_and_idle(other.connection)
    assert other.is_usable()
    assert _last_statement(other) == "SELECT 'marker'"  # nothing was sent to the server


def test_a_connection_the_server_closed_is_not_usable_and_is_replaced(transactional_db, other):
    pid = other.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    _wait_readable(other.connection)
    assert not quiet_and_idle(other.connection)
    assert not other.is_usable()
    # what Django does before a request's first query: the dead connection is closed, a new one opened
    other.health_check_enabled, other.health_check_done = True, False
    other.close_if_health_check_failed()
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_a_connection_with_something_unasked_to_read_is_checked_by_asking(transactional_db, other):
    with other.cursor() as cursor:
        cursor.execute("LISTEN siestaflow_test")
    with connection.cursor() as cursor:
        cursor.execute("NOTIFY siestaflow_test")
    _wait_readable(other.connection)
    assert not quiet_and_idle(other.connection)
    assert other.is_usable()  # Django's SELECT 1 answers: the connection is fine
    assert _last_statement(other) == "SELECT 1"


def test_a_connection_inside_a_transaction_or_after_an_error_is_checked_by_asking(transactional_db, other):
    other.set_autocommit(False)
    with other.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert not quiet_and_idle(other.connection)
    other.rollback()
    other.set_autocommit(True)
    assert quiet_and_idle(other.connection)
    _mark(other)
    other.errors_occurred = True
    assert other.is_usable()
    assert _last_statement(other) == "SELECT 1"  # asked: it still answers


def test_the_next_request_gets_a_new_connection_when_the_server_closed_the_last_one(transactional_db, other):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    _wait_readable(connection.connection)
    close_old_connections()  # what Django does when a request starts
    assert UserFactory().pk  # the request's first query runs, on a new connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def _prepared_user_reads() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s",
                       ['SELECT %"accounts_user"%'])
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_run_often_is_prepared_once_with_its_parameters_bound_by_the_server(transactional_db):
    connection.close()
    connection.ensure_connection()  # a new connection: nothing prepared yet
    threshold = connection.connection.prepare_threshold or 5  # None would prepare nothing: the test fails
    users = UserFactory.create_batch(threshold + 2)
    for user in users[:threshold]:
        assert User.objects.get(pk=user.pk) == user
    assert not _prepared_user_reads()  # not worth preparing yet
    for user in users[threshold:]:
        assert User.objects.get(pk=user.pk) == user  # other values, the same statement
    prepared = _prepared_user_reads()
    assert len(prepared) == 1
    assert '"accounts_user"."id" = $1' in prepared[0]  # the value travels apart from the SQL


def test_a_set_larger_than_a_statement_takes_parameters_is_read_in_batches(db):
    users = UserFactory.create_batch(2)
    ids = [users[0].pk, *range(10**9, 10**9 + 70_000), users[1].pk]  # the server takes 65,535 at most
    assert set(User.objects.in_bulk(ids)) == {users[0].pk, users[1].pk}



def test_an_id_taken_in_a_query_is_used_by_its_row_and_by_no_other(db):
    from mlmodels.models import MLModel, Prediction
    from siestaflow.lib.db import insert_without_waiting_for_disk, next_id

    model = MLModel.objects.create(name="m", image="m:1")
    taken = [MLModel.objects.annotate(next_id=next_id(Prediction)).get(pk=model.pk).next_id for _ in range(2)]
    assert taken[0] != taken[1]
    row = insert_without_waiting_for_disk(Prediction(pk=taken[1], model=model, status="ok"), carrier="status")
    others = [Prediction.objects.create(model=model, status="ok").pk for _ in range(3)]  # ids from the sequence
    assert row.pk == taken[1] and not set(others) & set(taken)
    assert Prediction.objects.get(pk=taken[1]).status == "ok"
