"""Outbound HTTP for the Maxim client: where it may go, and calls that cannot hang or flood us.

- The policy: a workspace's base URL must be on an origin listed in `MAXIMUI_ALLOWED_BASE_URLS`
  (scheme, host and port; `https://api.getmaxim.ai` by default). Anything else (loopback,
  metadata services, private hosts) is refused before a socket is opened.
- A wall-clock deadline per call: every socket operation waits at most until the deadline,
  so a server trickling a byte at a time is cut off too, not only a silent one.
- Answers are streamed and cut at `MAX_ANSWER_BYTES`.
- One connection pool per allowed origin, at most `MAX_POOLS` of them.

No Django here except reading the allow-list from settings.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from prompts_app.plain_int import plain_int

DEFAULT_ALLOWED = ("https://api.getmaxim.ai",)
MAX_ANSWER_BYTES = 10 * 1024 * 1024
MAX_POOLS = 8
DEFAULT_PORTS = {"http": 80, "https": 443}


class PolicyError(ValueError):
    """A URL or allow-list entry the policy refuses; the message is safe to show."""


class AnswerTooLarge(Exception):
    pass


class DeadlinePassed(Exception):
    pass


# -- the policy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower-case, IPv6 without brackets
    port: int | None  # None: any port (only from an allow-list entry written with ":*")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port is None:
            return f"{self.scheme}://{host}:*"
        return f"{self.scheme}://{host}" + ("" if self.port == DEFAULT_PORTS[self.scheme] else f":{self.port}")

    def admits(self, other: Origin) -> bool:
        return (self.scheme, self.host) == (other.scheme, other.host) and self.port in (None, other.port)


def origin_of(url: str) -> Origin:
    """The origin of an http(s) URL; raises PolicyError for anything else."""
    try:
        parts = urlsplit((url or "").strip())
        port = parts.port
    except ValueError:
        raise PolicyError("The base URL has an invalid port (it must be 1 to 65535).") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise PolicyError("The Maxim base URL must look like https://api.getmaxim.ai.")
    if port == 0:
        raise PolicyError("The base URL has an invalid port (it must be 1 to 65535).")
    return Origin(scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme])


def parse_allow_list(entries: Iterable[str]) -> tuple[Origin, ...]:
    """`scheme://host[:port]` entries (port `*` for any); raises PolicyError naming a bad entry."""
    origins = []
    for entry in entries:
        text = entry.strip().rstrip("/")
        wildcard = text.endswith(":*")
        try:
            origin = origin_of(text[:-2] if wildcard else text)
        except PolicyError:
            origin = None
        parts = urlsplit(text[:-2] if wildcard else text)
        if origin is None or parts.path or parts.query or parts.fragment or parts.username:
            raise PolicyError(f"MAXIMUI_ALLOWED_BASE_URLS: {entry!r} is not an origin like https://api.getmaxim.ai")
        origins.append(Origin(origin.scheme, origin.host, None) if wildcard else origin)
    return tuple(origins)


def allowed_origins() -> tuple[Origin, ...]:
    try:
        from django.conf import settings

        entries = tuple(getattr(settings, "MAXIMUI_ALLOWED_BASE_URLS", DEFAULT_ALLOWED))
    except Exception:  # no Django settings (a script): the built-in default only
        entries = DEFAULT_ALLOWED
    return _parsed(entries)


_parsed_cache: dict[tuple[str, ...], tuple[Origin, ...]] = {}


def _parsed(entries: tuple[str, ...]) -> tuple[Origin, ...]:
    if entries not in _parsed_cache:
        _parsed_cache[entries] = parse_allow_list(entries)
    return _parsed_cache[entries]


def check_allowed(url: str) -> Origin:
    """The URL's origin if the policy allows it; PolicyError (with what is allowed) otherwise."""
    origin = origin_of(url)
    allowed = allowed_origins()
    if not any(entry.admits(origin) for entry in allowed):
        listed = ", ".join(str(o) for o in allowed) or "nothing"
        raise PolicyError(
            f"This server may not call {origin}: its outbound policy allows only {listed}. "
            "An administrator can add an origin to MAXIMUI_ALLOWED_BASE_URLS."
        )
    return origin


def same_origin(a: str, b: str) -> bool:
    try:
        return origin_of(a) == origin_of(b)
    except PolicyError:
        return False


# -- the deadline --------------------------------------------------------------------------------

