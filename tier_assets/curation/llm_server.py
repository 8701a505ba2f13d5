"""A small OpenAI-compatible HTTP server over a local ``TransformersLLM``.

Why ship one: the OpenAI backend must be testable against a real endpoint
without network access, and a team without vLLM can still share one local
model between processes. It serves ``GET /v1/models``, ``POST /v1/chat/completions``
(with ``logprobs`` / ``top_logprobs`` from the model's raw logits) and
``POST /v1/completions`` (with ``echo`` + ``logprobs`` for perplexity).
Requests are handled on threads; forward passes are serialized by the model's lock.

It binds 127.0.0.1 by default and refuses, with an OpenAI-shaped JSON error, request bodies over a size
cap (413, judged from ``Content-Length`` before reading the body; 411 without one) and ``max_tokens``
over a limit (400), so one client cannot exhaust the memory or monopolize the shared model.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tier_assets.curation.models.llm import TransformersLLM, load_llm

MAX_TOP_LOGPROBS = 20
DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: far above any prompt that fits the model's context
DEFAULT_MAX_TOKENS = 2048
CHAT_DEFAULT_MAX_TOKENS = 256
READ_TIMEOUT_S = 60  # a client that announces a body and never sends it does not hold a thread forever
LINGER_S, LINGER_BYTES = 2.0, 1 << 20  # after refusing an unread body: how long / how much to discard


@dataclass(frozen=True)
class ServerLimits:
    """Caps on what one request may ask of the shared model."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_tokens: int = DEFAULT_MAX_TOKENS

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.max_tokens < 1:
            raise ValueError(f"server limits must be positive, got {self}")


class BadRequest(ValueError):
    """A request the server refuses with HTTP 400 (message goes back to the client)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.param, self.status, self.code = param, status, code


def requested_max_tokens(body: dict[str, Any], default: int, limit: int, minimum: int = 1) -> int:
    """``max_tokens`` (or ``max_completion_tokens``) from ``body``, refused outside ``minimum..limit``."""
    param = "max_tokens" if "max_tokens" in body else "max_completion_tokens"
    raw = body.get(param)
    if raw is None:
        return min(default, limit)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise BadRequest(f"{param} must be an integer, got {raw!r}", param=param)
    if raw > limit:
        raise BadRequest(f"{param} {raw} exceeds this server's limit of {limit}", param=param)
    if raw < minimum:
        raise BadRequest(f"{param} must be at least {minimum}, got {raw}", param=param)
    return raw


def body_length(content_lengths: list[str], chunked: bool, max_body_bytes: int) -> int:
    """The body size a request announces, refused (411 / 400 / 413) before any of it is read."""
    if chunked:
        raise BadRequest("chunked request bodies are not accepted; send Content-Length", status=411,
                         code="length_required")
    if not content_lengths:
        raise BadRequest("a Content-Length header is required", status=411, code="length_required")
    values = {v.strip() for v in content_lengths}
    if len(values) > 1 or not re.fullmatch(r"[0-9]+", next(iter(values))):
        raise BadRequest(f"invalid Content-Length {', '.join(sorted(values))!r}", code="invalid_content_length")
    length = int(next(iter(values)))
    if length > max_body_bytes:
        raise BadRequest(f"request body of {length} bytes exceeds this server's limit of {max_body_bytes} bytes",
                         status=413, code="request_too_large")
    return length


def _top_entries(top: list[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"token": t, "logprob": v, "bytes": list(t.encode("utf-8"))} for t, v in top]


def check_length(llm: TransformersLLM, ids: list[int]) -> None:
    """Refuse prompts past the context budget, as vLLM does, rather than cut them silently."""
    if len(ids) > llm.max_input_tokens:
        raise BadRequest(f"prompt has {len(ids)} tokens; this server accepts at most {llm.max_input_tokens}")


def chat_completion(llm: TransformersLLM, body: dict[str, Any], limits: ServerLimits) -> dict[str, Any]:
    """The ``/v1/chat/completions`` response for ``body`` (one choice)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list", param="messages")
    max_tokens = requested_max_tokens(body, CHAT_DEFAULT_MAX_TOKENS, limits.max_tokens)
    top_n = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
    if not 0 <= top_n <= MAX_TOP_LOGPROBS:
        raise BadRequest(f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")
    ids = llm.tokenizer(llm.chat_text(messages), add_special_tokens=False)["input_ids"]
    check_length(llm, ids)
    gens, details = llm.generate_ids([ids], max_tokens, float(body.get("temperature") or 0.0),
                                     top_logprobs=max(top_n, 1) if body.get("logprobs") else 0)
    gen = gens[0]
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": gen.text},
                              "finish_reason": gen.finish_reason, "logprobs": None}
    if body.get("logprobs"):
        choice["logprobs"] = {"content": [
            {"token": s["token"], "logprob": s["logprob"], "bytes": list(s["token"].encode("utf-8")),
             "top_logprobs": _top_entries(s["top"][:top_n])} for s in details[0]]}
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": llm.model_id, "choices": [choice],
            "usage": {"prompt_tokens": gen.tokens_in, "completion_tokens": gen.tokens_out,
                      "total_tokens": gen.tokens_in + gen.tokens_out}}


