"""A real HTTP receiver on 127.0.0.1 for the webhook tests: records every request and answers
from a script (a list of status codes, then 204 for ever), optionally verifying signatures with
the reference ``standardwebhooks`` package."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def document(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    script: list[int] = field(default_factory=list)  # statuses to answer, in order, then 204
    extra_headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # how long each request takes to answer
    in_request: threading.Event = field(default_factory=threading.Event)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else 204

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def accepted_ids(self) -> list[str]:
        return [r.document["id"] for r in self.accepted]


class ReceiverServer:
    def __init__(self) -> None:
        receiver_ref: list[Receiver] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver = receiver_ref[0]
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.in_request.set()
                time.sleep(receiver.delay_s)
                status = receiver.answer()
                with receiver.lock:
                    receiver.requests.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                self.send_response(status)
                for name, value in receiver.extra_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.receiver = Receiver(f"http://127.0.0.1:{self.server.server_port}/hook")
        receiver_ref.append(self.receiver)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
