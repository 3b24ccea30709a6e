"""Streaming input for `annotate`: every input document, in input order, as a
`Record` (to annotate) or a `Reject` (with the reason), never the whole input
in memory.

Formats (`INPUT_FORMATS`), each optionally gzip-compressed (`.gz`):

- "text": one document per line (id = line number); a folder: one document
  per `.txt`/`.txt.gz` file, in sorted name order (id = file name stem);
- "jsonl": one JSON object per line, "text" required, "id" optional (default:
  line number);
- "pubtator", "bioc" (XML or JSON): through the corpus readers
  (`spacy_biobert.corpora`); a compressed file is first decompressed, streamed,
  to a temporary file. Annotations in the input are ignored.

Rejected: empty or whitespace-only text, a line or file that is not valid
UTF-8, invalid JSON or a JSON line without a "text" string, a PubTator/BioC
document its reader cannot parse, and text longer than `max_chars`.
"""

import gzip
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from ..corpora._base import CorpusFormatError, CorpusStats
from ..errors import Errors

INPUT_FORMATS = ("text", "jsonl", "pubtator", "bioc")


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
    # empty, too-long, encoding, json, unparsable (reader), unwritable (output format)
    kind: str = "unparsable"

    def as_dict(self) -> dict:
        return {"index": self.index, "id": self.id, "reason": self.reason, "kind": self.kind}


Item = Union[Record, Reject]


def _strip_gz(path: Path) -> Path:
    return path.with_suffix("") if path.suffix.lower() == ".gz" else path


def _is_gz(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _open_binary(path: Path):
    return gzip.open(path, "rb") if _is_gz(path) else open(path, "rb")


def detect_input_format(path: Union[str, Path]) -> str:
    """"text" for a folder; else by extension (ignoring `.gz`): .jsonl,
    .xml/.json (bioc), .pubtator; else by the first non-empty line (a
    "PMID|t|" line: pubtator, "<": bioc, "{": jsonl), else "text"."""
    path = Path(path)
    if path.is_dir():
        return "text"
    if not path.exists():
        raise FileNotFoundError(Errors.E106.format(what=f"input '{path}'", fix="check the path"))
    suffix = _strip_gz(path).suffix.lower()
    if suffix == ".jsonl":
        return "jsonl"
    if suffix in (".xml", ".json"):
        return "bioc"
    if suffix == ".pubtator":
        return "pubtator"
    from ..corpora.formats import _PUBTATOR_HEAD

    with _open_binary(path) as fp:
        for raw in fp:
            if raw.strip():
                raw = raw.lstrip(b"\xef\xbb\xbf")
                if _PUBTATOR_HEAD.match(raw):
                    return "pubtator"
                if raw.lstrip().startswith(b"<"):
                    return "bioc"
                if raw.lstrip().startswith(b"{"):
                    return "jsonl"
                break
    return "text"


def iter_input(
    path: Union[str, Path],
    format: Optional[str] = None,
    *,
    max_chars: Optional[int] = 1_000_000,
) -> Iterator[Item]:
    """Every input document, in order, as a Record or a Reject (see the
    module docs). Deterministic: the same input gives the same items, which
    is what `--resume` relies on."""
    path = Path(path)
    fmt = format or detect_input_format(path)
    if fmt not in INPUT_FORMATS:
        raise ValueError(
            Errors.E304.format(what="input format", value=fmt, options=", ".join(INPUT_FORMATS))
        )
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        raise ValueError(Errors.E306.format(name="max_chars", value=max_chars))
    if fmt == "text" and path.is_dir():
        items = _iter_folder(path, max_chars)
    elif fmt == "text":
        items = _iter_text_lines(path)
    elif fmt == "jsonl":
        items = _iter_jsonl(path)
    else:
        items = _iter_corpus(path, fmt)
    for item in items:
        if isinstance(item, Record):
            if not item.text.strip():
                item = Reject(item.index, item.id, "empty text", "empty")
            elif max_chars is not None and len(item.text) > max_chars:
                item = Reject(
                    item.index,
                    item.id,
                    f"text of {len(item.text)} characters is over --max-chars {max_chars}",
                    "too-long",
                )
        yield item


def _decode(raw: bytes) -> str:
    return raw.decode("utf8").rstrip("\r\n")


def _iter_text_lines(path: Path) -> Iterator[Item]:
    with _open_binary(path) as fp:
        for i, raw in enumerate(fp):
            if i == 0:
                raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
            doc_id = str(i + 1)
            try:
                text = _decode(raw)
            except UnicodeDecodeError as err:
                yield Reject(i, doc_id, f"line {i + 1} is not valid UTF-8 ({err})", "encoding")
                continue
            yield Record(i, doc_id, text, [("text", 0, text)])


def _iter_folder(path: Path, max_chars: Optional[int]) -> Iterator[Item]:
    files = sorted(
        p for p in path.iterdir() if p.is_file() and p.name.lower().endswith((".txt", ".txt.gz"))
    )
    if not files:
        raise ValueError(Errors.E307.format(path=path))
    for i, file in enumerate(files):
        doc_id = _strip_gz(file).stem
        size = file.stat().st_size
        if max_chars is not None and not _is_gz(file) and size > 4 * max_chars:
            # Surely over the limit (UTF-8: at most 4 bytes a character): not read at all.
            yield Reject(i, doc_id, f"file of {size} bytes is over --max-chars {max_chars}", "too-long")
            continue
        with _open_binary(file) as fp:
            raw = fp.read()
        raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
        try:
            text = raw.decode("utf8")
        except UnicodeDecodeError as err:
            yield Reject(i, doc_id, f"{file.name} is not valid UTF-8 ({err})", "encoding")
            continue
        yield Record(i, doc_id, text, [("text", 0, text)])


def _iter_jsonl(path: Path) -> Iterator[Item]:
    with _open_binary(path) as fp:
        index = 0
        for lineno, raw in enumerate(fp, start=1):
            if lineno == 1:
                raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
            if not raw.strip():
                continue  # blank lines separate nothing in JSONL
            doc_id = str(lineno)
            try:
                obj = json.loads(_decode(raw))
            except UnicodeDecodeError as err:
                yield Reject(index, doc_id, f"line {lineno} is not valid UTF-8 ({err})", "encoding")
            except json.JSONDecodeError as err:
                yield Reject(index, doc_id, f"line {lineno} is not valid JSON ({err.msg})", "json")
            else:
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    yield Reject(index, doc_id, f"line {lineno} has no \"text\" string", "json")
                else:
                    if obj.get("id") is not None:
                        doc_id = str(obj["id"])
                    yield Record(index, doc_id, obj["text"], [("text", 0, obj["text"])])
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


def _iter_corpus(path: Path, fmt: str) -> Iterator[Item]:
    from ..corpora.formats import iter_records

    with tempfile.TemporaryDirectory(prefix="spacy-biobert-annotate-") as tmp:
        if _is_gz(path):
            plain = Path(tmp) / _strip_gz(path).name
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            source = plain
        else:
            source = path
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
