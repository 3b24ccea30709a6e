"""Streaming input for `annotate`: every input document, in input order, as a
`Record` (to annotate) or a `Reject` (with the reason), never the whole input
in memory.

Formats (`INPUT_FORMATS`): the formats of the table
(`spacy_biobert.corpora.formats`) read from a stream or a gzip-compressed
(`.gz`) file, detected as the table says (`detect_input_format`; what is none
of the others is plain text):

- "text": plain text as every command reads it (`spacy_biobert.corpora.text`):
  one document per line (id = line number; the default), or with
  `text_docs="blank-line"` documents separated by blank lines (id = the number
  of their first line); a folder: one document per `.txt`/`.txt.gz` file, in
  sorted name order (id = file name stem);
- "jsonl": one JSON object per line, "text" required, "id" optional (default:
  line number); nothing else is read;
- "pubtator", "bioc" (XML or JSON): through the corpus readers, from a path
  (a compressed one read decompressed, streamed) or an open stream.
  Annotations in the input are ignored.

Rejected: empty or whitespace-only text, a line or file that is not valid
UTF-8, a folder's `.txt.gz` file that is truncated or damaged (E120), text or
an id holding a lone surrogate (a JSON escape such as "\\ud800", which is not
Unicode and cannot be written as UTF-8), invalid JSON
(nesting too deep, an integer of more than 4,300 digits) or a JSON line without
a "text" string, a PubTator/BioC document its reader cannot parse, and text
longer than `max_chars`. With a `max_chars` bound, a line or file too long to
hold a document of `max_chars` characters is rejected without being read into
memory (text: 4 bytes a character; JSONL: 12 bytes a character, the size of a
JSON-escaped surrogate pair, plus 1 MiB for the other fields). A compressed
input file (not a folder's file) that is truncated or damaged stops the run
with E120, naming the file: what follows the damage cannot be read.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple, Union

from ..corpora.checks import is_int, show_value
from ..corpora.errors import CorpusFormatError, CorpusStats
from ..corpora.formats import STREAM_FORMATS, detect_format, iter_records
from ..corpora.io import Source, is_gzip_name, is_stream, open_binary
from ..corpora.text import (
    DEFAULT_TEXT_DOCS,
    TEXT_BYTES_PER_CHAR,  # re-exported: plain text's bound lives in corpora.text
    TextItem,
    capped_lines,
    check_text_docs,
    iter_text,
    over_cap,
)
from ..errors import Errors

INPUT_FORMATS = STREAM_FORMATS
# The default bound on a document's length (characters): with it, one
# `annotate` worker stays under the memory bound the README states
# ("Reliability"); the transformer output of a document grows with its length.
DEFAULT_MAX_CHARS = 100_000
# Lone surrogates: a JSON "\\udXXX" escape decodes to one, and no UTF-8 writer
# can encode it.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Bytes a character may take in a JSON string (a surrogate pair written as two
# "\\uXXXX" escapes); a JSONL line may hold other fields too.
JSON_BYTES_PER_CHAR = 12
JSON_EXTRA_BYTES = 1 << 20


@dataclass
class Record:
    """A document to annotate. `index`: 0-based position in the input;
    `passages`: (type, offset, text) as the input gives them."""

    index: int
    id: str
    text: str
    passages: List[Tuple[str, int, str]] = field(default_factory=list)


@dataclass
class Reject:
    """An input document that is not annotated, and why."""

    index: int
    id: str
    reason: str
    # empty, too-long, encoding, json, unparsable (reader), unwritable (output format),
    # damaged (a folder's truncated or damaged .txt.gz file)
    kind: str = "unparsable"

    def as_dict(self) -> dict:
        """The reject as JSON-ready values; an id or reason holding a lone
        surrogate has it written as a "\\udXXX" escape, so the rejects file
        is always valid UTF-8."""
        return {
            "index": self.index,
            "id": printable(self.id),
            "reason": printable(self.reason),
            "kind": self.kind,
        }


def printable(text: str) -> str:
    """`text` with any lone surrogate replaced by its backslash escape."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf8", "backslashreplace").decode("utf8")


