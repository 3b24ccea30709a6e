"""`spacy-biobert serve MODEL`: a small HTTP service around a pipeline
(FastAPI; run by uvicorn). Needs the `serve` extra:
`pip install 'spacy-biobert[serve]'`.

Endpoints
- `GET /health`: `{"status": "ok", "model": ..., "version": ..., "pipeline": [...],
  "limits": {...}}`.
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
413 (body over `max_bytes`, or more than `max_docs` documents), 415 (another
content type), 422 (not JSON / not UTF-8, no "text" string, empty text, a
document over `max_chars`, unparsable PubTator, threshold outside [0, 1]).

The pipeline runs one request at a time (a lock), in a worker thread, so the
server keeps accepting connections while a request is annotated.
"""

import json
import os
import tempfile
import threading
from typing import Any, Dict, List, Optional

from .errors import Errors

JSON_TYPES = ("application/json",)
PUBTATOR_TYPES = ("text/x-pubtator", "application/x-pubtator")
TEXT_TYPES = ("text/plain",)
DEFAULT_MAX_BYTES = 1_000_000
DEFAULT_MAX_DOCS = 100
DEFAULT_MAX_CHARS = 100_000


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
        threshold: float = 0.5,
        batch_size: int = 16,
    ):
        from .pipeline.relations import _check_threshold

        for name, value in (("max_bytes", max_bytes), ("max_docs", max_docs), ("max_chars", max_chars)):
            _check_limit(name, value)
        _check_threshold(threshold)
        self.nlp = nlp
        self.max_bytes = max_bytes
        self.max_docs = max_docs
        self.max_chars = max_chars
        self.threshold = threshold
        self.batch_size = batch_size
        self._lock = threading.Lock()

    def health(self) -> Dict[str, Any]:
        return {
            "status": "ok",
            "model": f"{self.nlp.meta.get('lang', '')}_{self.nlp.meta.get('name', '')}",
            "version": self.nlp.meta.get("version", ""),
            "pipeline": list(self.nlp.pipe_names),
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
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise RequestError(
                    422, f"the body is not valid JSON ({err.msg} at line {err.lineno} column {err.colno})."
                ) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise RequestError(
                    422, 'the JSON body must be an object with a "text" string, e.g. {"text": "..."}.'
                )
            doc_id = obj.get("id")
            if doc_id is not None and not isinstance(doc_id, (str, int)):
                raise RequestError(422, '"id" must be a string or an integer.')
            records = [Record(0, "" if doc_id is None else str(doc_id), obj["text"])]
        elif kind in TEXT_TYPES:
            records = [Record(0, "", text)]
        else:
            records = self._pubtator_records(body)
        if self.max_docs is not None and len(records) > self.max_docs:
            raise RequestError(
                413,
                f"the request holds {len(records)} documents, over the limit of {self.max_docs}. "
                "Fix: send fewer documents per request (server option --max-docs).",
            )
        for rec in records:
            label = f"document {rec.id!r}" if rec.id else "the document"
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
        from .annotate.inputs import Record, iter_input

        fd, path = tempfile.mkstemp(suffix=".pubtator")
        try:
            with os.fdopen(fd, "wb") as fp:
                fp.write(body)
            items = list(iter_input(path, "pubtator", max_chars=None))
        except ValueError as err:  # CorpusFormatError included: the whole body is bad
            raise RequestError(422, f"cannot read the body as PubTator: {_strip_path(err, path)}") from None
        finally:
            os.unlink(path)
        bad = [it for it in items if not isinstance(it, Record)]
        if bad:
            reasons = "; ".join(f"{it.id}: {_strip_path(it.reason, path)}" for it in bad)
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
                raise RequestError(422, f"document {res.id!r}: {res.reason}")
            documents.append(json.loads(res.chunk))
        return {"documents": documents, "threshold": threshold}


class RequestError(Exception):
    """A bad request: the HTTP status and what to tell the client."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


def create_app(
    nlp: Any,
    *,
    max_bytes: Optional[int] = DEFAULT_MAX_BYTES,
    max_docs: Optional[int] = DEFAULT_MAX_DOCS,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
    threshold: float = 0.5,
) -> Any:
    """The FastAPI application serving `nlp` (a loaded pipeline or its name
    or folder). Limits: None = unlimited."""
    try:
        from fastapi import FastAPI, HTTPException, Query, Request
        from starlette.concurrency import run_in_threadpool
    except ImportError as err:
        raise ImportError(Errors.E505.format(module=err.name)) from None
    from .pipeline.relations import _check_threshold

    if isinstance(nlp, (str, os.PathLike)):
        import spacy

        nlp = spacy.load(nlp)
    annotator = Annotator(
        nlp, max_bytes=max_bytes, max_docs=max_docs, max_chars=max_chars, threshold=threshold
    )
    app = FastAPI(
        title="spacy-biobert",
        description="Biomedical NER and relation extraction with a spaCy pipeline.",
    )
    app.state.annotator = annotator

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
                _check_threshold(threshold)
            except ValueError as err:
                raise HTTPException(422, str(err)) from None
        try:
            body = await _read_body(request, annotator.max_bytes)
            records = annotator.records(body, request.headers.get("content-type"))
            return await run_in_threadpool(annotator.annotate, records, threshold)
        except RequestError as err:
            raise HTTPException(err.status, err.detail) from None

    return app


async def _read_body(request: Any, max_bytes: Optional[int]) -> bytes:
    """The body, refused (413) as soon as it is known to be too large: from
    Content-Length before reading, or while streaming a chunked body."""
    declared = request.headers.get("content-length")
    if max_bytes is not None and declared is not None and declared.isdigit():
        if int(declared) > max_bytes:
            raise RequestError(413, _too_large(int(declared), max_bytes))
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise RequestError(413, _too_large(size, max_bytes, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    return (
        f"the request body is {'at least ' if at_least else ''}{size} bytes, over the limit of "
        f"{limit}. Fix: send less per request, or raise the server option --max-bytes."
    )


def _media_type(content_type: Optional[str]) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _strip_path(err: Any, path: str) -> str:
    """Messages name the request's temporary file: say 'line N' instead."""
    text = str(err)
    return text.replace(f"{path}:", "line ").replace(path, "the body")
