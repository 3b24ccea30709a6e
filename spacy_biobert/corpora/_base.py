"""Shared pieces of the corpus readers and writers.

Every format is parsed into plain records (`SourceDocument`, `SourceMention`)
that keep exactly what the file says; `source_to_doc` turns a record into a
`Doc` following the data contract of `spacy_biobert.extensions`, and
`doc_to_source` turns a `Doc` (gold or predicted) back into a record for the
writers.

Where things live on a Doc (see docs/corpora.md):

- `doc._.doc_id`: the PMID.
- `doc.spans["mentions"]`: every mention; `label_` = source type, `kb_id_` =
  id string as in the source (stray whitespace stripped), `id_` = source
  mention id (ChemProt "T12"; PubTator "M1", "M2", ... in file order).
- `doc.ents`: the flat subset (`spacy.util.filter_spans`: longest first, then
  earliest; for identical spans the first in file order), labels passed
  through the reader's `label_map`.
- `doc._.gold_relations`: list of relation dicts (see `relation dicts` in
  docs/corpora.md).
- `doc.user_data[SOURCE_KEY]`: what is needed for byte-exact round trips and
  is not a span attribute: passages, BC5CDR's 7th column (`components`),
  original offsets of mentions expanded to token boundaries, raw mention
  text / id fields that differ from the stripped values, the ChemProt
  title/abstract separator.
"""

import contextlib
import gzip
import io
import json
import logging
import os
import re
import sys
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    Union,
)

import numpy
from spacy.attrs import SENT_START
from spacy.tokens import Doc, Span
from spacy.util import filter_spans
from spacy.vocab import Vocab

from ..errors import Errors, Warnings

# predicted_relations is re-exported: the writers' one reader of relation predictions.
from ..extensions import (
    MENTIONS_KEY,
    install_extensions,
    predicted_relations,  # noqa: F401
)
from .sentences import sentence_starts

logger = logging.getLogger("spacy_biobert.corpora")

SOURCE_KEY = "spacy_biobert.source"
"""`doc.user_data` key of the round-trip information (a JSON-able dict)."""

ON_ERROR = ("raise", "skip")
_KB_SPLIT = re.compile(r"[|+]")
_MAX_KEPT_ERRORS = 20


def mention_ids(span_or_kb_id: Union[Span, str]) -> List[str]:
    """The individual ids of a mention: its `kb_id_` split on "|" and "+",
    stripped, with "-1" and empty parts dropped.

    `mention_ids("D014786|D006311") == ["D014786", "D006311"]`;
    `mention_ids("-1") == []`.
    """
    value = span_or_kb_id if isinstance(span_or_kb_id, str) else span_or_kb_id.kb_id_
    return [p.strip() for p in _KB_SPLIT.split(value) if p.strip() not in ("", "-1")]


class CorpusFormatError(ValueError):
    """A bad record in a corpus file. `path`, `line` (1-based, 0 if the
    problem is not tied to a line), `problem` and `record` (the document id
    when the problem is tied to a document, else None) are attributes; the
    message reads "PATH:LINE: [Exxx] problem. Fix: ..." (`fix` replaces the
    usual advice for problems with a whole file, where skipping does not help)."""

    def __init__(
        self,
        path: Union[str, Path],
        line: int,
        problem: str,
        *,
        record: Optional[str] = None,
        fix: Optional[str] = None,
    ):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.record = record
        where = f"{self.path}:{line}" if line else self.path
        fix = fix or (
            "correct the record, or skip and count bad records with on_error='skip' "
            "(reader option skip_bad = true; CLI --skip-bad)"
        )
        super().__init__(f"{where}: {problem}. Fix: {fix}.")


