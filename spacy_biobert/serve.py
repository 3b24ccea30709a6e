"""`spacy-biobert serve MODEL`: a small HTTP service around a pipeline
(FastAPI; run by uvicorn). Needs the `serve` extra:
`pip install 'spacy-biobert[serve]'`.

Endpoints
- `GET /health`: `{"status": "ok", "model": ..., "version": ..., "pipeline": [...],
  "precision": "fp32" | "bf16" | null (how the transformer runs), "limits": {...}}`.
- `POST /annotate[?threshold=0.5]`, by `Content-Type`:
  - `application/json`: `{"text": "...", "id": "optional"}`, one document;
  - `text/x-pubtator` (or `application/x-pubtator`): PubTator documents
    (title and abstract lines; annotations in it are ignored);
  - `text/plain`: the body is one document.

  Answer: `{"documents": [...], "threshold": 0.5}`, each document in the JSONL
  schema `spacy-biobert annotate` writes (`spacy_biobert.corpora.jsonl`): "id",
  "text", "passages", "mentions" (start/end character offsets, "type" label,
  "kb_id") and "predicted_relations" (head/tail mention ids and offsets,
  "label", "score"), made by the same writer.

Errors are JSON `{"detail": "..."}` that say what was wrong and how to fix it:
400 (a Host header not in `allowed_hosts`), 401 (no or a wrong token), 408 (the
body did not arrive within `body_timeout` seconds), 413 (body over `max_bytes`,
or more than `max_docs` documents), 415 (another content type), 422 (not JSON /
not UTF-8, JSON nested too deeply or with an integer of over 4,300 digits, no
"text" string, text or id with a lone surrogate escape such as "\\ud800",
empty text or an empty PubTator body, a document over `max_chars`, unparsable
PubTator, threshold outside [0, 1]).

Optional protection: `token` (a shared secret: every request must send
`Authorization: Bearer TOKEN`, compared in constant time), `allowed_hosts`
(Starlette's TrustedHostMiddleware) and `docs` (the /docs, /redoc and
/openapi.json pages, off by default).

The pipeline runs one request at a time (a lock), in a worker thread, so the
server keeps accepting connections while a request is annotated; each request
runs inside `nlp.memory_zone()`, so strings of unseen words do not pile up in
the vocab over a long-lived service. `server_config` gives the uvicorn settings
`spacy-biobert serve` uses: a connection must send a complete request head
within `header_timeout` seconds (uvicorn has no such timeout of its own; a
client that stalls or dribbles headers is disconnected), idle keep-alive
connections close after `keep_alive` seconds, a request head is at most
`max_header_bytes` (431 above, however it arrives: in one read or in many),
and at most `max_connections` connections are served at once (503 above). A
client that closes its connection before its body has arrived is logged in
one line (logger "spacy_biobert.serve"), not as an application error.
"""

import asyncio
import hmac
import io
import json
import logging
import os
import re
import threading
from typing import Any, Dict, List, Optional, Sequence

from .errors import Errors

JSON_TYPES = ("application/json",)
PUBTATOR_TYPES = ("text/x-pubtator", "application/x-pubtator")
TEXT_TYPES = ("text/plain",)
DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_DOCS = 100
DEFAULT_MAX_CHARS = 100_000
DEFAULT_BODY_TIMEOUT = 30.0
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE = 5
DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_CONNECTIONS = 64
logger = logging.getLogger("spacy_biobert.serve")
# The name a request body has in the corpus readers' messages (then said as
# "line N" or "the body", `_strip_path`).
_BODY = "<request body>"


def _check_limit(name: str, value: Optional[int]) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(Errors.E504.format(name=name, value=value))