def surrogate_problem(rec: "Record") -> Optional[str]:
    """Why `rec` cannot be written as UTF-8 (a lone surrogate in its id,
    text or passage types), or None."""
    fields = [("id", rec.id), ("text", rec.text)]
    fields += [("passage type", ptype) for ptype, _, _ in rec.passages]
    for name, value in fields:
        found = _SURROGATE.search(value)
        if found is not None:
            return (
                f"the {name} holds a lone surrogate U+{ord(found.group()):04X} at character "
                f"{found.start()}: not a Unicode character, so it cannot be written as "
                "UTF-8 (fix the input's \\u escape)"
            )
    return None


Item = Union[Record, Reject]


def _stem(path: Path) -> str:
    """A file's name without ".gz" and its extension ("a.txt.gz" -> "a")."""
    return (path.with_suffix("") if is_gzip_name(path) else path).stem


def detect_input_format(path: Source) -> str:
    """The format of an input among INPUT_FORMATS, by the format table's
    rules (`spacy_biobert.corpora.formats.detect_format`): a folder is "text";
    else by extension (".gz" set aside: .jsonl, .xml/.json (bioc), .pubtator);
    else by the first non-empty line (a "PMID|t|" line: pubtator, "<": bioc,
    "{": jsonl); else "text"."""
    return detect_format(path, INPUT_FORMATS)


def iter_input(
    path: Source,
    format: Optional[str] = None,
    *,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
    text_docs: str = DEFAULT_TEXT_DOCS,
) -> Iterator[Item]:
    """Every input document, in order, as a Record or a Reject (see the
    module docs), from a path or an open stream (a stream needs `format`
    unless it can be read back). Deterministic: the same input gives the same
    items, which is what `--resume` relies on."""
    source = path if is_stream(path) else Path(path)
    fmt = format or detect_input_format(source)
    if fmt not in INPUT_FORMATS:
        raise ValueError(
            Errors.E304.format(what="input format", value=fmt, options=", ".join(INPUT_FORMATS))
        )
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        raise ValueError(Errors.E306.format(name="max_chars", value=max_chars))
    check_text_docs(text_docs)
    if fmt == "text" and isinstance(source, Path) and source.is_dir():
        items = _iter_folder(source, max_chars)
    elif fmt == "text":
        items = map(_text_item, iter_text(source, text_docs=text_docs, max_chars=max_chars))
    elif fmt == "jsonl":
        items = _iter_jsonl(source, max_chars)
    else:
        items = _iter_corpus(source, fmt)
    for item in items:
        if isinstance(item, Record):
            problem = surrogate_problem(item)
            if problem is not None:
                item = Reject(item.index, item.id, problem, "encoding")
            elif not item.text.strip():
                item = Reject(item.index, item.id, "empty text", "empty")
            elif max_chars is not None and len(item.text) > max_chars:
                item = Reject(
                    item.index,
                    item.id,
                    f"text of {len(item.text)} characters is over --max-chars {max_chars}",
                    "too-long",
                )
        yield item


def _text_item(item: TextItem) -> Item:
    if item.text is None:
        return Reject(item.index, item.doc_id, item.reason, item.kind)
    return Record(item.index, item.doc_id, item.text, item.passages)


def _iter_folder(path: Path, max_chars: Optional[int]) -> Iterator[Item]:
    files = sorted(
        p for p in path.iterdir() if p.is_file() and p.name.lower().endswith((".txt", ".txt.gz"))
    )
    if not files:
        raise ValueError(Errors.E307.format(path=path))
    for i, file in enumerate(files):
        doc_id = _stem(file)
        size = file.stat().st_size
        if max_chars is not None and not is_gzip_name(file) and size > 4 * max_chars:
            # Surely over the limit (UTF-8: at most 4 bytes a character): not read at all.
            yield Reject(i, doc_id, f"file of {size} bytes is over --max-chars {max_chars}", "too-long")
            continue
        try:
            with open_binary(file) as fp:
                # A compressed file is read up to the bound only (a gzip bomb costs nothing).
                raw = fp.read() if max_chars is None else fp.read(TEXT_BYTES_PER_CHAR * max_chars + 4)
        except CorpusFormatError as err:  # a truncated or damaged .txt.gz (E120)
            yield Reject(i, doc_id, f"{file.name}: {err.problem}", "damaged")
            continue
        if max_chars is not None and len(raw) > TEXT_BYTES_PER_CHAR * max_chars + 3:
            reason = f"{file.name} holds more than {len(raw) - 1} bytes, over --max-chars {max_chars}"
            yield Reject(i, doc_id, reason, "too-long")
            continue
        raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
        try:
            text = raw.decode("utf8")
        except UnicodeDecodeError as err:
            yield Reject(i, doc_id, f"{file.name} is not valid UTF-8 ({err})", "encoding")
            continue
        yield Record(i, doc_id, text, [("text", 0, text)])


