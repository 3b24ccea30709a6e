"""Plain text: documents as lines of text, with no annotations.

"Plain text" means the same in every command (`convert --format text`,
`annotate`, `pretrain`): one option, `text_docs` (CLI `--text-docs`), with one
default:

- "line" (the default): every line is a document; its id is its line number
  (from 1); an empty or whitespace-only line is an empty document (`annotate`
  rejects it as "empty", the corpus reader passes it over);
- "blank-line": documents are separated by blank (empty or whitespace-only)
  lines; a document's text is its lines joined by "\\n", its id the number of
  its first line. This is also the layout of BERT's pretraining text (one
  sentence per line, a blank line between documents).

Each line is a passage of its document ("text", offset, line) and so, for
`pretrain`, ends a sentence. Lines end at "\\n" (a "\\r" before it is
dropped); the leading UTF-8 byte order mark of the file is dropped; a path
ending in ".gz" is read decompressed, and a stream (binary or text) is read as
it is. With a `max_chars` bound nothing longer is held in memory: a line of
more than 4 bytes a character (UTF-8's most) is skipped unread, and a
"blank-line" document stops collecting its lines once it is over the bound.
"""

from dataclasses import dataclass, field
from typing import Any, Iterator, List, Optional, Tuple

from ..errors import Errors
from .checks import DEFAULT_MAX_CHARS
from .errors import CorpusFormatError, CorpusStats
from .io import Source, open_binary
from .reading import start_reading
from .records import SourceDocument

TEXT_DOCS = ("line", "blank-line")
DEFAULT_TEXT_DOCS = "line"
# Bytes a character may take in UTF-8: a line longer than this many bytes a
# character (plus a byte order mark) holds a text over the bound.
TEXT_BYTES_PER_CHAR = 4
_BOM = b"\xef\xbb\xbf"


@dataclass
class TextItem:
    """One document of a plain-text input, in input order, or why it cannot
    be used. `index`: 0-based position among the documents; `line`: the
    (first) line of the document, or the line of the problem; `text` is None
    for a problem, then `reason` says what is wrong (`kind`: "encoding" or
    "too-long") and `cause` the detail (the decoding error, or the length)."""

    index: int
    doc_id: str
    text: Optional[str]
    passages: List[Tuple[str, int, str]] = field(default_factory=list)
    line: int = 0
    reason: str = ""
    kind: str = ""
    cause: str = ""


def check_text_docs(value: Any) -> str:
    """`value` when it is one of TEXT_DOCS, else E119."""
    if value not in TEXT_DOCS:
        raise ValueError(Errors.E119.format(options=", ".join(TEXT_DOCS), value=value))
    return value


def capped_lines(fp: Any, cap: Optional[int]) -> Iterator[Tuple[Optional[bytes], int]]:
    """(line, size) for each line of a binary file; a line over `cap` bytes
    (newline excluded) is skipped in 1 MiB reads and given as (None, size), so
    that no line over the cap is ever held in memory."""
    while True:
        raw = fp.readline() if cap is None else fp.readline(cap + 2)
        if not raw:
            return
        if cap is None or len(raw.rstrip(b"\r\n")) <= cap:
            yield raw, len(raw)
            continue
        size = len(raw)
        while not raw.endswith(b"\n"):
            raw = fp.readline(1 << 20)
            if not raw:
                break
            size += len(raw)
        yield None, size


def over_cap(lineno: int, size: int, max_chars: Optional[int], per_char: str) -> str:
    """Why a line of `size` bytes was not read."""
    return (
        f"line {lineno} is {size} bytes, too long to hold a text of --max-chars {max_chars} "
        f"characters ({per_char}); not read"
    )


def iter_text(
    source: Source, *, text_docs: str = DEFAULT_TEXT_DOCS, max_chars: Optional[int] = None
) -> Iterator[TextItem]:
    """Every document of a plain-text file or stream, in order, as a TextItem
    (see the module docs). Deterministic: the same input gives the same
    items."""
    check_text_docs(text_docs)
    cap = None if max_chars is None else TEXT_BYTES_PER_CHAR * max_chars + len(_BOM)
    with open_binary(source) as fp:
        lines = capped_lines(fp, cap)
        if text_docs == "line":
            yield from _line_documents(lines, max_chars)
        else:
            yield from _blank_line_documents(lines, max_chars)