class Annotator:
    """The framework-free part of the service: request body in, JSON-ready
    answer out; raises `RequestError(status, detail)` for bad input."""

    def __init__(
        self,
        nlp: Any,
        *,
        max_bytes: Optional[int] = DEFAULT_MAX_BYTES,
        max_docs: Optional[int] = DEFAULT_MAX_DOCS,
        max_chars: Optional[int] = DEFAULT_MAX_CHARS,
        threshold: Optional[float] = None,
        batch_size: int = 16,
    ):
        from .pipeline.relations import resolve_threshold

        for name, value in (("max_bytes", max_bytes), ("max_docs", max_docs), ("max_chars", max_chars)):
            _check_limit(name, value)
        self.nlp = nlp
        self.max_bytes = max_bytes
        self.max_docs = max_docs
        self.max_chars = max_chars
        self.threshold = resolve_threshold(nlp, threshold)  # None: the pipeline's own
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def health(self) -> Dict[str, Any]:
        from .precision import pipeline_precision

        return {
            "status": "ok",
            "model": f"{self.nlp.meta.get('lang', '')}_{self.nlp.meta.get('name', '')}",
            "version": self.nlp.meta.get("version", ""),
            "pipeline": list(self.nlp.pipe_names),
            "precision": pipeline_precision(self.nlp),
            "threshold": self.threshold,
            "limits": {
                "max_bytes": self.max_bytes,
                "max_docs": self.max_docs,
                "max_chars": self.max_chars,
            },
            "content_types": list(JSON_TYPES + PUBTATOR_TYPES + TEXT_TYPES),
        }

    def records(self, body: bytes, content_type: Optional[str]) -> List[Any]:
        """The documents of a request body (Records), or a RequestError."""
        from .annotate.inputs import Record

        kind = _media_type(content_type)
        if kind not in JSON_TYPES + PUBTATOR_TYPES + TEXT_TYPES:
            raise RequestError(
                415,
                f"unsupported Content-Type {content_type!r}. Fix: send application/json "
                '({"text": "...", "id": "..."}), text/x-pubtator (PubTator documents) '
                "or text/plain (one document).",
            )
        if self.max_bytes is not None and len(body) > self.max_bytes:
            raise RequestError(413, _too_large(len(body), self.max_bytes))
        try:
            text = body.decode("utf8")
        except UnicodeDecodeError as err:
            raise RequestError(422, f"the body is not valid UTF-8 ({err}).") from None
        if kind in JSON_TYPES:
            records = [_json_record(text)]
        elif kind in TEXT_TYPES:
            records = [Record(0, "", text)]
        elif not text.strip():
            raise RequestError(
                422,
                "the PubTator body is empty. Fix: send one or more documents, each a "
                "'PMID|t|title' line and a 'PMID|a|abstract' line.",
            )
        else:
            records = self._pubtator_records(body)
        if self.max_docs is not None and len(records) > self.max_docs:
            raise RequestError(
                413,
                f"the request holds {len(records)} documents, over the limit of {self.max_docs}. "
                "Fix: send fewer documents per request (server option --max-docs).",
            )
        from .annotate.inputs import printable, surrogate_problem

        for rec in records:
            label = f"document {printable(rec.id)!r}" if rec.id else "the document"
            problem = surrogate_problem(rec)
            if problem is not None:
                raise RequestError(422, f"{label}: {problem}.")
            if not rec.text.strip():
                raise RequestError(422, f"{label} has empty text. Fix: send the text to annotate.")
            if self.max_chars is not None and len(rec.text) > self.max_chars:
                raise RequestError(
                    422,
                    f"{label} has {len(rec.text)} characters, over the limit of {self.max_chars}. "
                    "Fix: split it, or raise the server option --max-chars.",
                )
            if not rec.passages:
                rec.passages = [("text", 0, rec.text)]
        return records

    def _pubtator_records(self, body: bytes) -> List[Any]:
        """The documents of a PubTator body, parsed in memory by the PubTator
        reader of the format table (through annotate's input reading)."""
        from .annotate.inputs import Record, iter_input

        stream = io.BytesIO(body)
        stream.name = _BODY  # what the reader's messages call it
        try:
            items = list(iter_input(stream, "pubtator", max_chars=None))
        except ValueError as err:  # CorpusFormatError included: the whole body is bad
            raise RequestError(422, f"cannot read the body as PubTator: {_strip_path(err, _BODY)}") from None
        bad = [it for it in items if not isinstance(it, Record)]
        if bad:
            reasons = "; ".join(f"{it.id}: {_strip_path(it.reason, _BODY)}" for it in bad)
            raise RequestError(422, f"cannot read the body as PubTator: {reasons}")
        if not items:
            raise RequestError(422, "the PubTator body holds no document.")
        return items

    def annotate(self, records: List[Any], threshold: Optional[float] = None) -> Dict[str, Any]:
        from .annotate.runner import Annotated, annotate_window

        threshold = self.threshold if threshold is None else threshold
        with self._lock:
            results = annotate_window(
                self.nlp, records, output_format="jsonl", threshold=threshold, batch_size=self.batch_size
            )
        documents = []
        for res in results:
            if not isinstance(res, Annotated):
                raise RequestError(422, f"document {res.id!r}: {res.reason}")  # a Reject: printable
            documents.append(json.loads(res.chunk))
        return {"documents": documents, "threshold": threshold}


