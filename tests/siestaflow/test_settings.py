"""Settings come from the environment; a bad value stops start-up naming the variable."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_django(tmp_path, *args, **env):
    environment = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "MAIL_PROVIDER")}
    environment.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="siestaflow.settings", **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("env", "named"), [
    ({"DEBUG": "maybe"}, "DEBUG"),
    ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
    ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
    ({"JWT_ACCESS_MINUTES": "five"}, "JWT_ACCESS_MINUTES"),
    ({"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x", "DATABASE_PREPARE_THRESHOLD": "often"},
     "DATABASE_PREPARE_THRESHOLD"),
    ({"MAIL_PROVIDER": "pigeon"}, "MAIL_PROVIDER"),
    ({"MAIL_PROVIDER": "sendgrid"}, "SENDGRID_API_KEY"),
    ({"MAIL_PROVIDER": "mailtrap"}, "MAILTRAP_API_TOKEN"),
    ({"DEBUG": "false", "ALLOWED_HOSTS": "example.org"}, "SECRET_KEY"),
    ({"DEBUG": "false", "SECRET_KEY": "x" * 60}, "ALLOWED_HOSTS"),
])
def test_it_stops_with_a_message_naming_the_bad_variable(tmp_path, env, named):
    result = run_django(tmp_path, "check", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr.strip().splitlines()[-1]


def test_it_passes_check_deploy_without_warnings_in_production(tmp_path):
    result = run_django(tmp_path, "check", "--deploy", "--fail-level", "WARNING",
                        DEBUG="false", SECRET_KEY=secrets.token_urlsafe(64), ALLOWED_HOSTS="siestaflow.example.org")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_it_runs_on_embedded_defaults_with_nothing_configured(tmp_path):
    result = run_django(tmp_path, "shell", "--no-imports", "-c", (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.EMAIL_BACKEND)"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3", "filesystem://", "django.core.mail.backends.filebased.EmailBackend"]


def test_it_switches_to_postgres_redis_and_anymail_by_environment(tmp_path):
    result = run_django(tmp_path, "shell", "--no-imports", "-c", (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.CACHES['default']['BACKEND'], "
        "s.EMAIL_BACKEND)"),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/whatever", REDIS_URL="redis://127.0.0.1:6379/3",
        MAIL_PROVIDER="sendgrid", SENDGRID_API_KEY="SG.test")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "siestaflow.postgresql", "redis://127.0.0.1:6379/3",
        "django.core.cache.backends.redis.RedisCache", "anymail.backends.sendgrid.EmailBackend"]


@pytest.mark.parametrize(("threshold", "expected"), [(None, "5"), ("0", "0"), ("none", "None")])
def test_postgresql_binds_on_the_server_and_prepares_what_runs_often(tmp_path, threshold, expected):
    env = {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/whatever"}
    if threshold is not None:
        env["DATABASE_PREPARE_THRESHOLD"] = threshold
    result = run_django(tmp_path, "shell", "--no-imports", "-c", (
        "from django.conf import settings as s; o = s.DATABASES['default']['OPTIONS']; "
        "print(o['server_side_binding'], o['prepare_threshold'])"), **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", expected]
