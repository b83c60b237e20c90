"""The outbound policy and the limits on every Maxim call, attacked with real local servers.

A hostile base URL must not reach a server outside MAXIMUI_ALLOWED_BASE_URLS (not even one
request), a slow or huge answer must not hold a thread or memory, and redirects are not followed.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.urls import reverse

from prompts_app import maxim
from prompts_app.maxim import outbound
from prompts_app.maxim import MaximClient, MaximError
from prompts_app.models import Workspace
from tests.conftest import API_KEY

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"


class Recorder:
    """A loopback TCP server that counts the requests it receives and answers with `reply(socket)`."""

    def __init__(self, reply: Callable[[socket.socket], None]) -> None:
        self.hits = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                outer.hits += 1
                try:
                    reply(self.request)
                except OSError:
                    pass  # the client hung up, as it should

        socketserver.ThreadingTCPServer.daemon_threads = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Callable[[Callable[[socket.socket], None]], Recorder]]:
    made: list[Recorder] = []

    def make(reply: Callable[[socket.socket], None]) -> Recorder:
        made.append(Recorder(reply))
        return made[-1]

    yield make
    for server in made:
        server.close()
    maxim.close_pools()


def empty_list(sock: socket.socket) -> None:
    body = b'{"data": [], "pagination": {"hasMore": false}}'
    sock.sendall(OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)


ONLY_MAXIM = ["https://api.getmaxim.ai"]


# -- the policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://localhost",
        "http://169.254.169.254/latest/meta-data",
        "https://10.0.0.5",
        "https://db.internal",
        "http://api.getmaxim.ai",
        "https://api.getmaxim.ai:8443",
    ],
)
def test_only_listed_origins_may_be_called(settings, url):
    settings.MAXIMUI_ALLOWED_BASE_URLS = ONLY_MAXIM
    with pytest.raises(MaximError, match="outbound policy allows only https://api.getmaxim.ai"):
        MaximClient(url, API_KEY)


def test_a_listed_origin_is_allowed_with_any_path_and_http_only_when_listed_so(settings):
    settings.MAXIMUI_ALLOWED_BASE_URLS = ["https://api.getmaxim.ai", "http://maxim.corp.example:8080"]
    assert MaximClient("https://API.getmaxim.ai:443/", API_KEY).base_url == "https://api.getmaxim.ai"
    assert MaximClient("http://maxim.corp.example:8080/api", API_KEY).base_url == "http://maxim.corp.example:8080/api"
    with pytest.raises(MaximError):
        MaximClient("https://maxim.corp.example:8080", API_KEY)


def test_a_forbidden_origin_never_receives_a_request_from_the_client(settings, recorder):
    server = recorder(empty_list)
    settings.MAXIMUI_ALLOWED_BASE_URLS = ONLY_MAXIM
    maxim.close_pools()
    with pytest.raises(MaximError, match="outbound policy"):
        MaximClient(server.url, API_KEY).list_workspaces()
    assert server.hits == 0 and outbound.pool_count() == 0


def test_connecting_to_a_forbidden_origin_is_refused_in_the_form(settings, recorder, client_for, owner):
    server = recorder(empty_list)
    settings.MAXIMUI_ALLOWED_BASE_URLS = ONLY_MAXIM
    response = client_for(owner).post(reverse("workspace_connect"), {"api_key": API_KEY, "base_url": server.url})
    html = response.content.decode()
    assert response.status_code == 200 and "outbound policy allows only https://api.getmaxim.ai" in html
    assert server.url in html  # the typed URL is kept
    assert server.hits == 0


def test_a_stored_row_pointing_elsewhere_is_refused_by_the_client(settings, recorder, client_for, editor, workspace):
    # An admin edit or an old row: the client checks the policy on every call, not only the forms.
    server = recorder(empty_list)
    Workspace.objects.filter(pk=workspace.pk).update(base_url=server.url)
    settings.MAXIMUI_ALLOWED_BASE_URLS = ONLY_MAXIM
    html = client_for(editor).post(reverse("workspace_test", args=[workspace.pk])).content.decode()
    assert "outbound policy" in html
    assert server.hits == 0


def test_redirects_are_not_followed(recorder):
    target = recorder(empty_list)

    def redirect(sock: socket.socket) -> None:
        sock.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: " + target.url.encode() + b"/v1/workspaces\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )

    server = recorder(redirect)
    with pytest.raises(MaximError, match=r"redirect \(302\)"):
        MaximClient(server.url, API_KEY, max_retries=0).list_workspaces()
    assert server.hits == 1 and target.hits == 0


def test_pools_are_kept_per_origin_not_per_url(recorder):
    server = recorder(empty_list)
    maxim.close_pools()
    for path in range(30):
        MaximClient(f"{server.url}/p{path}", API_KEY).list_workspaces()
    assert outbound.pool_count() == 1 and server.hits == 30


@pytest.mark.parametrize(
    "url, message",
    [
        ("https://maxim.test:99999", "invalid port"),
        ("https://\u2488.test", "host name that cannot be used"),
    ],
)
def test_unusable_urls_fail_with_a_message(url, message):
    with pytest.raises(MaximError, match=message):
        MaximClient(url, API_KEY)


@pytest.mark.parametrize("allow_list", [["api.getmaxim.ai"], ["https://api.getmaxim.ai/v1"], ["ftp://x.test"]])
def test_an_allow_list_entry_that_is_not_an_origin_is_refused(allow_list):
    with pytest.raises(outbound.PolicyError, match="is not an origin"):
        outbound.parse_allow_list(allow_list)


# -- deadline, size cap, retries -----------------------------------------------------------------


def trickle_headers(sock: socket.socket) -> None:
    for byte in OK_HEAD * 100:
        sock.sendall(bytes([byte]))
        time.sleep(0.1)


def trickle_body(sock: socket.socket) -> None:
    sock.sendall(OK_HEAD + b"Content-Length: 100000\r\n\r\n")
    for _ in range(100000):
        sock.sendall(b" ")
        time.sleep(0.1)


@pytest.mark.parametrize("reply", [trickle_headers, trickle_body], ids=["headers", "body"])
def test_a_trickling_server_is_cut_off_at_the_deadline(recorder, reply):
    # Each byte arrives well inside the read timeout; only a wall-clock deadline stops this.
    server = recorder(reply)
    started = time.monotonic()
    with pytest.raises(MaximError, match="did not finish answering within 2 seconds"):
        MaximClient(server.url, API_KEY, deadline=1.5).list_workspaces()
    assert time.monotonic() - started < 4
    assert server.hits == 1  # not retried past the deadline


def test_a_run_has_a_deadline_even_with_the_default_client(recorder, monkeypatch):
    monkeypatch.setattr(maxim.client, "RUN_DEADLINE", 1.0)
    server = recorder(trickle_body)
    started = time.monotonic()
    with pytest.raises(MaximError, match="may still have been processed"):
        MaximClient(server.url, API_KEY, max_retries=0).run({})
    assert time.monotonic() - started < 3


def huge(declared: bool) -> Callable[[socket.socket], None]:
    def reply(sock: socket.socket) -> None:
        size = 11 * 1024 * 1024
        sock.sendall(OK_HEAD + (b"Content-Length: %d\r\n" % size if declared else b"") + b"\r\n")
        chunk = b"[" + b"0," * 32767 + b"0"
        for _ in range(size // len(chunk) + 1):
            sock.sendall(chunk)

    return reply


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
def test_a_huge_answer_is_cut_at_the_cap(recorder, declared):
    server = recorder(huge(declared))
    with pytest.raises(MaximError, match="larger than 10 MB"):
        MaximClient(server.url, API_KEY, max_retries=0).list_workspaces()


def test_an_answer_under_the_cap_is_read_whole(recorder):
    body = b'{"data": [' + b",".join(b'{"id": "ws_%d", "name": "%s"}' % (i, b"n" * 1000) for i in range(2000)) + b"]}"

    def reply(sock: socket.socket) -> None:
        sock.sendall(OK_HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    server = recorder(reply)
    assert len(MaximClient(server.url, API_KEY).list_workspaces()) == 2000


def test_a_client_without_retries_tries_an_unreachable_host_once():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    slept: list[float] = []
    client = MaximClient(f"http://127.0.0.1:{port}", API_KEY, max_retries=0, sleep=slept.append)
    with pytest.raises(MaximError, match="refused the connection"):
        client.list_workspaces()
    assert slept == []


def test_a_cookie_set_by_maxim_is_never_sent_back_for_another_workspace(recorder):
    """Workspaces on the same Maxim origin share a connection pool: a cookie one answer sets must
    not ride along with the next workspace's requests (nor with the same workspace's)."""
    heard: list[bytes] = []

    def set_cookie(sock: socket.socket) -> None:
        body = b'{"data": [], "pagination": {"hasMore": false}}'
        sock.sendall(
            OK_HEAD + b"Set-Cookie: maxim_session=workspace-a; Path=/\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )

    server = recorder(set_cookie)
    original = server.server.RequestHandlerClass.handle

    def handle(self) -> None:
        heard.append(self.request.recv(65536, socket.MSG_PEEK))
        original(self)

    server.server.RequestHandlerClass.handle = handle
    MaximClient(server.url, API_KEY).list_workspaces()
    MaximClient(server.url, "another-workspace-key").list_workspaces()
    assert server.hits == 2 and len(heard) == 2
    assert b"maxim_session" not in heard[1].lower() and b"\r\ncookie:" not in heard[1].lower()
