"""serve-llm's limits over real HTTP on 127.0.0.1: oversized bodies (judged from Content-Length, before
reading), missing or bad Content-Length and max_tokens over the limit get a 4xx with an OpenAI-shaped
JSON error; requests within the limits are served by the real model."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tier_assets.cli import build_parser
from tier_assets.curation.llm_server import ServerLimits, build_server, run_server_in_thread
from tier_assets.curation.models.llm import load_llm

from .conftest import REPO

pytestmark = pytest.mark.slow
BODY_CAP, TOKENS_CAP = 4096, 8
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def llm():
    return load_llm()


@pytest.fixture(scope="module")
def server(llm):
    with run_server_in_thread(llm, limits=ServerLimits(max_body_bytes=BODY_CAP, max_tokens=TOKENS_CAP)) as running:
        yield running.server.server_address[1]


def _exchange(port: int, head: str, body: bytes = b"", half_close: bool = False):
    """Send raw request bytes; return (status, JSON body, whether the server then closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        payload = json.loads(resp.read())
        closed = resp.will_close
        return resp.status, payload, closed


def _post(port: int, path: str, obj: dict, extra: str = ""):
    body = json.dumps(obj).encode()
    return _exchange(port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}", body)


def _assert_openai_error(payload: dict, *words: str) -> dict:
    err = payload["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["type"] == "invalid_request_error"
    for word in words:
        assert word in err["message"], err
    return err


def test_binds_loopback_by_default(llm):
    server = build_server(port=0, llm=llm)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    args = build_parser().parse_args(["serve-llm"])
    assert (args.host, args.max_body_bytes, args.max_tokens_limit) == ("127.0.0.1", 1 << 20, 2048)


def test_requests_within_limits_are_served(server):
    status, payload, _ = _post(server, CHAT, {"messages": [{"role": "user", "content": "Say hi."}],
                                              "max_tokens": TOKENS_CAP})
    assert status == 200 and 1 <= payload["usage"]["completion_tokens"] <= TOKENS_CAP
    status, payload, _ = _post(server, "/v1/completions", {"prompt": "One, two,", "max_tokens": 0, "echo": True,
                                                           "logprobs": 0})
    assert status == 200 and payload["choices"][0]["text"] == "One, two,"


@pytest.mark.parametrize("path, field", [(CHAT, "max_tokens"), (CHAT, "max_completion_tokens"),
                                         ("/v1/completions", "max_tokens")])
def test_max_tokens_over_the_limit_is_refused(server, path, field):
    body = {"messages": [{"role": "user", "content": "hi"}]} if path == CHAT else {"prompt": "hi"}
    status, payload, _ = _post(server, path, {**body, field: TOKENS_CAP + 1})
    assert status == 400
    err = _assert_openai_error(payload, f"{field} {TOKENS_CAP + 1}", f"limit of {TOKENS_CAP}")
    assert err["param"] == field


@pytest.mark.parametrize("value, words", [("lots", "must be an integer"), (2.5, "must be an integer"),
                                          (True, "must be an integer"), (-1, "at least 1")])
def test_bad_max_tokens_is_refused(server, value, words):
    status, payload, _ = _post(server, CHAT, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": value})
    assert status == 400
    _assert_openai_error(payload, words)


def test_oversized_body_is_refused_from_its_content_length_without_reading_it(server):
    # a gigabyte is announced and none of it is sent: the answer can only come from the header
    status, payload, closed = _exchange(server, f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**9}\r\n")
    assert status == 413 and closed
    err = _assert_openai_error(payload, f"{10**9} bytes", f"limit of {BODY_CAP} bytes")
    assert err["code"] == "request_too_large"
    # a client that asks first (Expect: 100-continue) gets the refusal instead of "100 Continue"
    status, payload, _ = _exchange(
        server, f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_CAP + 1}\r\nExpect: 100-continue\r\n")
    assert status == 413 and payload["error"]["code"] == "request_too_large"


def test_body_at_the_cap_is_accepted(server):
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}).encode()
    body += b" " * (BODY_CAP - len(body))  # JSON allows trailing whitespace
    status, payload, _ = _exchange(server, f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_CAP}\r\n", body)
    assert status == 200 and payload["object"] == "chat.completion"


@pytest.mark.parametrize("headers, status, words", [
    ("", 411, "Content-Length header is required"),
    ("Transfer-Encoding: chunked\r\n", 411, "chunked"),
    ("Content-Length: abc\r\n", 400, "invalid Content-Length"),
    ("Content-Length: -5\r\n", 400, "invalid Content-Length"),
    ("Content-Length: 10\r\nContent-Length: 99\r\n", 400, "invalid Content-Length"),
])
def test_missing_or_invalid_content_length_is_refused(server, headers, status, words):
    got, payload, closed = _exchange(server, f"POST {CHAT} HTTP/1.1\r\nHost: x\r\n{headers}")
    assert got == status and closed
    _assert_openai_error(payload, words)


def test_body_shorter_than_announced_is_refused(server):
    status, payload, _ = _exchange(server, f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n",
                                   b'{"messages"', half_close=True)
    assert status == 400
    _assert_openai_error(payload, "ended after 11 of 100 bytes")


def test_server_keeps_serving_after_refusals(server):
    _exchange(server, f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {10**9}\r\n")
    status, payload, _ = _exchange(server, "GET /v1/models HTTP/1.1\r\nHost: x\r\n")
    assert status == 200 and payload["data"][0]["object"] == "model"


def test_cli_flags_set_the_limits(tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Path(sys.executable).parent / "tier-assets"
    proc = subprocess.Popen([str(cli), "serve-llm", "--port", str(port), "--max-body-bytes", "300",
                             "--max-tokens-limit", "3"], cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # the "serving" line is printed once the socket is bound (libraries may print before it)
        line = next((out for out in iter(proc.stdout.readline, "") if "serving" in out), "")
        assert f"127.0.0.1:{port}/v1" in line and "max body 300 bytes" in line, line
        status, payload, _ = _post(port, CHAT, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4})
        assert status == 400 and "limit of 3" in payload["error"]["message"]
        status, payload, _ = _post(port, CHAT, {"messages": [{"role": "user", "content": "x" * 300}]})
        assert status == 413 and "limit of 300 bytes" in payload["error"]["message"]
    finally:
        proc.terminate()
        try:
            returncode = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave a server behind, then fail
            proc.wait()
            raise
    assert returncode == 0  # SIGTERM is a clean shutdown
    bad = subprocess.run([str(cli), "serve-llm", "--max-tokens-limit", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "expected a whole number >= 1" in bad.stderr