@dataclass
class CorpusStats:
    """Counts filled in while a corpus is read (pass one to a reader)."""

    path: str = ""
    documents: int = 0
    mentions: int = 0
    relations: int = 0
    misaligned: int = 0
    misaligned_examples: List[str] = field(default_factory=list)
    not_flat: int = 0
    duplicates: int = 0
    duplicate_ids: List[str] = field(default_factory=list)
    skipped: int = 0
    skipped_documents: int = 0
    errors: List[CorpusFormatError] = field(default_factory=list)
    # Lines repeated verbatim in a file (ChemProt annotation files), dropped.
    duplicate_lines: int = 0
    duplicate_line_examples: List[str] = field(default_factory=list)
    # Optional files of a split that are absent (ChemProt entities/relations).
    missing_files: List[str] = field(default_factory=list)
    # Annotations a reader does not read into Docs, by kind (brat events,
    # attributes, notes), counted and reported (W807).
    skipped_annotations: Dict[str, int] = field(default_factory=dict)
    # BioC XML text values that held markup (child elements): text kept, tags dropped.
    markup: int = 0
    markup_examples: List[str] = field(default_factory=list)

    def add_error(self, err: CorpusFormatError, *, document: bool = False) -> None:
        self.skipped += 1
        if document:
            self.skipped_documents += 1
        if len(self.errors) < _MAX_KEPT_ERRORS:
            self.errors.append(err)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "path": self.path,
            "documents": self.documents,
            "mentions": self.mentions,
            "relations": self.relations,
            "misaligned": self.misaligned,
            "not_flat": self.not_flat,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "skipped_documents": self.skipped_documents,
            "duplicate_lines": self.duplicate_lines,
            "missing_files": list(self.missing_files),
            "skipped_annotations": dict(self.skipped_annotations),
            "markup": self.markup,
        }

    def add_duplicate_line(self, path: Union[str, Path], line: int) -> None:
        self.duplicate_lines += 1
        if len(self.duplicate_line_examples) < 10:
            self.duplicate_line_examples.append(f"{path}:{line}")

    def log_warnings(self) -> None:
        """Log (not print) what a user must know: expanded mentions,
        dropped duplicates and skipped records."""
        first_error = self.errors[0] if self.errors else ""
        found = (
            (self.misaligned, Warnings.W101, {"count": self.misaligned, "total": self.mentions,
                                              "examples": ", ".join(self.misaligned_examples[:5])}),
            (self.duplicates, Warnings.W102, {"count": self.duplicates,
                                              "ids": ", ".join(self.duplicate_ids[:10])}),
            (self.skipped, Warnings.W103, {"count": self.skipped, "first": first_error}),
            (self.missing_files, Warnings.W106, {"files": ", ".join(self.missing_files)}),
            (self.duplicate_lines, Warnings.W105, {"count": self.duplicate_lines,
                                                   "examples": ", ".join(self.duplicate_line_examples[:5])}),
            (self.skipped_annotations, Warnings.W807, {"counts": ", ".join(
                f"{n} {kind}(s)" for kind, n in sorted(self.skipped_annotations.items()))}),
            (self.markup, Warnings.W107, {"count": self.markup,
                                          "examples": "; ".join(self.markup_examples[:3])}),
        )
        for count, template, values in found:
            if count:
                logger.warning(template.format(path=self.path, **values))


class ErrorPolicy:
    """Raise a CorpusFormatError, or record it and go on (on_error="skip")."""

    def __init__(self, on_error: str, stats: CorpusStats):
        if on_error not in ON_ERROR:
            raise ValueError(Errors.E109.format(value=on_error))
        self.skip = on_error == "skip"
        self.stats = stats

    def __call__(self, err: CorpusFormatError, *, document: bool = False) -> None:
        if not self.skip:
            raise err
        logger.debug("skipped: %s", err)
        self.stats.add_error(err, document=document)


@dataclass
class SourceMention:
    id: str
    start: int
    end: int
    text: str
    type: str
    kb_id: str = "-1"
    # BC5CDR 7th column (individual mentions of a composite); None = no column.
    components: Optional[str] = None
    # Source fields kept verbatim when they differ from the cleaned values.
    raw_text: Optional[str] = None
    raw_kb_id: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceDocument:
    doc_id: str
    text: str
    # (passage type, offset, text); title/abstract for PubTator and ChemProt.
    passages: List[Tuple[str, int, str]]
    mentions: List[SourceMention] = field(default_factory=list)
    relations: List[Dict[str, Any]] = field(default_factory=list)
    line: int = 0
    extra: Dict[str, Any] = field(default_factory=dict)

    def content_key(self) -> Tuple:
        """Hashable content, used to detect identical duplicate documents."""
        return (
            self.doc_id,
            self.text,
            tuple(
                (m.start, m.end, m.text, m.type, m.kb_id, m.components)
                for m in self.mentions
            ),
            tuple(tuple(sorted((k, str(v)) for k, v in r.items())) for r in self.relations),
        )


def title_abstract_passages(
    title: str, abstract: str, sep: str = " "
) -> List[Tuple[str, int, str]]:
    return [("title", 0, title), ("abstract", len(title) + len(sep), abstract)]


def title_and_abstract(src: "SourceDocument") -> Tuple[str, str]:
    """(title, abstract) of a record, for the formats whose text is title +
    one separator + abstract (PubTator, ChemProt). Two passages are title
    and abstract when they cover the text; otherwise the text is cut at the
    second passage, or at its first line break (`losses.title_abstract_layout`
    tells when the text written differs from the record's)."""
    p = src.passages
    text = src.text
    if (
        len(p) == 2
        and p[0][1] == 0
        and p[1][1] == len(p[0][2]) + 1
        and p[1][1] + len(p[1][2]) == len(text)
    ):
        return p[0][2], p[1][2]
    if len(p) >= 2 and p[1][1] >= 1 and text[p[1][1] - 1] in " \t":
        cut = p[1][1] - 1
        return text[:cut], text[cut + 1 :]
    # One passage (predicted text): the title is the first line, if any.
    cut = text.find("\n")
    if cut == -1:
        return text, ""
    return text[:cut], text[cut + 1 :]