def completion(llm: TransformersLLM, body: dict[str, Any], limits: ServerLimits) -> dict[str, Any]:
    """The ``/v1/completions`` response: raw-text continuation, optional echo of prompt log-probs."""
    prompts = body.get("prompt")
    prompts = [prompts] if isinstance(prompts, str) else prompts
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise BadRequest("prompt must be a string or a list of strings", param="prompt")
    max_tokens = requested_max_tokens(body, 16, limits.max_tokens, minimum=0)
    n_logprobs = body.get("logprobs")
    echo = bool(body.get("echo"))
    choices, used_in, used_out = [], 0, 0
    for index, prompt in enumerate(prompts):
        enc = llm.tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        check_length(llm, ids)
        gen = None
        if max_tokens > 0:
            gen = llm.generate_ids([ids], max_tokens, float(body.get("temperature") or 0.0),
                                   top_logprobs=int(n_logprobs or 0))
        text = (prompt if echo else "") + (gen[0][0].text if gen else "")
        logprobs = None
        if n_logprobs is not None:
            tokens: list[str] = []
            values: list[float | None] = []
            tops: list[dict[str, float] | None] = []
            offsets: list[int] = []
            if echo:
                toks, lps = llm.token_logprobs([prompt], len(ids))[0]
                tokens, values, tops = list(toks), list(lps), [None] * len(toks)
                offsets = [start for start, _ in enc["offset_mapping"]]
            pos = len(prompt) if echo else 0
            for step in gen[1][0] if gen else []:
                tokens.append(step["token"])
                values.append(step["logprob"])
                tops.append(dict(step["top"][: int(n_logprobs)]))
                offsets.append(pos)
                pos += len(step["token"])
            logprobs = {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": offsets}
        choices.append({"index": index, "text": text, "logprobs": logprobs,
                        "finish_reason": gen[0][0].finish_reason if gen else "length"})
        used_in += len(ids)
        used_out += gen[0][0].tokens_out if gen else 0
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": llm.model_id, "choices": choices,
            "usage": {"prompt_tokens": used_in, "completion_tokens": used_out, "total_tokens": used_in + used_out}}