class BadRecord(ValueError):
    """A JSON document object without a "text" string (`field` "text") or
    with an "id" that is neither a string nor an integer (`field` "id",
    `value` the id)."""

    def __init__(self, field: str, value: Any = None):
        super().__init__(field)
        self.field = field
        self.value = value


def json_record(obj: Any) -> Tuple[str, Optional[str]]:
    """(text, id as a string or None) of one JSON document object, or
    BadRecord: the per-record check `annotate`'s JSONL input and the service's
    JSON body share (each words its own message)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise BadRecord("text")
    raw_id = obj.get("id")
    if raw_id is None:
        return obj["text"], None
    if isinstance(raw_id, str) or is_int(raw_id):
        return obj["text"], str(raw_id)
    raise BadRecord("id", raw_id)


def _iter_jsonl(source: Source, max_chars: Optional[int] = None) -> Iterator[Item]:
    """The texts (and ids) of a JSONL input: nothing else of a line is read."""
    cap = None if max_chars is None else JSON_BYTES_PER_CHAR * max_chars + JSON_EXTRA_BYTES
    with open_binary(source) as fp:
        index = 0
        for lineno, (raw, size) in enumerate(capped_lines(fp, cap), start=1):
            doc_id = str(lineno)
            if raw is None:
                per_char = f"{JSON_BYTES_PER_CHAR} bytes a character and 1 MiB for other fields"
                yield Reject(index, doc_id, over_cap(lineno, size, max_chars, per_char), "too-long")
                index += 1
                continue
            if lineno == 1:
                raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
            if not raw.strip():
                continue  # blank lines separate nothing in JSONL
            try:
                obj = json.loads(raw.decode("utf8").rstrip("\r\n"))
            except UnicodeDecodeError as err:
                yield Reject(index, doc_id, f"line {lineno} is not valid UTF-8 ({err})", "encoding")
            except json.JSONDecodeError as err:
                yield Reject(index, doc_id, f"line {lineno} is not valid JSON ({err.msg})", "json")
            except ValueError as err:
                # an integer of more than 4,300 digits (Python's int conversion limit)
                yield Reject(index, doc_id, f"line {lineno} is not usable JSON ({err})", "json")
            except RecursionError:
                yield Reject(index, doc_id, f"line {lineno} is JSON nested too deeply to read", "json")
            else:
                try:
                    text, rec_id = json_record(obj)
                except BadRecord as bad:
                    if bad.field == "text":
                        yield Reject(index, doc_id, f"line {lineno} has no \"text\" string", "json")
                    else:  # what the corpus reader (convert) refuses too: never str(["x"])
                        problem = Errors.E114.format(
                            doc_id=f"at line {lineno}", what="'id'",
                            expected="a string or an integer", value=show_value(bad.value),
                        )
                        yield Reject(index, doc_id, problem, "json")
                else:
                    doc_id = doc_id if rec_id is None else rec_id
                    yield Record(index, doc_id, text, [("text", 0, text)])
            index += 1


class _CapturingStats(CorpusStats):
    """CorpusStats that keeps every skipped whole document, so that a
    document the reader cannot parse becomes a Reject, not a silent loss."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: List[CorpusFormatError] = []

    def add_error(self, err: CorpusFormatError, *, document: bool = False) -> None:
        super().add_error(err, document=document)
        if document:
            self.pending.append(err)


def _iter_corpus(source: Source, fmt: str) -> Iterator[Item]:
    """The documents of a PubTator or BioC input (a compressed file is read
    decompressed, streamed; a stream as it is)."""
    stats = _CapturingStats()
    index = 0
    for rec in iter_records(source, fmt, on_error="skip", stats=stats):
        for err in stats.pending:
            yield Reject(index, f"line {err.line}", err.problem)
            index += 1
        stats.pending.clear()
        passages = [(t or "", o, x) for t, o, x in rec.passages]
        yield Record(index, rec.doc_id, rec.text, passages)
        index += 1
    for err in stats.pending:
        yield Reject(index, f"line {err.line}", err.problem)
        index += 1