_deadline: ContextVar[float | None] = ContextVar("maxim_deadline", default=None)


@contextlib.contextmanager
def deadline(at: float) -> Iterator[None]:
    """Within the block, every socket wait on this thread ends by `at` (time.monotonic())."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the call's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None):
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(
            host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)


# -- pools -------------------------------------------------------------------------------------------

_pools: OrderedDict[str, httpx.Client] = OrderedDict()
_pools_lock = threading.Lock()


# httpcore's pool looks at every connection, and for each idle one counts them all again, on every
# request it assigns and every response it releases: with a batch's 32 to 64 connections in one
# pool that was a third of the CPU its threads spent per call (cProfile over bench_batch). So an
# origin's pool is made of SHARDS small ones, a thread always using the same one.
SHARDS = 8


class _ShardedTransport(httpx.BaseTransport):
    """Several connection pools to one origin; each thread sends through its own (round robin)."""

    def __init__(self, shards: list[httpx.HTTPTransport]) -> None:
        self._shards = shards
        self._next = itertools.count()
        self._local = threading.local()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        shard = getattr(self._local, "shard", None)
        if shard is None:
            shard = self._local.shard = self._shards[next(self._next) % len(self._shards)]
        return shard.handle_request(request)

    def close(self) -> None:
        for shard in self._shards:
            shard.close()


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of this process's pools. Each makes httpx load certifi's CA bundle,
    about 50 ms of CPU: with a context per shard a process's first run waited 0.4 s for eight."""
    return httpx.create_ssl_context()


def _deadline_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=tls_context(), limits=limits, retries=0)
    pool = transport._pool  # httpx exposes no way to pass a network backend; the deadline tests guard this
    assert hasattr(pool, "_network_backend"), "httpcore changed: the deadline backend cannot be installed"
    pool._network_backend = _DeadlineBackend()
    return transport


def new_http(*, timeout: httpx.Timeout, limits: httpx.Limits, user_agent: str) -> httpx.Client:
    """An httpx client whose sockets obey `deadline()`; it follows no redirects and reads no proxy from
    the env. `limits` hold for each of its SHARDS pools (a thread uses one)."""
    transport = _ShardedTransport([_deadline_transport(limits) for _ in range(SHARDS)])
    return httpx.Client(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        headers={"User-Agent": user_agent},
        cookies=_jar_that_keeps_nothing(),
    )


class _JarThatKeepsNothing(CookieJar):
    """Reads no answer's cookies at all: the policy below would refuse each one anyway, after
    urllib had wrapped the request and the answer to parse them (a tenth of the CPU a batch's
    thread spent per call, cProfile over bench_batch)."""

    def extract_cookies(self, response, request) -> None:
        return None

    def set_cookie(self, cookie) -> None:
        return None


def _jar_that_keeps_nothing() -> CookieJar:
    """A pool is shared by every workspace on one origin: a cookie an answer sets must never ride
    along with another workspace's request, so the jar accepts none (the key is the only credential)."""
    return _JarThatKeepsNothing(policy=DefaultCookiePolicy(allowed_domains=[]))


def shared_http(origin: Origin, **options: Any) -> httpx.Client:
    """The long-lived pool of an allowed origin; the least recently used is closed past MAX_POOLS."""
    key = str(origin)
    with _pools_lock:
        http = _pools.get(key)
        if http is None or http.is_closed:
            http = _pools[key] = new_http(**options)
        _pools.move_to_end(key)
        while len(_pools) > MAX_POOLS:
            _, oldest = _pools.popitem(last=False)
            oldest.close()
        return http


def pool_count() -> int:
    return len(_pools)


def close_pools() -> None:
    with _pools_lock:
        for http in _pools.values():
            http.close()
        _pools.clear()


# -- reading an answer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def fetch(http: httpx.Client, request: httpx.Request, *, until: float, cap: int = MAX_ANSWER_BYTES) -> Answer:
    """Send `request` and read its answer, by `until` (monotonic) and at most `cap` bytes."""
    with deadline(until):
        response = http.send(request, stream=True, follow_redirects=False)
        try:
            declared = response.headers.get("content-length", "")
            if (size := plain_int(declared, max_digits=30)) is not None and size > cap:
                raise AnswerTooLarge
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise AnswerTooLarge
                if time.monotonic() > until:
                    raise DeadlinePassed
                chunks.append(chunk)
        finally:
            response.close()
    return Answer(response.status_code, response.headers, b"".join(chunks))
