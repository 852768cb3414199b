"""A JSON-over-HTTP stand-in server for the tests of clients of third-party APIs (Metabase,
Google Sheets): a thread serving `answer()`, every request recorded, `Refused` as an error
status with a JSON body. Subclasses implement `answer` and `error_body`."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["JsonStandIn", "Refused", "need"]


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def need(condition: object, message: str) -> None:
    if not condition:
        raise Refused(400, message)


class JsonStandIn:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> Any:
        raise NotImplementedError

    def error_body(self, err: Refused) -> Any:
        return {"message": str(err)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                with standin._lock:
                    standin.requests.append((self.command, self.path, body))
                    try:
                        status, out = (
                            200,
                            standin.answer(self.command, url.path, query, self.headers, body),
                        )
                    except Refused as err:
                        status, out = err.status, standin.error_body(err)
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _serve

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