def check_mention(
    path: Union[str, Path], line: int, text: str, m: SourceMention
) -> Optional[CorpusFormatError]:
    """Offsets inside the text, and the mention string equal to the covered
    text (stripped: NCBI has a mention field with trailing spaces)."""
    if not (0 <= m.start <= m.end <= len(text)):
        return CorpusFormatError(
            path,
            line,
            Errors.E102.format(start=m.start, end=m.end, mention=m.text, length=len(text)),
        )
    covered = text[m.start : m.end]
    if covered != m.text:
        if covered == m.text.strip():
            m.raw_text = m.text
            m.text = covered
        else:
            return CorpusFormatError(
                path,
                line,
                Errors.E103.format(
                    mention=m.text, start=m.start, end=m.end, covered=covered
                ),
            )
    return None


_UNDECODED = re.compile("[\udc80-\udcff]")


class UndecodedLine(CorpusFormatError):
    """E104 for one line; `text` is the line with each undecodable byte
    as a surrogate escape, so a reader can still tell what kind of line it
    was (a PubTator title line starts a document even when it is bad)."""

    def __init__(self, path: Union[str, Path], line: int, problem: str, text: str):
        super().__init__(path, line, problem)
        self.text = text


# --- sources: a path (maybe gzip-compressed) or an open stream --------------------

Source = Union[str, Path, IO[bytes], IO[str]]
"""What a reader reads: a path, or an open binary or text stream (read from
its current position, never closed by the reader)."""

_CHUNK = 1 << 16


def is_stream(source: Any) -> bool:
    """Whether `source` is an open file-like object rather than a path."""
    return hasattr(source, "read")


