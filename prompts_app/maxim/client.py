"""The Maxim prompts API client: the only module in maximui that speaks HTTP.

No ORM here. Where it may connect, and how long and how much it reads, is
`prompts_app.maxim.outbound` (the outbound policy, a wall-clock deadline, a size cap).
Every failure becomes a `MaximError` whose `message` a person can act on; the API
key is never stored on the shared connection pool, logged, or put in a message,
and no httpx exception (whose traceback holds the request headers) leaves here.
"""

from __future__ import annotations

import email.utils
import enum
import logging
import math
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from prompts_app.jsontext import load_json
from prompts_app.redaction import redact, redact_all
from prompts_app.maxim import outbound, shapes
from prompts_app.maxim.errors import MAYBE_DONE, MaximError
from prompts_app.maxim.requests import NewDeployment, NewPrompt, NewVersion, RunRequest
from prompts_app.maxim.shapes import (
    DeployResult,
    PromptInfo,
    RunResult,
    VersionInfo,
    WorkspaceInfo,
)

log = logging.getLogger(__name__)

# A run may legitimately take a minute (slow models, long outputs), hence the long read.
TIMEOUT = httpx.Timeout(connect=5.0, read=90.0, write=30.0, pool=10.0)
# Per shard of an origin's pool (outbound.SHARDS, a thread always on one): a batch keeps up to 64
# calls in flight, and a drive handing over may still be finishing 64 more. Every connection
# opened is kept: httpcore closes idle ones whenever a pool holds more than the keep-alive count,
# which with 16 of 32 made about every other call open a new connection.
LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=32, keepalive_expiry=60.0)
# Wall-clock limits per client call, retries and pages included: nothing holds a thread longer.
# A run may legitimately take a minute and more (slow models, long outputs); the rest are quick.
RUN_DEADLINE = 90.0
CALL_DEADLINE = 30.0
# For URLs a person just typed (connecting, replacing a key, testing): fail fast, never retry.
CHECK_DEADLINE = 15.0
PAGE_SIZE = 100
# A server that keeps handing out new cursors must not keep us looping forever.
MAX_PAGES = 50
# Real answers (outputs with tool calls, version messages) are a few levels deep.
ANSWER_MAX_DEPTH = 100
# Stored in place of an answer whose parts, put together, held the API key.
KEY_IN_PIECES = (
    "Maxim's answer held the workspace's API key split across its parts: it was removed, and the parts are not kept."
)
_SAID_LIMIT = 300


def _package_version() -> str:
    try:
        return metadata.version("maximui")
    except metadata.PackageNotFoundError:
        return "0.1.0"


USER_AGENT = f"maximui/{_package_version()}"


def normalise_base_url(base_url: str) -> str:
    """`https://Api.Example.com/` -> `https://api.example.com`; raises MaximError if unusable."""
    try:
        origin = outbound.origin_of(base_url)
    except outbound.PolicyError as exc:
        raise MaximError(str(exc)) from None
    parts = urlsplit(base_url.strip())
    if parts.username or parts.password or parts.query or parts.fragment:
        raise MaximError("The Maxim base URL must not contain a user name, password, query or fragment.")
    netloc = origin.host if ":" not in origin.host else f"[{origin.host}]"
    netloc += f":{origin.port}" if parts.port and origin.port != outbound.DEFAULT_PORTS[origin.scheme] else ""
    url = f"{origin.scheme}://{netloc}{parts.path.rstrip('/')}"
    try:
        httpx.URL(url).host  # IDNA: httpx would refuse the host at request time
    except (httpx.InvalidURL, UnicodeError, ValueError):
        raise MaximError("The Maxim base URL has a host name that cannot be used; check its spelling.") from None
    return url


def check_base_url(base_url: str) -> str:
    """The normalised base URL if the outbound policy allows its origin; MaximError otherwise."""
    url = normalise_base_url(base_url)
    try:
        outbound.check_allowed(url)
    except outbound.PolicyError as exc:
        raise MaximError(str(exc)) from None
    return url


class Connection(Protocol):
    """Where and with which key: a saved Workspace, or `Credentials` a person just typed."""

    base_url: str

    def get_api_key(self) -> str: ...


