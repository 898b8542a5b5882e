"""Configuration: TOML + environment, validation naming the key, exit code 2 from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from siestaflow_agent import cli
from siestaflow_agent.config import ConfigError, build, load

GOOD = """
api_url = "https://siestaflow.example.org"
api_key = "k3y"
work_dir = "{work}"
max_concurrent = 3
executor = "slurm"

[slurm]
partition = "normal"
time_limit = "01:00:00"
ntasks = 8
extra_sbatch = ["--mem=8G"]
setup = ["module load siesta"]

[engines]
siesta = "mpirun -np {{ntasks}} siesta"

[cleanup]
patterns = ["*.TSHS"]
size_threshold = "100M"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text.format(work=tmp_path / "work"))
    return path


def test_it_reads_every_table(tmp_path):
    config = load(write(tmp_path, GOOD), environ={})
    assert config.api_url == "https://siestaflow.example.org"
    assert config.work_dir == (tmp_path / "work").resolve()
    assert config.max_concurrent == 3
    assert config.slurm.partition == "normal" and config.slurm.extra_sbatch == ("--mem=8G",)
    assert config.slurm.setup == ("module load siesta",)
    assert config.step_ntasks == 8  # Slurm's ntasks, not the local one
    assert config.engines["siesta"] == "mpirun -np {ntasks} siesta"
    assert config.cleanup.patterns == ("*.TSHS",) and config.cleanup.size_threshold == 100 * 1024**2


def test_it_lets_the_environment_override_the_file(tmp_path):
    environ = {"SIESTAFLOW_AGENT_API_KEY": "from-env", "SIESTAFLOW_AGENT_MAX_CONCURRENT": "5",
               "SIESTAFLOW_AGENT_SLURM_PARTITION": "debug"}
    config = load(write(tmp_path, GOOD), environ=environ)
    assert (config.api_key, config.max_concurrent, config.slurm.partition) == ("from-env", 5, "debug")


def test_it_reads_the_key_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("secret-key\n")
    config = build({"api_url": "http://h", "api_key_file": str(key_file), "work_dir": str(tmp_path)})
    assert config.api_key == "secret-key"


@pytest.mark.parametrize(("change", "key"), [
    ({"api_key": ""}, "api_key"),
    ({"api_key": "two words"}, "api_key"),
    ({"api_url": "ftp://x"}, "api_url"),
    ({"max_concurrent": 0}, "max_concurrent"),
    ({"max_concurrent": "many"}, "max_concurrent"),
    ({"claim_wait": 31}, "claim_wait"),
    ({"executor": "pbs"}, "executor"),
    ({"api-key": "x"}, "api-key"),
    ({"engines": {"siesta": "mpirun -np {cores} siesta"}}, "engines.siesta"),
    ({"slurm": {"partiton": "x"}}, "slurm.partiton"),
    ({"cleanup": {"size_threshold": "big"}}, "cleanup.size_threshold"),
    ({"programs": {"toy": {"inputs": {}}}}, "programs.toy"),
    ({"programs": {"toy": {"command": "x", "failure": [{"pattern": "E", "class": "bad"}]}}}, "programs.toy"),
])
def test_it_names_the_bad_key(tmp_path, change, key):
    raw = {"api_url": "http://h", "api_key": "k", "work_dir": str(tmp_path), **change}
    with pytest.raises(ConfigError) as error:
        build(raw)
    assert error.value.key == key
    assert str(error.value).startswith(key)


def test_it_requires_the_api_key(tmp_path):
    with pytest.raises(ConfigError) as error:
        build({"api_url": "http://h", "work_dir": str(tmp_path)})
    assert error.value.key == "api_key"
    assert "SIESTAFLOW_AGENT_API_KEY" in str(error.value)


def test_the_cli_exits_2_naming_a_missing_key(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SIESTAFLOW_AGENT_API_KEY", raising=False)
    path = write(tmp_path, GOOD.replace('api_key = "k3y"\n', ""))
    assert cli.main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "api_key" in err and str(path) in err


def test_the_cli_exits_2_for_a_bad_value(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("max_concurrent = 3", "max_concurrent = -1"))
    assert cli.main(["run", "--config", str(path)]) == 2
    assert "max_concurrent: must be at least 1" in capsys.readouterr().err


def test_the_cli_exits_2_for_broken_toml(tmp_path, capsys):
    path = tmp_path / "agent.toml"
    path.write_text("api_url = \n")
    assert cli.main(["check", "-c", str(path)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_the_console_entry_point_prints_the_version():
    from siestaflow_agent import __version__

    done = subprocess.run([sys.executable, "-m", "siestaflow_agent.cli", "version"], capture_output=True,
                          text=True, check=False, env={"PYTHONPATH": str(Path(cli.__file__).parents[1])})
    assert done.returncode == 0
    assert done.stdout.strip() == f"siestaflow-agent {__version__}"