def source_name(source: Any) -> str:
    """What messages call a source: a path as given; a stream's `name` (a
    string) or "<stream>"."""
    if not is_stream(source):
        return str(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else "<stream>"


def is_gzip_name(path: Union[str, Path]) -> bool:
    """A name ending in ".gz": read decompressed where the format allows it."""
    return str(path).lower().endswith(".gz")


def plain_suffix(path: Union[str, Path]) -> str:
    """The lower-case extension of a path or stream name, ".gz" set aside
    ("a.PubTator.gz" -> ".pubtator")."""
    p = Path(str(path))
    if p.suffix.lower() == ".gz":
        p = p.with_suffix("")
    return p.suffix.lower()


class _Replay(io.RawIOBase):
    """A binary stream that gives `head` first, then the rest of `rest`; for
    a text stream, the text is encoded as UTF-8 (a lone surrogate as its
    bytes, which then do not decode: a bad line like any other)."""

    def __init__(self, head: bytes, rest: Any, text: bool):
        self.buf = head
        self.rest = rest
        self.text = text

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.buf and self.rest is not None:
            chunk = self.rest.read(_CHUNK)
            if not chunk:
                self.rest = None
                break
            self.buf = chunk.encode("utf8", "surrogatepass") if self.text else chunk
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


GZIP_FIX = (
    "copy or download the file again (`gzip -t FILE` tests one), or pass the "
    "uncompressed file"
)


def gzip_error(path: Union[str, Path], err: BaseException) -> CorpusFormatError:
    """E120 for a gzip file that is truncated or damaged (`err`: what the
    decompressor said)."""
    reason = str(err).strip() or type(err).__name__
    if isinstance(err, EOFError):
        reason = f"it ends early: {reason}"
    return CorpusFormatError(path, 0, Errors.E120.format(reason=reason), fix=GZIP_FIX)


class _CheckedGzip(io.RawIOBase):
    """The decompressed bytes of a gzip file, where a truncated or damaged
    file (`EOFError`, `zlib.error`, `gzip.BadGzipFile` from the decompressor)
    is one coded error, E120 naming the file, wherever it is read."""

    def __init__(self, path: Union[str, Path]):
        self.path = path
        self.fp = gzip.open(path, "rb")
        # gzip reads a 0-byte file as empty content; a gzip file is >= 20 bytes
        self.empty = os.path.getsize(path) == 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.empty and len(b):
            raise gzip_error(self.path, EOFError("the file is 0 bytes long"))
        try:
            return self.fp.readinto(b)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise gzip_error(self.path, err) from None

    def close(self) -> None:
        self.fp.close()
        super().close()


def open_gzip(path: Union[str, Path]) -> IO[bytes]:
    """A binary file of the decompressed content of the gzip file `path`;
    a truncated or damaged file raises E120 (a CorpusFormatError naming the
    file) when read, never a zlib or EOF error."""
    return io.BufferedReader(_CheckedGzip(path), _CHUNK)


@contextlib.contextmanager
def open_binary(source: Source, *, head: bytes = b"") -> Iterator[IO[bytes]]:
    """A binary stream over `source`: a path (decompressed when its name ends
    in ".gz"; a truncated or damaged one is E120 when read), a binary stream
    (as it is, left open) or a text stream (its text as UTF-8 bytes, left
    open). `head`: bytes already read from a binary source (`peek`), given
    again first."""
    if not is_stream(source):
        opener: Any = open_gzip if is_gzip_name(source) else lambda p: open(p, "rb")
        with opener(source) as fp:
            yield fp
    elif head or isinstance(source.read(0), str):
        text = isinstance(source.read(0), str)
        yield io.BufferedReader(_Replay(head, source, text), _CHUNK)  # type: ignore[arg-type]
    else:
        yield source  # type: ignore[misc]


@contextlib.contextmanager
def peek(source: Source, size: int) -> Iterator[Tuple[bytes, IO[bytes]]]:
    """(the first `size` bytes, a binary stream over the whole source): look
    at the start of a stream without losing it."""
    with open_binary(source) as fp:
        head = fp.read(size)
        with open_binary(fp, head=head) as whole:
            yield head, whole


def iter_lines(
    source: Source,
    encoding: str = "utf8",
    *,
    universal_newlines: bool = True,
    name: Optional[str] = None,
) -> Iterator[Tuple[int, Union[str, CorpusFormatError]]]:
    """(line number, line without its line break) for each line of a path or
    stream, streamed. Lines end at "\\n", "\\r\\n" or, with universal_newlines
    (the default), a lone "\\r" too (old Mac files); JSONL passes False, since
    JSON allows a raw "\\r" between tokens. A leading UTF-8 byte order mark is
    dropped. A line that does not decode yields a CorpusFormatError (naming
    `name`, by default `source_name(source)`) instead of text, so the caller
    decides whether to raise or skip it."""
    where = name if name is not None else source_name(source)
    with open_binary(source) as raw:
        fp = io.TextIOWrapper(
            raw,  # type: ignore[arg-type]
            encoding=encoding,
            errors="surrogateescape",
            newline=None if universal_newlines else "\n",
        )
        try:
            for i, line in enumerate(fp, start=1):
                if i == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                bad = _UNDECODED.search(line)
                if bad is not None:
                    byte = ord(bad.group()) - 0xDC00
                    reason = f"byte 0x{byte:02x} at character {bad.start() + 1} of the line"
                    problem = Errors.E104.format(encoding=encoding.upper(), reason=reason)
                    yield i, UndecodedLine(where, i, problem, line.rstrip("\r\n"))
                    continue
                yield i, line.rstrip("\r\n")
        finally:
            fp.detach()  # the binary stream is closed (or left open) by its owner


def check_exists(path: Union[str, Path], what: str = "corpus file") -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            Errors.E106.format(
                what=f"{what} '{path}'", fix="check the path (or [paths] in the config)"
            )
        )
    return path


def empty_file_error(path: Union[str, Path]) -> CorpusFormatError:
    """E105: the file holds nothing but whitespace."""
    return CorpusFormatError(
        path, 0, Errors.E105, fix="check the path: an empty file holds no document"
    )


def malformed(
    path: Union[str, Path], line: int, detail: str, *, record: Optional[str] = None
) -> CorpusFormatError:
    """E101 (a malformed line or document) at `path`:`line`."""
    return CorpusFormatError(path, line, Errors.E101.format(detail=detail), record=record)


@dataclass
class Reading:
    """What every records reader sets up before it reads: the source (a
    checked Path, or the stream), the name messages give it, the counts and
    the error policy."""

    source: Any
    name: Any
    stats: CorpusStats
    policy: ErrorPolicy


def start_reading(
    source: Source,
    on_error: str,
    stats: Optional[CorpusStats],
    max_chars: Optional[int],
    *,
    check_path: bool = True,
) -> Reading:
    """Check a reader's arguments in the order every reader does (the path
    exists (E106) unless `check_path` is False, max_chars (E117), on_error
    (E109)) and set up its counts (`stats.path`, when not set) and policy."""
    if is_stream(source):
        name: Any = source_name(source)
    elif check_path:
        source = name = check_exists(source)  # type: ignore[arg-type]
    else:
        name = source
    check_max_chars(max_chars)
    stats = stats if stats is not None else CorpusStats()
    if not stats.path:
        stats.path = str(name)
    return Reading(source, name, stats, ErrorPolicy(on_error, stats))


