"""A small Maxim-compatible HTTP server for tests, benchmarks and `make fake-maxim`.

    with FakeMaxim(run_delay=0.2) as maxim:
        client = MaximClient(maxim.base_url, maxim.api_key)
        ...
        assert maxim.violations == []

Every request is recorded in `.requests` and its body checked against the published spec
(`tests.maxim_spec`); problems land in `.violations` instead of crashing the server.

Runs misbehave on purpose by model name (the request's `modelName`, else the version's):
"fail-401", "fail-429" (Retry-After: 1), "fail-500", "hang" (sleeps `hang_seconds`),
"tool-call" (answers with a tool call), "string-output" (output is a bare string).

Try the dashboard against it:  python -m devtools.maxim_server --port 8765  (`make fake-maxim`)
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.maxim_spec import validate_request

DEFAULT_KEY = "test-key-1234"
ACCOUNT_ID = "acc_fake"
_PLACEHOLDER = re.compile(r"\{\{\s*[\w.-]+\s*\}\}")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, the raw text if it was not JSON, or None
    arrived: float  # time.monotonic()
    finished: float | None = None
    status: int | None = None


@dataclass
class _Failure:
    status: int
    body: Any
    headers: dict[str, str]
    times: int


class _Reply(Exception):
    """Raised by a route to answer with an error status."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message}}
        self.headers = headers or {}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _words(text: str) -> int:
    return len(text.split())


