"""Typed reads of the environment for settings.py.

Every reader names the variable in its error, so a bad value stops start-up with a message
an operator can act on. ``NAME_FILE`` is honoured for secrets (Docker/systemd credentials).

django-environ parses the database URL (``Env.db_url_config``). The scalars are read here
rather than with ``environ.Env``: django-environ 0.14 reads any unknown boolean (``DEBUG=flase``)
as False without a word and raises an unnamed ``ValueError`` for a bad integer, and a bad
value must stop start-up with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_UNSET = object()


class Config:
    """Reads settings from a mapping (``os.environ`` by default)."""

    def __init__(self, environ_: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ_ is None else environ_

    def raw(self, name: str, default=_UNSET) -> str | None:
        """The text of ``name`` (or of the file ``name_FILE`` points to), else ``default``."""
        if name in self.environ:
            return self.environ[name]
        path = self.environ.get(f"{name}_FILE")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise ImproperlyConfigured(f"{name}_FILE: cannot read {path}: {exc}") from exc
        if default is _UNSET:
            raise ImproperlyConfigured(f"{name} is required but not set")
        return default

    def str(self, name: str, default=_UNSET) -> str | None:
        return self.raw(name, default)

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name, None)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")

    def int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.raw(name, None)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
        return number

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name, None)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.raw(name, None) or default).strip().lower()
        if value not in choices:
            raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def database(self, name: str, default: str) -> dict:
        url = self.raw(name, None) or default
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
            raise ImproperlyConfigured(
                f"{name} must be a sqlite:/// or postgres:// URL, got scheme {scheme or url!r}"
            )
        try:
            return environ.Env.db_url_config(url)
        except Exception as exc:  # environ raises assorted errors on malformed URLs
            raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None

    def redis_url(self, name: str) -> str | None:
        url = self.raw(name, None)
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ImproperlyConfigured(f"{name} must be a redis:// or rediss:// URL, got {url!r}")
        return url or None