@dataclass(frozen=True)
class Credentials:
    """A base URL and key not saved on a workspace yet (connecting, replacing a key)."""

    base_url: str
    api_key: str = field(repr=False)

    def get_api_key(self) -> str:
        return self.api_key


class Use(enum.Enum):
    """What the client is for; it decides retries and deadlines."""

    CALL = "call"  # reads and writes: safe retries, CALL_DEADLINE
    RUN = "run"  # a run: sent exactly once (not even re-sent after a 429), RUN_DEADLINE
    CHECK = "check"  # a URL or key a person just typed: one try, CHECK_DEADLINE


def client_for(connection: Connection, use: Use = Use.CALL) -> MaximClient:
    """The one way to a client: for a workspace (or typed credentials), on the long-lived
    connection pool of its origin. MaximError if the origin is outside the outbound policy
    or the key is missing or unreadable (crypto.DecryptionError is a MaximError)."""
    options: dict[str, Any] = {
        Use.CALL: {},
        Use.RUN: {"max_retries": 0},
        Use.CHECK: {"max_retries": 0, "deadline": CHECK_DEADLINE},
    }[use]
    return MaximClient(connection.base_url, connection.get_api_key(), **options)


def warm_up() -> None:
    """Make now what the first request of this process would otherwise wait for (the TLS context)."""
    outbound.tls_context()


def close_pools() -> None:
    """Close every shared connection pool (process shutdown, tests)."""
    outbound.close_pools()


class MaximClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.Client | None = None,
        max_retries: int = 3,
        max_retry_seconds: float = 30.0,
        deadline: float | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        # The policy is checked here, not only in forms: stored rows and admin edits go through it too.
        self.base_url = check_base_url(base_url)
        key = (api_key or "").strip()
        if not key:
            raise MaximError("No Maxim API key is set; add one in the workspace settings.")
        if not key.isascii() or not key.isprintable():
            # httpx would crash encoding the header; usually a key pasted with stray characters.
            raise MaximError("The Maxim API key contains characters that cannot be sent; paste it again.")
        self._api_key = key
        origin = outbound.origin_of(self.base_url)
        self._http = (
            http
            if http is not None
            else outbound.shared_http(origin, timeout=TIMEOUT, limits=LIMITS, user_agent=USER_AGENT)
        )
        self._host = urlsplit(self.base_url).netloc
        self._urls: dict[str, httpx.URL] = {}  # path -> URL parsed once (half of build_request's time)
        self.max_retries = max_retries
        self.max_retry_seconds = max_retry_seconds
        self.deadline = deadline  # seconds per call; None: RUN_DEADLINE for runs, CALL_DEADLINE otherwise
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"<MaximClient {self.base_url}>"

    # https://www.getmaxim.ai/docs/workspaces/workspace/get-workspaces
    def list_workspaces(self) -> list[WorkspaceInfo]:
        """Every workspace the key can reach (keys are organisation-wide), all pages."""
        items = self._get_all("/v1/workspaces", {"limit": PAGE_SIZE}, noun="workspace list")
        return [shapes.workspace_info(i) for i in items]

    # https://www.getmaxim.ai/docs/prompts/prompt/get-prompts
    def list_prompts(self, workspace_id: str) -> list[PromptInfo]:
        """All prompts of a workspace, following pagination."""
        params = {"workspaceId": workspace_id, "limit": PAGE_SIZE}
        return [shapes.prompt_info(i) for i in self._get_all("/v1/prompts", params, noun="workspace")]

    # https://www.getmaxim.ai/docs/prompts/prompt/create-prompt
    def create_prompt(self, request: NewPrompt) -> PromptInfo:
        """Create a prompt; Maxim documents the answer as `{"data": {"data": {...}}}`."""
        answer, _ = self._call("POST", "/v1/prompts", noun="workspace", body=request.body(), until=self._until())
        return shapes.prompt_info(shapes.one_object(answer, "creating the prompt", posted=True))

    # https://www.getmaxim.ai/docs/prompts/prompt-version/get-prompt-versions
    def list_versions(self, prompt_id: str) -> list[VersionInfo]:
        """All versions of a prompt, oldest first; Maxim may answer one object or a list."""
        # The versions endpoint documents no `limit`, so none is sent.
        items = self._get_all("/v1/prompts/versions", {"promptId": prompt_id}, noun="prompt")
        return sorted((shapes.version_info(i) for i in items), key=lambda v: v.version)

    # https://www.getmaxim.ai/docs/prompts/prompt-version/create-a-prompt-version
    def create_version(self, request: NewVersion) -> VersionInfo:
        """Create a version of a prompt with the request's content."""
        answer, _ = self._call("POST", "/v1/prompts/versions", noun="prompt", body=request.body(), until=self._until())
        return shapes.version_info(shapes.one_object(answer, "creating the version", posted=True))

    # https://www.getmaxim.ai/docs/prompts/prompt-version/run-prompt-version
    def run(self, request: RunRequest | Mapping[str, Any]) -> RunResult:
        """Run a version once. Never re-sent after a timeout or 5xx: a run costs money.

        A body stored when the run was recorded (`Run.request_body`, `RunRequest.body()` then)
        is sent exactly as stored, so a queued run or a re-run sends what the history shows.
        """
        body = request.body() if isinstance(request, RunRequest) else dict(request)
        until = self._until(RUN_DEADLINE)
        answer, latency_ms = self._call("POST", "/v1/prompts/run", noun="prompt version", body=body, until=until)
        result = shapes.run_result(answer, latency_ms)
        # Again once the text is joined: a key cut across content parts is whole only now (hostile
        # trial). Then the parts are not kept either: put together, they would give it back.
        text = redact(result.text, self._api_key)
        calls = redact_all(result.tool_calls, self._api_key)
        if text == result.text and calls == result.tool_calls:
            return result
        log.warning("maxim POST /v1/prompts/run: the answer held the API key in pieces; removed")
        return replace(result, output={"text": text, "note": KEY_IN_PIECES}, text=text, tool_calls=calls, raw={})

    # https://www.getmaxim.ai/docs/prompts/prompt-deployment/deploy-prompt-version
    def deploy(self, request: NewDeployment) -> DeployResult:
        """Deploy a version with the request's deployment conditions."""
        body = request.body()
        answer, _ = self._call("POST", "/v1/prompts/deploy", noun="prompt version", body=body, until=self._until())
        return shapes.deploy_result(answer, request)

    # -- plumbing ------------------------------------------------------------

    def _until(self, default: float = CALL_DEADLINE) -> float:
        return time.monotonic() + (self.deadline if self.deadline is not None else default)

    def _get_all(self, path: str, params: dict, *, noun: str) -> list[dict]:
        until = self._until()  # one deadline for every page
        items: list[dict] = []
        seen: set[str] = set()
        query = dict(params)
        for _ in range(MAX_PAGES):
            answer, _ = self._call("GET", path, noun=noun, params=query, until=until)
            page, cursor = shapes.page_items(answer, path)
            items.extend(page)
            if not cursor or not page:
                return items
            if cursor in seen:
                log.warning("maxim GET %s repeated a cursor; stopping after %d items", path, len(items))
                return items
            seen.add(cursor)
            query = {**params, "cursor": cursor}
        log.warning("maxim GET %s still had more after %d pages; stopping", path, MAX_PAGES)
        return items

    def _call(
        self, method: str, path: str, *, noun: str, until: float, params: dict | None = None, body: dict | None = None
    ) -> tuple[Any, float]:
        answer, elapsed_ms = self._send(method, path, noun=noun, params=params, body=body, until=until)
        try:
            # Depth-limited: a hostile answer nested thousands deep would raise RecursionError.
            # Whatever Maxim sends back is stored and shown: the key never is, even when echoed.
            return redact_all(load_json(answer.body, max_depth=ANSWER_MAX_DEPTH), self._api_key), elapsed_ms
        except ValueError:  # JSONTextError included
            message = f"Maxim answered with something that is not JSON it could read; check that {self.base_url} is the Maxim API."
            raise MaximError(message + (MAYBE_DONE if method != "GET" else ""), status=answer.status) from None

    def _send(
        self, method: str, path: str, *, noun: str, params: dict | None, body: dict | None, until: float
    ) -> tuple[outbound.Answer, float]:
        attempt = 0
        spent = 0.0  # request time plus sleeps, in seconds: the retry budget
        while True:
            started = time.perf_counter()
            delay: float | None = None
            try:
                request = self._http.build_request(
                    method,
                    self._url(path),
                    params=params,
                    json=body,
                    headers=self._headers(),
                    timeout=self._timeout(until),
                )
                answer = outbound.fetch(self._http, request, until=until)
            except (httpx.TransportError, outbound.DeadlinePassed) as exc:
                spent += time.perf_counter() - started
                log.info("maxim %s %s failed: %s", method, path, type(exc).__name__)
                if time.monotonic() >= until or isinstance(exc, outbound.DeadlinePassed):
                    error = self._deadline_error(method, until - started)
                else:
                    error = self._transport_error(exc, method)
                    # Only a GET is re-sent after a transport error: a POST may have reached Maxim.
                    delay = _backoff(attempt) if method == "GET" else None
            except outbound.AnswerTooLarge:
                error = MaximError(
                    f"Maxim's answer was larger than {outbound.MAX_ANSWER_BYTES // 2**20} MB; "
                    f"check that {self.base_url} is the Maxim API." + (MAYBE_DONE if method != "GET" else "")
                )
            except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, UnicodeError) as exc:
                # Nothing from httpx leaves the client: its tracebacks hold the request headers (the key).
                log.info("maxim %s %s failed: %s", method, path, type(exc).__name__)
                error = MaximError(
                    f"Could not talk to Maxim at {self._host} ({type(exc).__name__}); check the base URL."
                )
            else:
                elapsed = time.perf_counter() - started
                spent += elapsed
                log.info("maxim %s %s %s %.0fms", method, path, answer.status, elapsed * 1000)
                if answer.is_success:
                    return answer, elapsed * 1000
                error = self._status_error(answer, noun)
                delay = _retry_delay(method, answer.status, error.retry_after, attempt)
            if (
                delay is None
                or attempt >= self.max_retries
                or spent + delay > self.max_retry_seconds
                or time.monotonic() + delay >= until
            ):
                raise error
            self._sleep(delay)
            spent += delay
            attempt += 1

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url + path)
        return url

    def _timeout(self, until: float) -> httpx.Timeout:
        """The client's per-phase timeouts, none reaching past the call's deadline."""
        left = max(until - time.monotonic(), 0.001)
        base = self._http.timeout
        return httpx.Timeout(
            connect=min(base.connect or left, left),
            read=min(base.read or left, left),
            write=min(base.write or left, left),
            pool=min(base.pool or left, left),
        )

    def _deadline_error(self, method: str, allowed: float) -> MaximError:
        message = f"Maxim did not finish answering within {_duration(allowed)}."
        return MaximError(message + (MAYBE_DONE if method != "GET" else " Try again in a minute."), retryable=True)

    def _headers(self) -> dict[str, str]:
        # Sent per request so the shared pool never holds a key.
        return {
            "x-maxim-api-key": self._api_key,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }

    def _status_error(self, answer: outbound.Answer, noun: str) -> MaximError:
        status = answer.status
        said = self._maxim_said(answer)
        retry_after = _retry_after_seconds(answer.headers.get("retry-after"))
        wait = f" Wait {_duration(retry_after) if retry_after else 'a moment'} and try again."
        if status == 400:
            message = f"Maxim rejected the request: {said}" if said else "Maxim rejected the request (400)."
        elif status == 401:
            message = "Maxim rejected the API key; check the key saved for this workspace."
        elif status == 403:
            message = f"The API key has no access to this {noun}; check the key's permissions in Maxim."
        elif status == 404:
            message = f"Maxim could not find the {noun}; it may have been deleted. Refresh and try again."
        elif status == 408:
            message = "Maxim timed out waiting for the request (408)." + wait
        elif status == 429:
            message = "Maxim is rate limiting requests (429)." + wait
        elif status >= 500:
            message = f"Maxim had a server error ({status}). Try again in a minute."
        elif 300 <= status < 400:
            message = f"Maxim answered with a redirect ({status}); check the base URL {self.base_url} (http or https?)."
        else:
            message = f"Maxim refused the request ({status})" + (f": {said}" if said else ".")
        retryable = status in (408, 429) or status >= 500
        return MaximError(message, status=status, retryable=retryable, retry_after=retry_after)

    def _maxim_said(self, answer: outbound.Answer) -> str:
        """Maxim's own error sentence, from `{"error": {"message": ...}}` or `{"error": "..."}` only.

        Any other body (an HTML page, a bare text, some other JSON) is never shown: a base URL
        that is not Maxim must not become a way to read what another server says.
        """
        try:
            body = load_json(answer.body, max_depth=ANSWER_MAX_DEPTH)
        except ValueError:
            return ""
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return self._clean(error["message"])
        if isinstance(error, str):
            return self._clean(error)
        return ""

    def _clean(self, text: str) -> str:
        text = " ".join(text.split())
        text = redact(text, self._api_key)
        return text if len(text) <= _SAID_LIMIT else text[: _SAID_LIMIT - 1] + "…"

    def _transport_error(self, exc: httpx.TransportError, method: str) -> MaximError:
        host = self._host
        maybe_done = MAYBE_DONE if method != "GET" else " Try again in a minute."
        if isinstance(exc, httpx.ConnectTimeout):
            message = (
                f"Could not connect to Maxim at {host} within {_timeout(exc, 'connect')}; "
                "check the base URL and your network."
            )
        elif isinstance(exc, httpx.ReadTimeout):
            message = f"Maxim did not answer within {_timeout(exc, 'read')}." + maybe_done
        elif isinstance(exc, httpx.WriteTimeout):
            message = "Sending the request to Maxim took too long; check your network and try again."
        elif isinstance(exc, httpx.PoolTimeout):
            message = "Too many Maxim requests are already in progress; try again in a moment."
        elif isinstance(exc, httpx.ConnectError):
            message = {
                "dns": f"Could not find the Maxim host {urlsplit(self.base_url).hostname} (DNS lookup failed); "
                "check the base URL.",
                "refused": f"Maxim at {host} refused the connection; "
                "check the base URL and that the server is running.",
                "tls": f"Could not make a secure connection to {host}; "
                "check the base URL and the server's certificate.",
            }.get(_connect_failure(exc), f"Could not connect to Maxim at {host}; check the base URL and network.")
        elif isinstance(exc, (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)):
            message = f"The connection to Maxim at {host} broke before an answer arrived." + maybe_done
        else:
            message = f"Could not talk to Maxim at {host} ({type(exc).__name__})." + maybe_done
        never_left = isinstance(exc, (httpx.PoolTimeout, httpx.ConnectTimeout, httpx.ConnectError))
        return MaximError(message, retryable=True, not_sent=never_left)