def document_lines(
    reading: Reading,
    source: Any = None,
    *,
    blank: Callable[[str], bool] = lambda line: not line.strip(),
    universal_newlines: bool = True,
) -> Iterator[Tuple[int, str]]:
    """(line number, line) of every line that holds content, for a format
    with a document per line (JSONL, ChemProt abstracts): a line that does not
    decode is a bad document (raised or counted by the policy); lines that are
    `blank` are passed over; a source without content is E105. `source`: the
    file to read, by default the reading's."""
    source = reading.source if source is None else source
    name = reading.name if source is reading.source else source
    any_content = False
    for lineno, line in iter_lines(source, universal_newlines=universal_newlines, name=str(name)):
        if isinstance(line, CorpusFormatError):
            any_content = True
            reading.policy(line, document=True)
            continue
        if blank(line):
            continue
        any_content = True
        yield lineno, line
    if not any_content:
        raise empty_file_error(name)


def load_json(text: str) -> Tuple[Any, Optional[str], int]:
    """(the value, None, 0) of a JSON text, or (None, what is wrong, the line
    it is on (0: not tied to one)) for a text that is not usable JSON."""
    try:
        return json.loads(text), None, 0
    except json.JSONDecodeError as err:
        return None, f"not valid JSON ({err.msg})", err.lineno
    except ValueError:
        # Python's limit on converting text to int (4,300 digits by default)
        limit = getattr(sys, "get_int_max_str_digits", lambda: 4300)()
        return None, f"not usable JSON: it holds an integer of more than {limit:,} digits", 0
    except RecursionError:
        return None, "JSON nested too deeply", 0


def write_text(target: Union[str, Path, TextIO], write: Callable[[TextIO], int]) -> int:
    """`write(fp)` into an open text file `target`, or into a path, atomically
    (see `atomic_write`; UTF-8, "\\n" line breaks); returns what `write` does."""
    if hasattr(target, "write"):
        return write(target)  # type: ignore[arg-type]
    with atomic_write(target) as tmp, open(tmp, "w", encoding="utf8", newline="\n") as fp:
        return write(fp)


_SURROGATE = re.compile("[\ud800-\udfff]")