def make_handler(llm: TransformersLLM, limits: ServerLimits | None = None) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``llm`` and ``limits``."""
    limits = limits or ServerLimits()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = READ_TIMEOUT_S

        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and CLIs own stdout
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
            kind = "invalid_request_error" if status < 500 else "server_error"
            self._send(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})
            if self.close_connection:
                self._linger()

        def _linger(self) -> None:
            """Finish sending, then discard a bounded part of the unread body: closing a socket with unread
            data resets the connection, and the client could lose the refusal it has not read yet."""
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(LINGER_S)
                discarded = 0
                while discarded < LINGER_BYTES:
                    chunk = self.connection.recv(65536)
                    if not chunk:
                        break
                    discarded += len(chunk)
            except OSError:
                pass  # the client went away or stayed silent: nothing left to protect

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [
                    {"id": llm.model_id, "object": "model", "owned_by": "tier_assets"}]})
            else:
                self._error(404, f"no route {self.path}")

        def _announced_length(self) -> int:
            try:
                return body_length(self.headers.get_all("Content-Length") or [],
                                   "chunked" in (self.headers.get("Transfer-Encoding") or "").lower(),
                                   limits.max_body_bytes)
            except BadRequest:
                self.close_connection = True  # the unread body must not be parsed as the next request
                raise

        def handle_expect_100(self) -> bool:
            """Answer ``Expect: 100-continue`` with the refusal itself, so the client never sends the body."""
            try:
                self._announced_length()
            except BadRequest as err:
                self._error(err.status, str(err), err.param, err.code)
                return False
            return super().handle_expect_100()

        def _read_body(self) -> bytes:
            """The request body, refused before reading when its announced size is missing, bad or too big."""
            length = self._announced_length()
            raw = self.rfile.read(length)
            if len(raw) < length:
                self.close_connection = True
                raise BadRequest(f"request body ended after {len(raw)} of {length} bytes")
            return raw

        def do_POST(self) -> None:
            routes = {"/v1/chat/completions": chat_completion, "/v1/completions": completion}
            route = routes.get(self.path.rstrip("/"))
            try:
                raw = self._read_body()
                if route is None:
                    self._error(404, f"no route {self.path}")
                    return
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise BadRequest("the request body must be a JSON object")
                self._send(200, route(llm, body, limits))
            except BadRequest as err:
                self._error(err.status, str(err), err.param, err.code)
            except (json.JSONDecodeError, TypeError, ValueError) as err:
                self._error(400, str(err))
            except Exception as err:  # the server stays up; the client sees a retryable 500
                self._error(500, f"{type(err).__name__}: {err}")

    return Handler


class BindError(OSError):
    """The server cannot listen on host:port (in use, not an address of this machine, a privileged port)."""


def build_server(host: str = "127.0.0.1", port: int = 8000, model: str | None = None,
                 llm: TransformersLLM | None = None, limits: ServerLimits | None = None) -> ThreadingHTTPServer:
    """A bound (not yet serving) server; ``port=0`` picks a free port.

    The socket is bound before the model loads, so a port in use fails at once (``BindError``)
    instead of after minutes of loading; the handler is attached once the model is there.
    """
    try:
        server = ThreadingHTTPServer((host, port), BaseHTTPRequestHandler)
    except OSError as exc:
        raise BindError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        llm = llm or load_llm({"backend": "transformers", "model": model})
        if not isinstance(llm, TransformersLLM):
            raise TypeError("the server serves a local TransformersLLM")
    except BaseException:
        server.server_close()
        raise
    server.RequestHandlerClass = make_handler(llm, limits)
    server.daemon_threads = True
    return server


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(host: str = "127.0.0.1", port: int = 8000, model: str | None = None,
          limits: ServerLimits | None = None) -> None:
    """Serve ``model`` (default: the embedded SmolLM2) until interrupted."""
    limits = limits or ServerLimits()
    server = build_server(host, port, model, limits=limits)
    # SIGTERM (systemd, Kubernetes, `kill`) shuts down like Ctrl-C; set explicitly, since a parent that
    # ignores SIGTERM would otherwise pass the ignoring on to this process
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"serving an OpenAI-compatible API on http://{host}:{server.server_address[1]}/v1 "
          f"(max body {limits.max_body_bytes} bytes, max_tokens <= {limits.max_tokens})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@dataclass
class RunningServer:
    """A server running on a background thread; ``close`` stops it."""

    server: ThreadingHTTPServer
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_server_in_thread(llm: TransformersLLM | None = None, host: str = "127.0.0.1", port: int = 0,
                         model: str | None = None, limits: ServerLimits | None = None) -> RunningServer:
    """Start a server on a daemon thread (tests: port 0 = a random free port)."""
    server = build_server(host, port, model, llm, limits)
    thread = threading.Thread(target=server.serve_forever, name="llm-server", daemon=True)
    thread.start()
    return RunningServer(server, thread)