# -- retry helpers -------------------------------------------------------------


def _backoff(attempt: int) -> float:
    return 0.5 * 2**attempt  # 0.5, 1, 2, 4 ...


def _retry_delay(method: str, status: int, retry_after: float | None, attempt: int) -> float | None:
    """Seconds to wait before re-sending, or None when re-sending is not safe."""
    # A 429 means Maxim refused the request unprocessed, so even a run may be re-sent.
    # A POST with 408/5xx may have been processed (and a run billed): never re-send it.
    if status == 429 or (method == "GET" and (status == 408 or status >= 500)):
        return retry_after if retry_after is not None else _backoff(attempt)
    return None


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (delta-seconds or HTTP date), None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86_400:  # a server may say anything (Retry-After: 1e308): no 300-digit text
        return "more than a day"
    if seconds >= 7_200:
        return f"{math.ceil(seconds / 3600)} hours"
    if seconds >= 120:
        return f"{math.ceil(seconds / 60)} minutes"
    whole = max(math.ceil(seconds), 1)
    return "1 second" if whole == 1 else f"{whole} seconds"


def _timeout(exc: httpx.TimeoutException, phase: str) -> str:
    try:
        value = exc.request.extensions.get("timeout", {}).get(phase)
    except RuntimeError:  # no request attached
        value = None
    return _duration(value) if isinstance(value, (int, float)) else "the time allowed"


def _connect_failure(exc: BaseException) -> str:
    """'dns', 'refused', 'tls' or '' from the exception chain (text is never shown)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, socket.gaierror):
            return "dns"
        if isinstance(seen, ConnectionRefusedError):
            return "refused"
        if isinstance(seen, ssl.SSLError):
            return "tls"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    if any(
        s in text
        for s in (
            "name or service not known",
            "nodename nor servname",
            "getaddrinfo",
            "name resolution",
            "no address associated",
        )
    ):
        return "dns"
    if any(s in text for s in ("connection refused", "errno 111", "10061", "actively refused")):
        return "refused"
    if "ssl" in text or "certificate" in text:
        return "tls"
    return ""
