"""Local stand-ins on 127.0.0.1 for what cannot be reached from a test: a model provider's HTTP API (OpenAI's
and Anthropic's wire formats, JSON and server-sent events), and a governance service that is failing (a fixed
status, or too slow). Each records what reached it, so a test can assert that nothing did."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY = "Hello from the stand-in."


@dataclass
class Received:
    method: str
    path: str
    body: Any
    headers: dict[str, str]
    client_port: int = 0  # the caller's port: the same one for requests over one kept-alive connection


@dataclass
class StandIn:
    url: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, item: Received) -> None:
        with self.lock:
            self.received.append(item)

    def requests(self) -> list[Received]:
        with self.lock:
            return list(self.received)


def _sse(events: list[tuple[str | None, Any]]) -> bytes:
    lines = []
    for name, data in events:
        if name:
            lines.append(f"event: {name}")
        lines.append(f"data: {data if isinstance(data, str) else json.dumps(data)}")
        lines.append("")
    return ("\n".join(lines) + "\n").encode()


def _chat_completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }


def _chat_chunks(model: str) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    words = REPLY.split(" ")
    events: list[tuple[str | None, Any]] = [(None, chunk({"role": "assistant", "content": ""}, None))]
    events += [(None, chunk({"content": (" " if i else "") + word}, None)) for i, word in enumerate(words)]
    events += [(None, chunk({}, "stop")), (None, "[DONE]")]
    return _sse(events)


def _response(model: str) -> dict[str, Any]:
    return {
        "id": "resp_standin",
        "object": "response",
        "created_at": 0,
        "status": "completed",
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_standin",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": REPLY, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def _anthropic_message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_standin",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": REPLY}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 5},
    }


def _anthropic_events(model: str) -> bytes:
    start = {**_anthropic_message(model), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 5, "output_tokens": 0}
    return _sse(
        [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": REPLY}},
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )


def _provider_answer(path: str, body: dict[str, Any]) -> tuple[int, str, bytes]:  # noqa: PLR0911 - one per endpoint
    model = str(body.get("model", "model"))
    streaming = bool(body.get("stream"))
    if path.endswith("/chat/completions"):
        if streaming:
            return 200, "text/event-stream", _chat_chunks(model)
        return 200, "application/json", json.dumps(_chat_completion(model)).encode()
    if path.endswith("/responses"):
        return 200, "application/json", json.dumps(_response(model)).encode()
    if path.endswith("/embeddings"):
        data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return (
            200,
            "application/json",
            json.dumps({"object": "list", "data": data, "model": model, "usage": usage}).encode(),
        )
    if path.endswith("/messages"):
        if streaming:
            return 200, "text/event-stream", _anthropic_events(model)
        return 200, "application/json", json.dumps(_anthropic_message(model)).encode()
    return 404, "application/json", b'{"error": {"message": "not found"}}'


def _serve(answer: Any) -> Iterator[StandIn]:
    holder: dict[str, StandIn] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the providers and our service answer

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            headers = {name.lower(): value for name, value in self.headers.items()}
            holder["standin"].record(Received(self.command, self.path, body, headers, self.client_address[1]))
            status, answer_headers, payload = answer(self.path, body if isinstance(body, dict) else {})
            self.send_response(status)
            for name, value in answer_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["standin"] = StandIn(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["standin"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@contextmanager
def provider_standin() -> Iterator[StandIn]:
    """OpenAI's and Anthropic's endpoints as the SDKs call them, answering a fixed reply."""

    def answer(path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        status, content_type, payload = _provider_answer(path, body)
        return status, {"Content-Type": content_type}, payload

    yield from _serve(answer)


@contextmanager
def failing_service(
    status: int, headers: dict[str, str] | None = None, delay_s: float = 0.0, body: dict[str, Any] | None = None
) -> Iterator[StandIn]:
    """A governance service that answers every request with ``status`` (after ``delay_s``)."""
    payload = json.dumps(
        body or {"error": "unavailable", "message": f"stand-in answering {status}", "request_id": "req_standin"}
    ).encode()

    def answer(path: str, _body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if delay_s:
            time.sleep(delay_s)
        return status, {"Content-Type": "application/json", **(headers or {})}, payload

    yield from _serve(answer)
