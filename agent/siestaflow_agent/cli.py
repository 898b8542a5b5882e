"""``siestaflow-agent``: ``run`` (the service, in the foreground), ``check`` and ``version``.

Exit codes: 0 fine; 1 ``check`` found problems; 2 bad or missing configuration (the message
names the key).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from siestaflow_agent import __version__

if TYPE_CHECKING:  # the commands import what they need, so `version` stays instant
    from siestaflow_agent.config import AgentConfig
    from siestaflow_agent.schedulers.base import Executor

DEFAULT_CONFIG = Path("/etc/siestaflow/agent.toml")
LAUNCHERS = {"mpirun", "mpiexec", "srun", "env", "nice", "time", "numactl", "taskset"}
EXIT_PROBLEMS, EXIT_CONFIG = 1, 2

log = logging.getLogger("siestaflow_agent")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="siestaflow-agent", description="Runs siestaflow calculations.")
    parser.add_argument("--version", action="version", version=f"siestaflow-agent {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (("run", cmd_run, "run the agent in the foreground until SIGTERM/SIGINT"),
                             ("check", cmd_check, "check the configuration, the API key and the engines"),
                             ("version", cmd_version, "print the version")):
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(func=func)
        if name != "version":
            sub.add_argument("-c", "--config", type=Path, help=f"TOML file (default: $SIESTAFLOW_AGENT_CONFIG "
                                                               f"or {DEFAULT_CONFIG})")
            sub.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    return args.func(args)


def cmd_version(args: argparse.Namespace) -> int:
    """Print the version."""
    print(f"siestaflow-agent {__version__}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the service until SIGTERM or SIGINT."""
    from siestaflow_agent import shutdown
    from siestaflow_agent.client import Client
    from siestaflow_agent.loop import Agent

    config = load_config(args)
    if config is None:
        return EXIT_CONFIG
    _logging(args.verbose)
    stop, _previous = shutdown.install()
    client = Client(config.api_url, config.api_key, timeout=config.request_timeout, stop=stop)
    try:
        agent = Agent(config, client, make_executor(config), stop=stop)
    except (OSError, RuntimeError) as exc:
        print(f"siestaflow-agent: work_dir: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    agent.run()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Validate everything an agent needs; print each problem; exit 1 if there is any."""
    config = load_config(args)
    if config is None:
        return EXIT_CONFIG
    print(f"ok: configuration (api_url {config.api_url}, work_dir {config.work_dir}, executor {config.executor})")
    problems = [*check_work_dir(config.work_dir), *check_api(config), *check_engines(config)]
    for problem in problems:
        print(f"problem: {problem}")
    print("all checks passed" if not problems else f"{len(problems)} problem(s) found")
    return EXIT_PROBLEMS if problems else 0


def load_config(args: argparse.Namespace) -> AgentConfig | None:
    """The configuration, or ``None`` after printing which key is wrong."""
    from siestaflow_agent.config import ConfigError, load

    path = args.config or (Path(os.environ["SIESTAFLOW_AGENT_CONFIG"]) if os.environ.get("SIESTAFLOW_AGENT_CONFIG")
                           else None)
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    try:
        return load(path)
    except ConfigError as exc:
        where = f" in {path}" if path else ""
        print(f"siestaflow-agent: configuration error{where}: {exc}", file=sys.stderr)
        return None


def make_executor(config: AgentConfig) -> Executor:
    """The executor the configuration names (Slurm imported only when used)."""
    if config.executor == "slurm":
        from siestaflow_agent.schedulers.slurm import SlurmExecutor, SlurmOptions

        slurm = config.slurm
        return SlurmExecutor(SlurmOptions(partition=slurm.partition, account=slurm.account, qos=slurm.qos,
                                          time_limit=slurm.time_limit, extra_sbatch=slurm.extra_sbatch,
                                          setup=slurm.setup, interpreter=slurm.interpreter))
    from siestaflow_agent.schedulers.local import LocalExecutor

    return LocalExecutor()


def check_work_dir(work_dir: Path) -> list[str]:
    """Problems with the work folder (it is created if missing)."""
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=work_dir):
            pass
    except OSError as exc:
        return [f"work_dir {work_dir} is not writable: {exc}"]
    free = shutil.disk_usage(work_dir).free
    print(f"ok: work_dir writable, {free / 2**30:.1f} GiB free")
    return []


def check_api(config: AgentConfig) -> list[str]:
    """Reach the API with the key, without a heartbeat (which would renew leases)."""
    from siestaflow_agent.client import AuthError, Client, TransientError

    client = Client(config.api_url, config.api_key, timeout=min(config.request_timeout, 15), retries=1)
    try:
        pending = client.list_pending()
    except AuthError as exc:
        return [f"api_key rejected by the server ({exc.status}): {exc.detail or exc}"]
    except TransientError as exc:
        return [f"api_url: cannot reach the server: {exc}"]
    except Exception as exc:  # any other answer is a problem to report, not a crash
        return [f"api_url: unexpected answer: {exc}"]
    print(f"ok: API reachable with the key; {len(pending)} calculation(s) waiting")
    return []


def check_engines(config: AgentConfig) -> list[str]:
    """Engine executables on PATH, the optional engines importable, Slurm's tools present."""
    from siestaflow_agent import engines

    engines.load_optional()
    problems = []
    for name in config.engines:
        if name in engines.UNAVAILABLE:
            problems.append(f"engines.{name}: the engine does not load: {engines.UNAVAILABLE[name]}")
    words = {f"engines.{name}": executables(t) for name, t in config.engines.items()}
    words.update({f"programs.{name}": executables(" ".join(p.command)) for name, p in config.programs.items()})
    for key, programs in words.items():
        problems += [f"{key}: {p!r} not found on PATH" for p in programs if not found_on_path(p)]
    if "pyscf" in config.engines and importlib.util.find_spec("pyscf") is None:
        problems.append("engines.pyscf: PySCF is not installed (pip install 'siestaflow-agent[pyscf]')")
    if config.executor == "slurm":
        problems += [f"executor slurm: {tool!r} not found on PATH" for tool in ("sbatch", "scontrol", "scancel")
                     if not shutil.which(tool)]
    if not problems:
        print(f"ok: engines {', '.join(engines.available(config)) or 'none'}")
    return problems


def executables(template: str) -> list[str]:
    """The programs a command template starts: its first word and, after a launcher such as
    ``mpirun``, the first plain word not taken as an option's value."""
    try:
        words = shlex.split(template.format(ntasks=1, python=sys.executable, label="label", workdir="."))
    except (ValueError, KeyError, IndexError):
        return []
    if not words:
        return []
    found = [words[0]]
    if os.path.basename(words[0]) in LAUNCHERS:
        for previous, word in zip(words[:-1], words[1:], strict=True):
            option_value = previous.startswith("-") and "=" not in previous
            if not word.startswith("-") and "=" not in word and not word.isdigit() and not option_value:
                found.append(word)
                break
    return found


def found_on_path(program: str) -> bool:
    """Is ``program`` (a name looked up on PATH, or a path) an executable?"""
    if os.sep in program:
        return os.access(program, os.X_OK)
    return shutil.which(program) is not None


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


if __name__ == "__main__":
    sys.exit(main())
