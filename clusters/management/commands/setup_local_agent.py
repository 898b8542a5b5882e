"""Register this machine as cluster ``local`` and write its agent's configuration (the demo).

Safe to run again: the cluster is created once (and kept enabled), the API key in the
configuration file is reused while the server still accepts it, and a new one is made only
when the file or its key is gone (the server keeps only the key's hash, so the file is the
one copy; it is written readable by its owner only).
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from siestaflow_agent.config import to_toml
from siestaflow_agent.engines.pyscf_engine import DEFAULT_COMMAND as PYSCF_COMMAND

from accounts.models import User
from clusters import services

KEY_NAME = "local agent"
DESCRIPTION = "This machine: the local agent bin/demo starts (PySCF; SIESTA when installed)."


class Command(BaseCommand):
    help = "Create or update cluster 'local' and write the local agent's configuration (mode 0600)."

    def add_arguments(self, parser):
        port = os.environ.get("PORT", "8000")
        parser.add_argument("--name", default="local", help="cluster name (default: local)")
        parser.add_argument("--api-url", default=f"http://127.0.0.1:{port}", help="the server, as the agent reaches it")
        parser.add_argument("--config", type=Path, default=settings.VAR_DIR / "agent" / "agent.toml")
        parser.add_argument("--work-dir", type=Path, default=settings.VAR_DIR / "agent" / "work")
        parser.add_argument("--admin", default="admin", help="the admin recorded as the key's creator")

    def handle(self, *args, **options):
        admin = User.objects.filter(username=options["admin"], role=User.Role.ADMIN, is_active=True).first()
        if admin is None:
            raise CommandError(f"No active admin {options['admin']!r}: run 'manage.py bootstrap_demo' first.")
        path: Path = options["config"].resolve()
        cluster, key_text, how = services.provision_agent(
            actor=admin, name=options["name"], key_name=KEY_NAME, held_key=_stored_key(path), description=DESCRIPTION)
        write_config(path, agent_config(options["api_url"], key_text, options["work_dir"].resolve()))
        self.stdout.write(self.style.SUCCESS(
            f"Cluster {cluster.name}: API key {how}; agent configuration in {path} (mode 0600)."))


def _stored_key(path: Path) -> str | None:
    """The key the agent's configuration holds (None: no file, or no key in it)."""
    try:
        key = tomllib.loads(path.read_text()).get("api_key")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return key if isinstance(key, str) else None


def agent_config(api_url: str, api_key: str, work_dir: Path) -> dict:
    """The local agent's settings: the local executor, PySCF, and SIESTA when it is installed."""
    engines = {"pyscf": PYSCF_COMMAND}
    engines.update({program: program for program in ("siesta", "tbtrans") if shutil.which(program)})
    return {"api_url": api_url, "api_key": api_key, "work_dir": str(work_dir), "executor": "local",
            "heartbeat_interval": 10, "poll_interval": 1, "claim_wait": 5, "max_concurrent": 2,
            "engines": engines}


def write_config(path: Path, values: dict) -> None:
    """Write atomically, readable by the owner only (the file holds the API key)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(to_toml(values))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