def _json_record(text: str) -> Any:
    """The one document of a JSON body, or a 422 RequestError."""
    from .annotate.inputs import BadRecord, Record, json_record

    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(
            422, f"the body is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})."
        ) from None
    except ValueError as err:  # an integer of more than 4,300 digits
        raise RequestError(422, f"the body is not usable JSON ({err}).") from None
    except RecursionError:
        raise RequestError(
            422, 'the JSON body is nested too deeply. Fix: send {"text": "...", "id": "..."}.'
        ) from None
    try:
        text, doc_id = json_record(obj)  # the per-record check annotate's JSONL input uses
    except BadRecord as bad:
        if bad.field == "text":
            raise RequestError(
                422, 'the JSON body must be an object with a "text" string, e.g. {"text": "..."}.'
            ) from None
        raise RequestError(422, '"id" must be a string or an integer.') from None
    return Record(0, "" if doc_id is None else doc_id, text)


class ClientGone(Exception):
    """The client closed the connection before its request body arrived
    (`received` bytes of it; `declared`: its Content-Length, if any)."""

    def __init__(self, received: int, declared: Optional[str]):
        super().__init__(f"{received} of {declared or 'an unknown number of'} bytes")
        self.received = received
        self.declared = declared


class RequestError(Exception):
    """A bad request: the HTTP status and what to tell the client."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def check_token(token: Optional[str]) -> Optional[str]:
    """The shared secret, or None (no token): at least 16 characters, visible
    ASCII (it travels in an HTTP header); else E506."""
    if token is not None and not re.fullmatch(r"[!-~]{16,}", token):
        raise ValueError(
            Errors.E506.format(
                name="the token",
                what="at least 16 visible ASCII characters (no spaces)",
                value="(hidden)" if token else token,
                fix="generate one, e.g. python -c \"import secrets; print(secrets.token_urlsafe(32))\"",
            )
        )
    return token


def _check_positive_seconds(name: str, value: Optional[float]) -> None:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is not None and not (number and 0 < value < float("inf")):
        raise ValueError(
            Errors.E506.format(name=name, what="None (no timeout) or a number of seconds > 0",
                               value=value, fix=f"pass a positive {name}")
        )


class _TokenCheck:
    """ASGI middleware: 401 unless the request carries `Authorization: Bearer
    TOKEN` (compared with hmac.compare_digest, in constant time)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode("ascii")

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for key, value in scope.get("headers", []):
            if key.lower() == b"authorization":
                given = value
                break
        scheme, _, secret = given.strip().partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(secret.strip(), self.token):
            await self.app(scope, receive, send)
            return
        from starlette.responses import JSONResponse

        response = JSONResponse(
            {"detail": "missing or wrong token. Fix: send the header 'Authorization: Bearer TOKEN' "
                       "with the server's token (--token or SPACY_BIOBERT_TOKEN)."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)


def create_app(
    nlp: Any,
    *,
    max_bytes: Optional[int] = DEFAULT_MAX_BYTES,
    max_docs: Optional[int] = DEFAULT_MAX_DOCS,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
    threshold: Optional[float] = None,
    token: Optional[str] = None,
    allowed_hosts: Optional[Sequence[str]] = None,
    docs: bool = False,
    body_timeout: Optional[float] = DEFAULT_BODY_TIMEOUT,
    precision: Optional[str] = None,
) -> Any:
    """The FastAPI application serving `nlp` (a loaded pipeline or its name
    or folder). Limits: None = unlimited. `token`: a shared secret every
    request must send as `Authorization: Bearer TOKEN` (None: no check);
    `allowed_hosts`: the Host header values served (e.g. ["api.example.org",
    "*.example.org"]; None: any); `threshold`: the default relation threshold
    (None: the one the pipeline's `biobert_relations` was configured with; a
    request's `?threshold=` overrides it); `docs`: serve /docs, /redoc and
    /openapi.json; `body_timeout`: seconds a request body may take to arrive
    (408 after); `precision`: "fp32", "bf16" or "auto", how the transformer
    runs on the CPU (`spacy_biobert.precision.set_precision`; None: as the
    pipeline is set)."""
    try:
        from fastapi import FastAPI, HTTPException, Query, Request, Response
        from starlette.concurrency import run_in_threadpool
        from starlette.middleware.trustedhost import TrustedHostMiddleware
    except ImportError as err:
        raise ImportError(Errors.E505.format(module=err.name)) from None
    from .pipeline.relations import check_threshold
    from .precision import check_precision, set_precision

    check_token(token)
    _check_positive_seconds("body_timeout", body_timeout)
    if precision is not None:
        check_precision(precision)
    if allowed_hosts is not None and (
        isinstance(allowed_hosts, str) or not all(isinstance(h, str) and h for h in allowed_hosts)
    ):
        raise ValueError(
            Errors.E506.format(name="allowed_hosts", what="a list of host names", value=allowed_hosts,
                               fix='pass e.g. ["localhost", "*.example.org"]')
        )
    if isinstance(nlp, (str, os.PathLike)):
        from .models.base_models import load_pipeline

        nlp = load_pipeline(nlp)
    if precision is not None:
        set_precision(nlp, precision, where="precision (serve)")
    annotator = Annotator(
        nlp, max_bytes=max_bytes, max_docs=max_docs, max_chars=max_chars, threshold=threshold
    )
    app = FastAPI(
        title="spacy-biobert",
        description="Biomedical NER and relation extraction with a spaCy pipeline.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.annotator = annotator
    # The last added runs first: the host check, then the token.
    if token is not None:
        app.add_middleware(_TokenCheck, token=token)
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    @app.get("/health")
    def health() -> Dict[str, Any]:
        return annotator.health()

    @app.post("/annotate")
    async def annotate(
        request: Request,
        threshold: Optional[float] = Query(None, description="Relations scored at least this"),
    ) -> Dict[str, Any]:
        if threshold is not None:
            try:
                check_threshold(threshold)
            except ValueError as err:
                raise HTTPException(422, str(err)) from None
        try:
            body = await _read_body(request, annotator.max_bytes, body_timeout)
            records = annotator.records(body, request.headers.get("content-type"))
            return await run_in_threadpool(annotator.annotate, records, threshold)
        except RequestError as err:
            # A client too slow to send its body is not kept (uvicorn drains a 413 body).
            headers = {"Connection": "close"} if err.status == 408 else None
            raise HTTPException(err.status, err.detail, headers=headers) from None
        except ClientGone as gone:
            # Nobody is left to answer: one line in the log, not an application error.
            client = request.client
            where = f"{client.host}:{client.port}" if client else "a client"
            logger.warning("%s disconnected before its request body arrived (%s)", where, gone)
            return Response(status_code=400)

    return app


async def _read_body(request: Any, max_bytes: Optional[int], timeout: Optional[float] = None) -> bytes:
    """The body, refused (413) as soon as it is known to be too large: from
    Content-Length before reading, or while streaming a chunked body; and
    refused (408) when it has not all arrived within `timeout` seconds."""
    declared = request.headers.get("content-length")
    if max_bytes is not None and declared is not None and declared.isdigit():
        if int(declared) > max_bytes:
            raise RequestError(413, _too_large(int(declared), max_bytes))

    from starlette.requests import ClientDisconnect

    async def collect() -> bytes:
        chunks = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise RequestError(413, _too_large(size, max_bytes, at_least=True))
                chunks.append(chunk)
        except ClientDisconnect:
            raise ClientGone(size, declared) from None
        return b"".join(chunks)

    if timeout is None:
        return await collect()
    try:
        return await asyncio.wait_for(collect(), timeout)
    except asyncio.TimeoutError:
        raise RequestError(
            408, f"the request body did not arrive within {timeout:g} seconds. Fix: send it at once."
        ) from None


def server_config(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    keep_alive: int = DEFAULT_KEEP_ALIVE,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_connections: Optional[int] = DEFAULT_MAX_CONNECTIONS,
    log_level: str = "info",
) -> Any:
    """The uvicorn.Config `spacy-biobert serve` runs `app` with (see the
    module docs): HTTP/1.1 by h11 with a request-head timeout, keep-alive
    timeout, head size limit and connection limit."""
    try:
        import uvicorn
    except ImportError as err:
        raise ImportError(Errors.E505.format(module=err.name)) from None
    _check_positive_seconds("header_timeout", header_timeout)
    _check_positive_seconds("keep_alive", keep_alive)
    for name, value in (("max_header_bytes", max_header_bytes), ("max_connections", max_connections)):
        _check_limit(name, value)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_protocol_with_header_limits(header_timeout, max_header_bytes),
        ws="none",
        timeout_keep_alive=keep_alive,
        h11_max_incomplete_event_size=max_header_bytes,
        limit_concurrency=max_connections,
        log_level=log_level,
    )


_HEAD_END = re.compile(b"\n\r?\n")


def _protocol_with_header_limits(seconds: float, max_header_bytes: int) -> Any:
    """uvicorn's h11 protocol with two limits on a request head:

    - time: a connection that has not sent a complete request head within
      `seconds` of connecting or of the previous response is closed
      (uvicorn's own keep-alive timer stops at the first byte, so a client
      sending one header byte at a time would hold the connection);
    - size: a head over `max_header_bytes` is answered 431 and the
      connection closed, whether it arrives in one read or in many (h11's
      own limit only holds while a head is incomplete, so a 100 KB head
      arriving in one read was served)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderLimitsH11Protocol(H11Protocol):
        _head_timer: Any = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_timer()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.transport.is_closing() or self._waiting_for_head():
                return
            self._cancel_head_timer()  # a request head arrived

        def handle_events(self) -> None:
            # Before h11 parses what is buffered: while the client is between
            # requests, the buffer starts with the next request's head.
            if self.conn.their_state is h11.IDLE and self._head_too_large():
                return
            super().handle_events()

        def _head_too_large(self) -> bool:
            buffered = self.conn.trailing_data[0]
            end = _HEAD_END.search(buffered)
            size = end.end() if end is not None else len(buffered)
            if size <= max_header_bytes:
                return False
            client = "%s:%d" % tuple(self.client) if self.client else "a client"
            logger.warning(
                "refused a request head of %s%d bytes from %s (431; the limit is %d bytes)",
                "" if end is not None else "at least ", size, client, max_header_bytes,
            )
            detail = (
                f"the request head is {'' if end is not None else 'at least '}{size} bytes, over "
                f"the limit of {max_header_bytes}. Fix: send fewer or shorter headers."
            ).encode("ascii")
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                b"content-length: " + str(len(detail)).encode("ascii") + b"\r\n\r\n" + detail
            )
            self.transport.close()
            return True

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self._waiting_for_head():
                self._arm_head_timer()

        def connection_lost(self, exc: Optional[Exception]) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def _waiting_for_head(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm_head_timer(self) -> None:
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(seconds, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if self._waiting_for_head() and not self.transport.is_closing():
                self.transport.close()

    return HeaderLimitsH11Protocol


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    return (
        f"the request body is {'at least ' if at_least else ''}{size} bytes, over the limit of "
        f"{limit}. Fix: send less per request, or raise the server option --max-bytes."
    )


def _media_type(content_type: Optional[str]) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _strip_path(err: Any, path: str) -> str:
    """Messages name the request body as a file (`_BODY`): say 'line N' (or
    nothing) instead."""
    text = re.sub(re.escape(path) + r":(\d+):", r"line \1:", str(err))
    return text.replace(f"{path}: ", "").replace(path, "the body")
