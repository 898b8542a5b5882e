"""Celery runs as a real worker: on the filesystem transport with nothing configured, and
on Redis when REDIS_URL is set. Tasks are enqueued only once their transaction commits."""

import os

import pytest
import redis

from accounts import services
from tests.factories import UserFactory
from tests.workers import celery_worker, wait_for

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_available() -> bool:
    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False


def _deliver_password_mail(tmp_path, redis_url=None):
    user = UserFactory(username="erin")
    moderator = UserFactory(username="maud", role="moderator")
    with celery_worker(tmp_path, redis_url=redis_url) as (producer, queue):
        producer.send_task("accounts.tasks.notify_password_set", args=[user.pk, moderator.pk], queue=queue)
        mails = wait_for(lambda: list((tmp_path / "mail").glob("*.log")) if (tmp_path / "mail").exists() else [])
    assert mails, celery_worker.last_output
    text = mails[0].read_text()
    assert "To: erin@example.org" in text
    assert "maud set a new password" in text


@pytest.mark.django_db(transaction=True)
def test_it_runs_tasks_in_a_real_worker_on_the_filesystem_transport(tmp_path):
    _deliver_password_mail(tmp_path)


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_it_runs_tasks_in_a_real_worker_on_redis(tmp_path):
    if not _redis_available():
        if os.environ.get("CI"):
            pytest.fail(f"Redis is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    _deliver_password_mail(tmp_path, redis_url=REDIS_URL)


def test_it_enqueues_the_notice_only_when_the_password_change_commits(
        alice, mod, django_capture_on_commit_callbacks, mocker_delay):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.set_password(actor=mod, target=alice, password="a fine long passphrase")
        assert mocker_delay.calls == []
    for callback in callbacks:
        callback()
    assert mocker_delay.calls == [((alice.pk, mod.pk), {})]


@pytest.fixture
def mocker_delay(monkeypatch):
    from accounts import tasks

    class Recorder:
        calls = []

        def __call__(self, *args, **kwargs):
            self.calls.append((args, kwargs))

    recorder = Recorder()
    recorder.calls = []
    monkeypatch.setattr(tasks.notify_password_set, "delay", recorder)
    return recorder
