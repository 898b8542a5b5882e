"""``mlmodels.docker`` without an engine: its errors when none answers, and its HTTP side
(/ping, /invocations) against a real local server."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlmodels import docker


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, body: bytes, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        if self.server.ping_status == 200:
            return self._send(200, b"")
        return self._send(self.server.ping_status, b'{"error": "loading weights"}')

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        mode = self.server.mode
        if mode == "slow":
            time.sleep(1.5)
        if mode == "large":
            return self._send(200, b"x" * 5000, "text/plain")
        echo = {"body": body.decode(), "content_type": self.headers["Content-Type"], "accept": self.headers["Accept"]}
        return self._send(200, json.dumps(echo).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.ping_status, httpd.mode = 200, "echo"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _address(httpd) -> str:
    return f"127.0.0.1:{httpd.server_address[1]}"


def test_it_says_which_engine_does_not_answer(settings, tmp_path):
    settings.DOCKER_HOST = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(docker.DockerUnavailable, match=f"No Docker engine answers at unix://{tmp_path}/nothing.sock"):
        docker.engine_version()


def test_it_pings(server):
    ping = docker.ping(_address(server))
    assert (ping.ok, ping.status, ping.error) == (True, 200, "") and ping.latency_ms > 0
    server.ping_status = 503
    ping = docker.ping(_address(server))
    assert (ping.ok, ping.status, ping.error) == (False, 503, "/ping answered 503: loading weights")


def test_it_pings_nothing_without_raising(server):
    address = _address(server)
    server.shutdown()
    server.server_close()
    ping = docker.ping(address, timeout=0.5)
    assert (ping.ok, ping.status) == (False, None) and ping.error.startswith("/ping failed")


def test_it_invokes_with_the_body_content_type_and_accept(server):
    reply = docker.invoke(_address(server), b"1,2\n", content_type="text/csv", accept="text/csv", timeout=5,
                          max_bytes=10_000)
    assert reply.ok and json.loads(reply.body) == {"body": "1,2\n", "content_type": "text/csv", "accept": "text/csv"}


def test_it_gives_up_on_a_slow_server(server):
    server.mode = "slow"
    with pytest.raises(docker.ContainerTimeout, match="did not answer within 0.3 s"):
        docker.invoke(_address(server), b"{}", content_type="application/json", timeout=0.3, max_bytes=10_000)


def test_it_refuses_an_answer_over_the_limit(server):
    server.mode = "large"
    with pytest.raises(docker.ResponseTooLarge, match="5000 bytes, over the 4096"):
        docker.invoke(_address(server), b"{}", content_type="application/json", timeout=5, max_bytes=4096)


def test_it_says_when_nothing_listens(server):
    address = _address(server)
    server.shutdown()
    server.server_close()
    with pytest.raises(docker.ContainerUnreachable, match="does not accept connections"):
        docker.invoke(address, b"{}", content_type="application/json", timeout=1, max_bytes=10)


@pytest.mark.parametrize(("body", "ctype", "message"), [
    (b'{"error": "unknown element Xe"}', "application/json", "unknown element Xe"),
    (b'{"message": "bad shape"}', "application/json; charset=utf-8", "bad shape"),
    (b"plain failure\n", "text/plain", "plain failure"),
    (b"", "text/plain", "HTTP 500 with an empty body"),
])
def test_it_finds_the_models_message_in_its_answer(body, ctype, message):
    assert docker.Reply(500, body, ctype, 1.0).message() == message


def test_it_finds_no_free_port_when_all_are_taken():
    with pytest.raises(docker.NoFreePort):
        docker._free_port(range(65536))
    assert docker._free_port([]) > 0


def test_it_describes_a_container_state():
    assert docker.ContainerState("exited", 137, "", True).describe() == "exited with code 137 (out of memory)"
    assert docker.ContainerState("missing").describe() == "is gone"