def show_value(value: Any) -> str:
    """A short description of a bad value for messages: `'0' (str)`."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def is_int(value: Any) -> bool:
    """An integer, and not a bool (JSON true/false)."""
    return isinstance(value, int) and not isinstance(value, bool)


def find_lone_surrogate(obj: Any) -> Optional[str]:
    """Where a JSON value (strings, lists, dicts, nested) holds a lone
    surrogate ("\\ud800": valid JSON, but not text that can be written as
    UTF-8), as a short description; None when it holds none."""
    stack = [obj]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            m = _SURROGATE.search(value)
            if m is not None:
                return (
                    f"the string {value[:40]!r} holds the lone surrogate "
                    f"U+{ord(m.group()):04X} at character {m.start() + 1}"
                )
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return None


DEFAULT_MAX_CHARS = 1_000_000
"""The readers' default bound on a document's length in characters: spaCy's
default `nlp.max_length`, beyond which `nlp.make_doc` refuses a text (E088).
Readers check it per record, before building the text where the source
gives offsets (BioC), so that an absurd offset costs no memory."""


def max_chars_of(nlp_or_vocab: Any) -> Optional[int]:
    """The length bound for documents read for `nlp_or_vocab`: a Language's
    `max_length`, else `DEFAULT_MAX_CHARS`."""
    return getattr(nlp_or_vocab, "max_length", DEFAULT_MAX_CHARS)


def check_length(
    path: Union[str, Path],
    line: int,
    doc_id: str,
    length: int,
    max_chars: Optional[int],
    detail: str = "",
) -> Optional[CorpusFormatError]:
    """E113 when a document of `length` characters is over `max_chars`
    (None: no bound)."""
    if max_chars is None or length <= max_chars:
        return None
    return CorpusFormatError(
        path,
        line,
        Errors.E113.format(doc_id=doc_id, length=length, detail=detail, limit=max_chars),
        record=doc_id,
    )


def check_max_chars(max_chars: Optional[int]) -> Optional[int]:
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
    ):
        raise ValueError(Errors.E117.format(value=max_chars))
    return max_chars


@contextlib.contextmanager
def atomic_write(path: Union[str, Path]) -> Iterator[Path]:
    """Write a file atomically: yields a temporary path in the same folder
    (create and close the file there); when the block ends without an error
    the file is fsynced and renamed over `path` (`os.replace`), otherwise it
    is removed and `path` is left as it was. The folder is created."""
    with atomic_write_many([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_write_many(paths: Sequence[Union[str, Path]]) -> Iterator[List[Path]]:
    """`atomic_write` for several files written together (ChemProt's four):
    each is complete or untouched; they are renamed one after the other once
    all were written."""
    finals = [Path(p) for p in paths]
    tag = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
    tmps = [p.with_name(f".{p.name}.{tag}.tmp") for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
    done = False
    try:
        yield tmps
        for tmp in tmps:
            if tmp.exists():
                with open(tmp, "rb") as fp:
                    os.fsync(fp.fileno())
        for tmp, final in zip(tmps, finals):
            if tmp.exists():
                os.replace(tmp, final)
        done = True
    finally:
        if not done:
            for tmp in tmps:
                if tmp.exists():
                    tmp.unlink()


# --- Doc construction ----------------------------------------------------------

MakeDoc = Callable[[str], Doc]
_DEFAULT_NLP: Dict[int, Any] = {}


def get_make_doc(nlp_or_vocab: Any = None) -> MakeDoc:
    """`nlp.make_doc` for a Language; for a Vocab (or None) the biomedical
    tokenizer (`spacy-biobert.BiomedicalTokenizer.v1`) over that vocab."""
    if nlp_or_vocab is not None and hasattr(nlp_or_vocab, "make_doc"):
        return nlp_or_vocab.make_doc
    if nlp_or_vocab is not None and not isinstance(nlp_or_vocab, Vocab):
        raise TypeError(
            f"Expected a spaCy Language or Vocab, got {type(nlp_or_vocab).__name__}."
        )
    key = id(nlp_or_vocab)
    if key not in _DEFAULT_NLP:
        import spacy

        from ..tokenizer import create_biomedical_tokenizer

        nlp = spacy.blank("en", vocab=nlp_or_vocab if nlp_or_vocab is not None else True)
        nlp.tokenizer = create_biomedical_tokenizer()(nlp)
        _DEFAULT_NLP[key] = nlp
    return _DEFAULT_NLP[key].make_doc


def set_sentences(
    doc: Doc, passage_starts: Iterable[int], protected: Sequence[Span]
) -> None:
    """Rule-based sentence boundaries: every passage starts a sentence, and so
    does every start the one sentence splitter finds (`sentences.sentence_starts`).
    Never inside a mention. Every token gets is_sent_start set, so DocBin
    keeps them."""
    if len(doc) == 0:
        return
    text = doc.text
    starts = set()
    for offset in passage_starts:
        starts.add(offset)
    starts.update(sentence_starts(text))
    inside = set()
    for span in protected:
        inside.update(range(span.start + 1, span.end))
    # 1 = starts a sentence, -1 = does not; set in one call (the per-token
    # `is_sent_start` setter is linear in the document: quadratic in all)
    flags = numpy.full((len(doc), 1), -1, dtype="int64")
    flags[0, 0] = 1
    for token in doc:
        if token.idx in starts and token.i not in inside:
            flags[token.i, 0] = 1
    doc.from_array([SENT_START], flags.astype("uint64"))


def _make_span(
    doc: Doc, m: SourceMention, stats: CorpusStats, doc_id: str
) -> Optional[Span]:
    span = doc.char_span(m.start, m.end, label=m.type, kb_id=m.kb_id, span_id=m.id)
    if span is not None:
        return span
    span = doc.char_span(
        m.start, m.end, label=m.type, kb_id=m.kb_id, span_id=m.id, alignment_mode="expand"
    )
    if span is None or len(span) == 0:
        return None
    stats.misaligned += 1
    if len(stats.misaligned_examples) < 20:
        stats.misaligned_examples.append(f"{doc_id}:{m.id} {m.text!r}->{span.text!r}")
    return span


def source_to_doc(
    src: SourceDocument,
    make_doc: MakeDoc,
    *,
    label_map: Optional[Union[str, Dict[str, str]]] = None,
    stats: Optional[CorpusStats] = None,
    source_format: str = "",
) -> Doc:
    """Build the Doc for one record (see the module docstring). label_map
    (a mapping or a preset name of `label_maps.LABEL_MAPS`) renames the types
    of `doc.ents` only."""
    from .label_maps import resolve_label_map

    install_extensions()
    label_map = resolve_label_map(label_map)
    stats = stats if stats is not None else CorpusStats()
    doc = make_doc(src.text)
    doc._.doc_id = src.doc_id
    spans: List[Span] = []
    mention_info: Dict[str, Dict[str, Any]] = {}
    for m in src.mentions:
        info: Dict[str, Any] = {}
        span = _make_span(doc, m, stats, src.doc_id)
        if span is None:
            # A mention of whitespace only: it cannot be a span. Keep it in
            # the source info so writers still reproduce it.
            info["unplaced"] = True
        elif (span.start_char, span.end_char) != (m.start, m.end):
            info["start"], info["end"] = m.start, m.end
        if m.components is not None:
            info["components"] = m.components
        if m.raw_text is not None:
            info["raw_text"] = m.raw_text
        if m.raw_kb_id is not None:
            info["raw_kb_id"] = m.raw_kb_id
        if m.extra:
            info.update(m.extra)
        if info.get("unplaced"):
            info.update(start=m.start, end=m.end, text=m.text, type=m.type, kb_id=m.kb_id)
        if info:
            mention_info[m.id] = info
        if span is not None:
            spans.append(span)
    stats.mentions += len(src.mentions)
    doc.spans[MENTIONS_KEY] = spans
    flat = filter_spans(spans)
    stats.not_flat += len(spans) - len(flat)
    ents = []
    for s in sorted(flat, key=lambda s: s.start):
        label = label_map.get(s.label_, s.label_) if label_map else s.label_
        ents.append(Span(doc, s.start, s.end, label=label, kb_id=s.kb_id_, span_id=s.id_))
    doc.set_ents(ents, default="outside")
    doc._.gold_relations = [dict(r) for r in src.relations]
    stats.relations += len(src.relations)
    source: Dict[str, Any] = {
        "format": source_format,
        "passages": [[t, o, len(x)] for t, o, x in src.passages],
    }
    if mention_info:
        source["mentions"] = mention_info
    if src.extra:
        source.update(src.extra)
    doc.user_data[SOURCE_KEY] = source
    set_sentences(doc, [o for _, o, _ in src.passages], spans)
    stats.documents += 1
    return doc


def doc_to_source(doc: Doc) -> SourceDocument:
    """The record a writer writes for a Doc. Gold Docs (from a reader) give
    back exactly what was read; predicted Docs use `doc.ents` (ids "M1"...,
    kb_id_ as set, "" when none) and one "text" passage."""
    install_extensions()
    source: Dict[str, Any] = doc.user_data.get(SOURCE_KEY) or {}
    text = doc.text
    passages_info = source.get("passages")
    # a read document with no passages (empty text) writes back with none
    if passages_info or (passages_info is not None and not text):
        passages = [(t, o, text[o : o + n]) for t, o, n in passages_info]
    else:
        passages = [("text", 0, text)]
    info = source.get("mentions", {})
    mentions: List[SourceMention] = []
    if MENTIONS_KEY in doc.spans:
        spans = list(doc.spans[MENTIONS_KEY])
    else:
        spans = list(doc.ents)
    used = set()
    for i, span in enumerate(spans, start=1):
        mid = span.id_ or f"M{i}"
        while mid in used:
            mid = f"{mid}_"
        used.add(mid)
        extra = dict(info.get(mid, {})) if span.id_ else {}
        start = extra.pop("start", span.start_char)
        end = extra.pop("end", span.end_char)
        if (start, end) != (span.start_char, span.end_char) and not _expands_to(
            doc, start, end, span
        ):
            # stale source offsets (the span was changed): the span's own
            start, end = span.start_char, span.end_char
        kb_id = span.kb_id_
        mentions.append(
            SourceMention(
                id=mid,
                start=start,
                end=end,
                text=text[start:end],
                type=span.label_,
                kb_id=kb_id,
                components=extra.pop("components", None),
                raw_text=extra.pop("raw_text", None),
                raw_kb_id=extra.pop("raw_kb_id", None),
                extra=extra,
            )
        )
    for mid, extra in info.items():
        if extra.get("unplaced") and mid not in used:
            mentions.append(
                SourceMention(
                    id=mid,
                    start=extra["start"],
                    end=extra["end"],
                    text=extra["text"],
                    type=extra["type"],
                    kb_id=extra["kb_id"],
                    components=extra.get("components"),
                    raw_text=extra.get("raw_text"),
                    raw_kb_id=extra.get("raw_kb_id"),
                )
            )
    mentions.sort(key=lambda m: _mention_order(m.id))
    relations = list(doc._.gold_relations or [])
    extra = {k: v for k, v in source.items() if k not in ("format", "passages", "mentions")}
    return SourceDocument(
        doc_id=str(doc._.doc_id) if doc._.doc_id is not None else "",
        text=text,
        passages=passages,
        mentions=mentions,
        relations=relations,
        extra=extra,
    )


def with_relation_arguments(doc: Doc, src: SourceDocument, threshold: float) -> SourceDocument:
    """`src` (of a predicted Doc) with a mention for every argument of a
    predicted mention-level relation that is not one of its mentions already:
    relation candidates can come from a span group (the biomed pipeline's
    `biobert_ner`), whose spans `doc.ents` may leave out (a chemical nested in a
    gene name), and a writer that links relations to mention ids would
    otherwise drop those relations. Gold Docs (relations read from the source)
    are returned as they are."""
    if src.relations:
        return src
    have = {(m.start, m.end) for m in src.mentions}
    spans = {(s.start_char, s.end_char): s for group in doc.spans.values() for s in group}
    added: List[SourceMention] = []
    for rel in predicted_relations(doc, threshold):
        if rel["level"] != "mention":
            continue
        for start, end in (rel["head"], rel["tail"]):
            if (start, end) in have:
                continue
            have.add((start, end))
            span = spans.get((start, end))
            added.append(
                SourceMention(
                    id=f"M{len(src.mentions) + len(added) + 1}",
                    start=start,
                    end=end,
                    text=doc.text[start:end],
                    type=span.label_ if span is not None else "",
                    kb_id=(span.kb_id_ or "-1") if span is not None else "-1",
                )
            )
    if added:
        src.mentions = sorted(src.mentions + added, key=lambda m: (m.start, m.end))
        if all(re.fullmatch(r"M\d+", m.id) for m in src.mentions):
            for i, m in enumerate(src.mentions, start=1):  # predicted ids, in text order
                m.id = f"M{i}"
    return src


def _expands_to(doc: Doc, start: Any, end: Any, span: Span) -> bool:
    """Whether source offsets `start`-`end` are those of `span`: they give
    that span when expanded to token boundaries (as the readers do; a
    mention ending in whitespace may end past the span)."""
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(doc.text)):
        return False
    wide = doc.char_span(start, end, alignment_mode="expand")
    return wide is not None and (wide.start, wide.end) == (span.start, span.end)


def _mention_order(mid: str) -> Tuple[int, str]:
    m = re.fullmatch(r"[A-Za-z]+(\d+)", mid)
    return (int(m.group(1)), mid) if m else (1 << 30, mid)


def secure_iterparse(source: Any, tag: Any, *, huge_tree: bool = False, **options: Any) -> Any:
    """lxml's `iterparse` over `source` (a path or binary file) for "end"
    events of `tag`, never resolving entities (external, parameter or
    internal), never loading a DTD, never touching the network: set
    explicitly, not left to lxml's defaults, which have changed between
    versions. The one place every XML reader (BioC, MeSH) gets its parser."""
    from lxml import etree

    return etree.iterparse(
        source,
        events=("end",),
        tag=tag,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_tree,
        **options,
    )


def records_to_docs(
    records: Iterable[SourceDocument],
    nlp_or_vocab: Any,
    *,
    stats: CorpusStats,
    limit: Optional[int],
    label_map: Optional[Dict[str, str]],
    source_format: str,
) -> Iterator[Doc]:
    """The Docs of a stream of records (what every `read_*` function yields);
    logs what the user must know (W101-W103) once the stream is exhausted."""
    make_doc = get_make_doc(nlp_or_vocab)
    for rec in apply_limit(records, limit):
        yield source_to_doc(rec, make_doc, label_map=label_map, stats=stats, source_format=source_format)
    stats.log_warnings()


def read_docs(
    records: Callable[..., Iterable[SourceDocument]],
    source: Any,
    nlp_or_vocab: Any,
    *,
    source_format: str,
    stats: Optional[CorpusStats],
    limit: Optional[int],
    label_map: Optional[Dict[str, str]],
    **options: Any,
) -> Iterator[Doc]:
    """What every `read_*` function does: the Docs of
    `records(source, stats=..., max_chars=..., **options)`, bounded by the
    length `nlp_or_vocab` takes (`max_chars_of`), counted in `stats` (its
    `path` set to the source)."""
    stats = stats if stats is not None else CorpusStats()
    stats.path = source_name(source)
    found = records(source, stats=stats, max_chars=max_chars_of(nlp_or_vocab), **options)
    yield from records_to_docs(
        found, nlp_or_vocab, stats=stats, limit=limit, label_map=label_map, source_format=source_format
    )


def docs_reader(
    records: Callable[..., Iterable[SourceDocument]],
    source_format: str,
    doc: str,
    options: Sequence[str] = (),
) -> Callable[..., Iterator[Doc]]:
    """The public `read_<format>(path, nlp_or_vocab=None, *, on_error="raise",
    limit=None, label_map=None, stats=None, **options)` of a format: `read_docs`
    over its `records`. `options` names the keywords of the format's own
    (PubTator's `dedupe`); `doc` is the function's docstring."""
    allowed = frozenset(options)
    name = f"read_{source_format}"

    def read(
        path: Any,
        nlp_or_vocab: Any = None,
        *,
        on_error: str = "raise",
        limit: Optional[int] = None,
        label_map: Optional[Dict[str, str]] = None,
        stats: Optional[CorpusStats] = None,
        **kwargs: Any,
    ) -> Iterator[Doc]:
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise TypeError(f"{name}() got unexpected keyword argument(s): {', '.join(unknown)}")
        return read_docs(
            records, path, nlp_or_vocab, source_format=source_format, stats=stats,
            limit=limit, label_map=label_map, on_error=on_error, **kwargs,
        )

    read.__name__ = read.__qualname__ = name
    read.__module__ = records.__module__
    read.__doc__ = doc
    return read


def apply_limit(items: Iterable[Any], limit: Optional[int]) -> Iterator[Any]:
    for i, item in enumerate(items):
        if limit is not None and i >= limit:
            return
        yield item
