"""The example model of ``examples/models``: training on a dataset export, and its server run
as a plain process (the same program the image runs), asked through ``mlmodels.docker``."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlmodels import docker

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "models"
SAMPLE = EXAMPLE / "sample-dataset.jsonl"


def _train(tmp_path, *args) -> dict:
    out = tmp_path / "model"
    subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(SAMPLE), "-o", str(out), *args], check=True,
                   capture_output=True, timeout=60)
    return json.loads((out / "model.json").read_text())


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("example")
    _train(path)
    return path / "model"


def test_it_fits_energy_per_element_from_the_export(tmp_path):
    model = _train(tmp_path)
    weights = dict(zip(model["elements"], model["weights"], strict=True))
    assert model["elements"] == ["C", "H", "N", "O"]
    # the sample's energies are atomic references minus ~2.5 eV per bond: close to the references
    for element, reference in {"H": -13.21, "C": -147.52, "N": -263.87, "O": -432.06}.items():
        assert abs(weights[element] - reference) < 5
    assert model["metrics"]["test_rmse"] < 0.5 and model["metrics"]["rows"] == 25
    snapshot = model["dataset_snapshot"]
    assert (snapshot["rows_used"], snapshot["rows_skipped"], len(snapshot["sha256"])) == (25, 1, 64)


def test_it_refuses_an_export_without_usable_rows(tmp_path):
    export = tmp_path / "empty.jsonl"
    export.write_text(json.dumps({"id": 1, "structure": None, "results": []}) + "\n")
    result = subprocess.run([sys.executable, str(EXAMPLE / "train.py"), str(export), "-o", str(tmp_path / "m")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "0 usable rows" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve(model_dir):
    processes = []

    def start(model_path=model_dir, *args):
        port = _free_port()
        env = {**os.environ, "SM_MODEL_DIR": str(model_path), "SAGEMAKER_BIND_TO_PORT": str(port),
               "MODEL_SERVER_HOST": "127.0.0.1"}
        process = subprocess.Popen([sys.executable, str(EXAMPLE / "serve"), *args], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        processes.append(process)
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and docker.ping(address, timeout=0.5).status is None:
            time.sleep(0.05)
        return address, process

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def _invoke(address, body: bytes, ctype="application/json") -> docker.Reply:
    return docker.invoke(address, body, content_type=ctype, timeout=5, max_bytes=100_000)


def test_it_serves_predictions_for_structures_compositions_and_formulas(serve, model_dir):
    address, _ = serve()
    assert docker.ping(address).ok
    spec = json.loads((model_dir / "model.json").read_text())
    w = dict(zip(spec["elements"], spec["weights"], strict=True))
    body = {"instances": [{"species": ["O", "H", "H"], "positions": [[0, 0, 0]] * 3}, {"C": 1, "H": 4}, "NH3"]}
    reply = _invoke(address, json.dumps(body).encode())
    assert reply.ok and reply.content_type == "application/json"
    predictions = json.loads(reply.body)["predictions"]
    expected = [spec["bias"] + w["O"] + 2 * w["H"], spec["bias"] + w["C"] + 4 * w["H"],
                spec["bias"] + w["N"] + 3 * w["H"]]
    assert predictions == pytest.approx(expected)


@pytest.mark.parametrize(("body", "ctype", "status", "message"), [
    (b"hello", "text/plain", 415, "send application/json, not text/plain"),
    (b"hello", "application/json", 400, "invalid JSON"),
    (b'{"instances": ["Xe2"]}', "application/json", 400, "elements not in the training data: Xe"),
    (b'{"instances": ["h2o"]}', "application/json", 400, "not a formula"),
    (b'{"rows": []}', "application/json", 400, "send {\"instances\": [...]} or a list"),
])
def test_it_answers_bad_input_with_4xx_and_a_message(serve, body, ctype, status, message):
    address, _ = serve()
    reply = _invoke(address, body, ctype)
    assert reply.status == status and message in reply.message()


def test_it_is_not_ready_without_its_model(serve, tmp_path):
    address, _ = serve(tmp_path / "nothing-here")
    ping = docker.ping(address)
    assert ping.status == 503 and "could not load the model" in ping.error


def test_it_refuses_other_commands_than_serve(model_dir):
    result = subprocess.run([sys.executable, str(EXAMPLE / "serve"), "train"], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "SM_MODEL_DIR": str(model_dir)})
    assert result.returncode == 2 and "this image only serves" in result.stderr
