"""A local stand-in for the Hugging Face Hub's HTTP API, enough for huggingface_hub downloads.

It answers what ``HfApi.list_repo_files`` and ``snapshot_download`` ask for (repo info,
the recursive tree, HEAD and GET of ``/<repo>/resolve/<rev>/<file>``) from an in-memory
repo, on 127.0.0.1, and records each request so tests can see what was fetched.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

COMMIT = "c0ffee" + "0" * 34


class FakeHub:
    def __init__(self, repo: str, files: dict[str, bytes]) -> None:
        self.repo, self.files = repo, files
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                hub._answer(self, head=False)

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "FakeHub":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fetched(self) -> set[str]:
        """Files whose bytes were downloaded."""
        prefix = f"/{self.repo}/resolve/{COMMIT}/"
        return {unquote(urlparse(path).path)[len(prefix):] for method, path in self.requests
                if method == "GET" and unquote(urlparse(path).path).startswith(prefix)}

    def _answer(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        self.requests.append((handler.command, handler.path))
        path = unquote(urlparse(handler.path).path)
        api = f"/api/models/{self.repo}"
        if path == f"{api}/revision/main":
            info = {"id": self.repo, "sha": COMMIT,
                    "siblings": [{"rfilename": name} for name in self.files]}
            return self._send(handler, 200, json.dumps(info).encode(), head, json_body=True)
        for rev in ("main", COMMIT):
            if path.startswith(f"{api}/tree/{rev}"):
                tree = [{"type": "file", "path": name, "size": len(data),
                         "oid": hashlib.sha1(data).hexdigest()} for name, data in self.files.items()]
                return self._send(handler, 200, json.dumps(tree).encode(), head, json_body=True)
            resolve = f"/{self.repo}/resolve/{rev}/"
            if path.startswith(resolve) and path[len(resolve):] in self.files:
                data = self.files[path[len(resolve):]]
                return self._send(handler, 200, data, head, headers={
                    "X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'})
        self._send(handler, 404, b'{"error": "Repository not found"}', head, json_body=True,
                   headers={"X-Error-Code": "RepoNotFound"})

    @staticmethod
    def _send(handler, code: int, body: bytes, head: bool, *, json_body: bool = False,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(code)
        if json_body:
            handler.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(body)