# (line number, text or None, and for None: kind, reason, cause)
_Line = Tuple[int, Optional[str], str, str, str]


def _decoded(lines: Iterator[Tuple[Optional[bytes], int]], max_chars: Optional[int]) -> Iterator[_Line]:
    for lineno, (raw, size) in enumerate(lines, start=1):
        if raw is None:
            reason = over_cap(lineno, size, max_chars, f"{TEXT_BYTES_PER_CHAR} bytes a character")
            yield lineno, None, "too-long", reason, f"at least {size // TEXT_BYTES_PER_CHAR}"
            continue
        if lineno == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            yield lineno, raw.decode("utf8").rstrip("\r\n"), "", "", ""
        except UnicodeDecodeError as err:
            yield lineno, None, "encoding", f"line {lineno} is not valid UTF-8 ({err})", str(err)


def _line_documents(
    lines: Iterator[Tuple[Optional[bytes], int]], max_chars: Optional[int]
) -> Iterator[TextItem]:
    for lineno, text, kind, reason, cause in _decoded(lines, max_chars):
        if text is None:
            yield TextItem(lineno - 1, str(lineno), None, line=lineno, reason=reason, kind=kind, cause=cause)
        else:
            yield TextItem(lineno - 1, str(lineno), text, [("text", 0, text)], line=lineno)


def _blank_line_documents(
    lines: Iterator[Tuple[Optional[bytes], int]], max_chars: Optional[int]
) -> Iterator[TextItem]:
    index = 0
    doc: Optional[_Collecting] = None
    for lineno, text, kind, reason, cause in _decoded(lines, max_chars):
        if text is not None and not text.strip():
            if doc is not None:
                yield doc.item(index, max_chars)
                index += 1
                doc = None
            continue
        if doc is None:
            doc = _Collecting(lineno)
        if text is None:
            if doc.problem is None:  # the document's first problem is what is said of it
                doc.problem = TextItem(0, "", None, line=lineno, reason=reason, kind=kind, cause=cause)
            continue
        doc.add(text, max_chars)
    if doc is not None:
        yield doc.item(index, max_chars)


class _Collecting:
    """The lines of a "blank-line" document being read: kept only while the
    document is within the bound (its length is counted on)."""

    def __init__(self, first: int):
        self.first = first
        self.lines: List[str] = []
        self.length = -1  # no "\n" before the first line
        self.problem: Optional[TextItem] = None

    def add(self, line: str, max_chars: Optional[int]) -> None:
        self.length += 1 + len(line)
        if self.problem is None and (max_chars is None or self.length <= max_chars):
            self.lines.append(line)

    def item(self, index: int, max_chars: Optional[int]) -> TextItem:
        doc_id = str(self.first)
        if self.problem is not None:
            self.problem.index, self.problem.doc_id = index, doc_id
            return self.problem
        if max_chars is not None and self.length > max_chars:
            reason = f"text of {self.length} characters is over --max-chars {max_chars}"
            return TextItem(index, doc_id, None, line=self.first, reason=reason, kind="too-long",
                            cause=str(self.length))
        passages, offset = [], 0
        for line in self.lines:
            passages.append(("text", offset, line))
            offset += len(line) + 1
        return TextItem(index, doc_id, "\n".join(self.lines), passages, line=self.first)


def iter_text_records(
    source: Source,
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
    text_docs: str = DEFAULT_TEXT_DOCS,
) -> Iterator[SourceDocument]:
    """The documents of a plain-text file or stream as records (no
    mentions), for the corpus functions (`convert --format text`, pretrain).
    A line that is not UTF-8 (E104) or a document over `max_chars` (E113) is
    a bad document: raised, or skipped and counted with on_error="skip". A
    document of whitespace only is passed over."""
    check_text_docs(text_docs)
    reading = start_reading(source, on_error, stats, max_chars)
    for item in iter_text(reading.source, text_docs=text_docs, max_chars=max_chars):
        if item.text is None:
            if item.kind == "encoding":
                problem = Errors.E104.format(encoding="UTF8", reason=item.cause)
            else:
                problem = Errors.E113.format(
                    doc_id=item.doc_id, length=item.cause, detail="", limit=max_chars
                )
            err = CorpusFormatError(reading.name, item.line, problem, record=item.doc_id)
            reading.policy(err, document=True)
            continue
        if item.text.strip():
            yield SourceDocument(item.doc_id, item.text, item.passages, line=item.line)