class FakeMaxim:
    def __init__(
        self,
        *,
        api_key: str = DEFAULT_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        run_delay: float = 0.0,
        hang_seconds: float = 5.0,
        max_page_size: int = 100,
    ) -> None:
        self.api_key = api_key
        self.run_delay = run_delay
        self.hang_seconds = hang_seconds
        self.max_page_size = max_page_size  # lower it to make pagination kick in
        self._host, self._port = host, port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._requests: list[RecordedRequest] = []
        self._violations: list[str] = []
        self._failures: dict[str, list[_Failure]] = {}
        self.workspaces: list[dict] = []
        self.prompts: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.deployments: list[dict] = []
        self._server: ThreadingHTTPServer | None = None
        self.add_workspace("Default workspace", id="ws_default")
        self.add_workspace("Staging", id="ws_staging")

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> FakeMaxim:
        fake = self

        class Handler(_Handler):
            maxim = fake

        self._server = _Server((self._host, self._port), Handler)
        # A short poll interval keeps stop() (and so every test's teardown) quick.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-maxim", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes runs sleeping in run_delay / hang
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeMaxim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- what tests look at ---------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def violations(self) -> list[str]:
        with self._lock:
            return list(self._violations)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def reset_log(self) -> None:
        with self._lock:
            self._requests.clear()
            self._violations.clear()

    def fail_next(
        self, path: str, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Answer the next `times` requests to `path` (any method) with `status`."""
        body = body if body is not None else {"error": {"message": f"Injected failure {status}"}}
        with self._lock:
            self._failures.setdefault(path, []).append(_Failure(status, body, dict(headers or {}), times))

    # -- state builders (also used to seed browser tests) ---------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids)}"

    def add_workspace(self, name: str, *, id: str | None = None) -> dict:
        now = _now()
        workspace = {
            "id": id or self._new_id("ws"),
            "name": name,
            "accountId": ACCOUNT_ID,
            "createdAt": now,
            "updatedAt": now,
        }
        with self._lock:
            self.workspaces.append(workspace)
        return workspace

    def add_prompt(self, workspace_id: str, name: str, description: str = "", folder_id: str | None = None) -> dict:
        now = _now()
        with self._lock:
            prompt = {
                "id": self._new_id("prm"),
                "name": name,
                "description": description,
                "workspaceId": workspace_id,
                "accountId": ACCOUNT_ID,
                "folderId": folder_id,
                "meta": None,
                "createdById": "usr_fake",
                "createdAt": now,
                "updatedAt": now,
                "deletedAt": None,
            }
            self.prompts[prompt["id"]] = prompt
        return prompt

    def add_version(self, body: dict) -> dict:
        """A version as Maxim returns it, from a create-version request body."""
        now = _now()
        with self._lock:
            number = 1 + sum(1 for v in self.versions.values() if v["promptId"] == body["promptId"])
            wrappers = []
            for index, message in enumerate(body.get("messages") or []):
                wrappers.append(
                    {
                        "id": self._new_id("msg"),
                        "index": index,
                        "payload": dict(message),
                        "currentType": "message",
                        "originalType": "message",
                    }
                )
            version = {
                "id": self._new_id("ver"),
                "version": number,
                "description": body.get("description", ""),
                "promptId": body["promptId"],
                "config": {
                    "tags": {},
                    "model": body.get("modelName", ""),
                    "modelId": body.get("modelName", ""),
                    "provider": body.get("modelProvider", ""),
                    "messages": wrappers,
                    "modelParameters": body.get("modelParameters") or {},
                    "author": {"id": "usr_fake", "name": "Fake Author", "email": "author@example.com", "image": ""},
                },
                "createdAt": now,
                "updatedAt": now,
                "deletedAt": None,
            }
            self.versions[version["id"]] = version
        return version

    # -- request handling (called from handler threads) -----------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
        try:
            query = {k: [v] for k, v in request.query.items()}
            body = request.body if isinstance(request.body, dict) or request.body is None else None
            validate_request(request.method, request.path, body, query, headers=request.headers)
        except AssertionError as exc:
            self._violate(str(exc))
        if request.body is not None and not isinstance(request.body, dict):
            self._violate(f"{request.method} {request.path}: body is not a JSON object")

    def _violate(self, message: str) -> None:
        with self._lock:
            self._violations.append(message)

    def _injected(self, path: str) -> _Failure | None:
        with self._lock:
            queue = self._failures.get(path) or []
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure

    def handle(self, request: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        failure = self._injected(request.path)
        if failure is not None:
            return failure.status, failure.body, failure.headers
        if request.headers.get("x-maxim-api-key") != self.api_key:
            return 401, {"error": {"message": "Invalid API key"}}, {}
        route = {
            ("GET", "/v1/workspaces"): self._list_workspaces,
            ("GET", "/v1/prompts"): self._list_prompts,
            ("POST", "/v1/prompts"): self._create_prompt,
            ("GET", "/v1/prompts/versions"): self._list_versions,
            ("POST", "/v1/prompts/versions"): self._create_version,
            ("POST", "/v1/prompts/run"): self._run,
            ("POST", "/v1/prompts/deploy"): self._deploy,
        }.get((request.method, request.path))
        if route is None:
            return 404, {"error": {"message": f"Cannot {request.method} {request.path}"}}, {}
        if request.method == "POST" and not isinstance(request.body, dict):
            return 400, {"error": {"message": "Body must be a JSON object"}}, {}
        try:
            status, body = route(request)
        except _Reply as reply:
            return reply.status, reply.body, reply.headers
        return status, body, {}

    def _page(self, items: list[dict], query: dict[str, str], cursor_field: str) -> dict:
        try:
            limit = min(max(int(query.get("limit", "10")), 1), self.max_page_size)
            start = int(query.get("cursor") or 0)
        except ValueError:
            raise _Reply(400, "limit and cursor must be numbers") from None
        page = items[start : start + limit]
        more = start + limit < len(items)
        return {"data": page, "pagination": {cursor_field: str(start + limit) if more else None, "hasMore": more}}

    def _list_workspaces(self, request: RecordedRequest) -> tuple[int, Any]:
        q = request.query
        with self._lock:
            items = [
                w for w in self.workspaces if q.get("id", w["id"]) == w["id"] and q.get("name", w["name"]) == w["name"]
            ]
        return 200, self._page(items, q, "nextCursor")

    def _list_prompts(self, request: RecordedRequest) -> tuple[int, Any]:
        q = request.query
        if not q.get("workspaceId"):
            raise _Reply(400, "workspaceId is required")
        with self._lock:
            items = [
                p
                for p in self.prompts.values()
                if p["workspaceId"] == q["workspaceId"]
                and q.get("id", p["id"]) == p["id"]
                and q.get("name", p["name"]) == p["name"]
            ]
        # Prompts page with `cursor`, workspaces with `nextCursor`: Maxim uses both spellings.
        return 200, self._page(items, q, "cursor")

    def _create_prompt(self, request: RecordedRequest) -> tuple[int, Any]:
        body = request.body
        if not body.get("name") or not body.get("workspaceId"):
            raise _Reply(400, "workspaceId and name are required")
        with self._lock:
            known = any(w["id"] == body["workspaceId"] for w in self.workspaces)
        if not known:
            raise _Reply(404, "Workspace not found")
        prompt = self.add_prompt(body["workspaceId"], body["name"], body.get("description") or "", body.get("folderId"))
        return 201, {"data": {"data": prompt}}  # the documented double wrap

    def _list_versions(self, request: RecordedRequest) -> tuple[int, Any]:
        q = request.query
        with self._lock:
            if q.get("id"):
                version = self.versions.get(q["id"])
                if version is None:
                    raise _Reply(404, "Prompt version not found")
                return 200, {"data": version}
            if q.get("promptId") not in self.prompts:
                raise _Reply(404, "Prompt not found")
            return 200, {"data": [v for v in self.versions.values() if v["promptId"] == q["promptId"]]}

    def _create_version(self, request: RecordedRequest) -> tuple[int, Any]:
        body = request.body
        if body.get("promptId") not in self.prompts:
            raise _Reply(404, "Prompt not found")
        if not isinstance(body.get("messages"), list) or not body.get("modelName"):
            raise _Reply(400, "messages and modelName are required")
        return 200, {"data": self.add_version(body)}

    def _version_for(self, body: dict) -> dict:
        version = self.versions.get(body.get("versionId"))
        if version is None or version["promptId"] != body.get("promptId"):
            raise _Reply(404, "Prompt or version not found")
        return version

    def _run(self, request: RecordedRequest) -> tuple[int, Any]:
        body = request.body
        version = self._version_for(body)
        model = body.get("modelName") or version["config"]["model"]
        messages = body.get("messages") or [w["payload"] for w in version["config"]["messages"]]
        for i, message in enumerate(messages):
            found = _PLACEHOLDER.search(_text_of(message.get("content")))
            if found:
                self._violate(
                    f"POST /v1/prompts/run: messages[{i}] still holds {found.group()}; "
                    "variables must be filled in before sending"
                )
        if model == "fail-401":
            raise _Reply(401, "Invalid API key")
        if model == "fail-429":
            raise _Reply(429, "Rate limit exceeded", {"Retry-After": "1"})
        if model == "fail-500":
            raise _Reply(500, "Internal server error")
        self._stopping.wait(self.hang_seconds if model == "hang" else self.run_delay)
        users = [m for m in messages if m.get("role") == "user"]
        reply = "Echo: " + (_text_of(users[-1].get("content")) if users else "")
        prompt_tokens = sum(_words(_text_of(m.get("content"))) for m in messages)
        completion_tokens = _words(reply)
        usage = {
            "promptTokens": prompt_tokens,
            "completionTokens": completion_tokens,
            "totalTokens": prompt_tokens + completion_tokens,
        }
        if model == "string-output":
            return 200, {"data": {"output": reply, "usage": usage}}
        message: dict[str, Any] = {"role": "assistant", "content": reply}
        if model == "tool-call":
            tools = (body.get("modelParameters") or version["config"]["modelParameters"]).get("tools") or []
            name = tools[0]["function"]["name"] if tools else "lookup"
            arguments = json.dumps({"query": reply.removeprefix("Echo: ")})
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": self._new_id("call"), "type": "function", "function": {"name": name, "arguments": arguments}}
                ],
            }
        output = {
            "id": self._new_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": "tool_calls" if model == "tool-call" else "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, {"data": {"output": output, "usage": usage}}

    def _deploy(self, request: RecordedRequest) -> tuple[int, Any]:
        body = request.body
        self._version_for(body)
        now = _now()
        with self._lock:
            conditions = body.get("deploymentConditions") or []
            for old in self.deployments:
                if old["promptId"] == body["promptId"] and old["deploymentConditions"] == conditions:
                    old["status"], old["updatedAt"] = "inactive", now
            deployment = {
                "id": self._new_id("dep"),
                "promptId": body["promptId"],
                "versionId": body["versionId"],
                "workspaceId": body.get("workspaceId"),
                "deploymentConditions": conditions,
                "status": "active",
                "createdAt": now,
                "updatedAt": now,
            }
            self.deployments.append(deployment)
        return 200, {"data": deployment}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: eight runs connecting at once could see a dropped
    # SYN that the kernel retries only after 1 s. Real Maxim listens with a far larger one.
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (read timeout) leaves a broken pipe behind: not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    maxim: FakeMaxim
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API, so pooling is exercised
    # Headers and body go out in two writes; with Nagle on, keep-alive answers stall ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            arrived=time.monotonic(),
        )
        self.maxim._record(request)
        try:
            status, answer, headers = self.maxim.handle(request)
        except Exception as exc:  # a bug in the fake must still answer, and be visible
            self.maxim._violate(f"fake server error on {request.method} {request.path}: {exc!r}")
            status, answer, headers = 500, {"error": {"message": "Fake server error"}}, {}
        # bytes go out as they are, so a test can serve a body that is not JSON
        data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        headers = {"Content-Type": "application/json", **headers, "Content-Length": str(len(data))}
        # Recorded before the answer leaves: a client may read it and look at these at once (noted
        # after the write, `finished` was sometimes still None for a client that had its answer).
        request.status = status
        request.finished = time.monotonic()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


def seed_demo(maxim: FakeMaxim) -> None:
    """A prompt with two versions in the default workspace, so there is something to import."""
    prompt = maxim.add_prompt("ws_default", "Support reply", "Answers customer questions")
    system = "You are a friendly support agent for {{company}}. Answer in two sentences."
    for model, temperature in (("gpt-4o-mini", 0.7), ("gpt-4o", 0.2)):
        maxim.add_version(
            {
                "promptId": prompt["id"],
                "description": f"{model} at temperature {temperature}",
                "modelName": model,
                "modelProvider": "openai",
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": "Hi, I am {{name}}. Where is my order?"},
                ],
                "modelParameters": {"temperature": temperature, "max_tokens": 300},
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Maxim prompts API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--run-delay", type=float, default=0.3)
    args = parser.parse_args()
    maxim = FakeMaxim(api_key=args.key, host=args.host, port=args.port, run_delay=args.run_delay).start()
    seed_demo(maxim)
    print(f"Fake Maxim at {maxim.base_url}  API key: {maxim.api_key}  (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for violation in maxim.violations:
            print("spec violation:", violation)
        maxim.stop()


if __name__ == "__main__":
    main()
