"""A real HTTP server on 127.0.0.1 in a thread: what the fakes standing in for SMS, IM providers and the
provincial platform are built on. A subclass answers each request in `_serve(handler)`; `with fake:` listens on
`fake.port` (0: a free port, written back)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that timed out and hung up is part of the test, not an error to print


class LoopbackHTTP:
    port: int = 0
    protocol_version = "HTTP/1.0"  # HTTP/1.1: keep-alive, as some providers' clients expect

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def __enter__(self):
        self._listen()
        return self

    def __exit__(self, *exc):
        self._close()

    def _listen(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = fake.protocol_version

            def do_GET(self):
                fake._serve(self)

            do_POST = do_PUT = do_GET

            def log_message(self, *args):
                pass  # the request line carries keys and tokens

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

    def _close(self) -> None:
        server, self._server = getattr(self, "_server", None), None
        if server is not None:
            server.shutdown()
            server.server_close()
