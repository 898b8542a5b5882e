"""The agent's SQLite files: a group's writes commit together, and only together."""

from __future__ import annotations

import sqlite3

import pytest
from siestaflow_agent.outbox import Outbox
from siestaflow_agent.sqlite import Database


@pytest.fixture()
def database(tmp_path):
    database = Database(tmp_path / "t.sqlite3")
    database.db.execute("CREATE TABLE t (x INTEGER)")
    yield database
    database.close()


def seen(database: Database) -> list[int]:
    """What another process would read: committed rows only."""
    other = sqlite3.connect(database.path)
    try:
        return [row[0] for row in other.execute("SELECT x FROM t ORDER BY x")]
    finally:
        other.close()


def test_a_groups_writes_are_committed_when_it_ends(database):
    with database.group():
        database.db.execute("INSERT INTO t VALUES (1)")
        with database.transaction() as db:
            db.execute("INSERT INTO t VALUES (2)")
        assert seen(database) == []
    assert seen(database) == [1, 2]


def test_a_failed_transaction_inside_a_group_rolls_back_alone(database):
    with database.group():
        database.db.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlite3.OperationalError), database.transaction() as db:
            db.execute("INSERT INTO t VALUES (2)")
            db.execute("INSERT INTO no_such_table VALUES (2)")
        database.db.execute("INSERT INTO t VALUES (3)")
    assert seen(database) == [1, 3]


def test_a_group_that_raises_writes_nothing(database):
    with pytest.raises(KeyboardInterrupt), database.group():
        database.db.execute("INSERT INTO t VALUES (1)")
        raise KeyboardInterrupt
    assert seen(database) == []
    database.db.execute("INSERT INTO t VALUES (4)")  # not left inside a transaction
    assert seen(database) == [4]


def test_commit_makes_a_groups_writes_durable_and_the_group_goes_on(database):
    with database.group():
        database.db.execute("INSERT INTO t VALUES (1)")
        database.commit()
        assert seen(database) == [1]
        database.db.execute("INSERT INTO t VALUES (2)")
        assert seen(database) == [1]
    assert seen(database) == [1, 2]


def test_commit_inside_a_transactions_block_is_refused(database):
    with database.group(), database.transaction(), pytest.raises(RuntimeError, match="only a group"):
        database.commit()


def test_closing_inside_a_group_keeps_its_writes(tmp_path):
    box = Outbox(tmp_path / "outbox.sqlite3")
    with box.database.group():
        box.add_log(1, 1, "written inside a group")
        box.close()  # an agent stopping mid-round
    reopened = Outbox(tmp_path / "outbox.sqlite3")
    assert [e.body["message"] for e in reopened.pending()] == ["written inside a group"]
    reopened.close()
