"""Text for pretraining: documents as lists of sentences, streamed from corpus
files or plain text, split deterministically into a training and a held-out
slice, and tokenized into compact wordpiece arrays.

Inputs (one or many paths; a folder is walked in sorted order):

- corpus formats through `spacy_biobert.corpora` (PubTator, BioC XML/JSON,
  ChemProt split folders or prefixes, JSONL, `.spacy`): each passage (title,
  abstract) is sentence-split on its own;
- plain text (`.txt`, `.text` or no extension, not PubTator): documents are
  separated by blank lines; each line is sentence-split (so one sentence per
  line, BERT's own pretraining format, also works).

Files are read as streams; only the tokenized wordpieces are kept, as int32
arrays (4 bytes per wordpiece).
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy

from ..corpora._base import _NO_SPLIT_BEFORE, _SENT_END
from ..errors import Errors

TEXT_FORMATS = ("auto", "text", "pubtator", "bioc", "chemprot", "jsonl", "spacy")
_TEXT_SUFFIXES = ("", ".txt", ".text")
_CORPUS_SUFFIXES = {".xml": "bioc", ".json": "bioc", ".jsonl": "jsonl", ".spacy": "spacy",
                    ".pubtator": "pubtator"}
_CHEMPROT_OTHER = ("_entities.tsv", "_relations.tsv", "_gold_standard.tsv")


@dataclass
class TextDocument:
    """One document: an id (for messages) and its sentences, in order."""

    id: str
    sentences: List[str]

    def key(self) -> str:
        """A content hash: the held-out split is decided by it, so the same
        text lands on the same side whatever file or order it comes from."""
        return hashlib.sha1("\n".join(self.sentences).encode("utf8")).hexdigest()


@dataclass
class TextStats:
    """What reading the inputs found."""

    files: int = 0
    skipped_files: List[str] = field(default_factory=list)
    documents: int = 0
    sentences: int = 0
    characters: int = 0

    def as_dict(self) -> Dict[str, Any]:
        return {
            "files": self.files,
            "skipped_files": self.skipped_files[:20],
            "documents": self.documents,
            "sentences": self.sentences,
            "characters": self.characters,
        }


def split_sentences(text: str) -> List[str]:
    """Split text into sentences with the corpus readers' rule: a sentence ends
    at [.!?] (plus closing quotes/brackets) followed by whitespace and an
    upper-case letter, digit or opening bracket, unless the word before is a
    common abbreviation (e.g., i.e., vs., Fig., al.) or an initial."""
    starts = [0]
    for m in _SENT_END.finditer(text):
        if _NO_SPLIT_BEFORE.search(text[max(0, m.start() - 8) : m.start()]):
            continue
        starts.append(m.end())
    starts.append(len(text))
    pieces = (text[a:b].strip() for a, b in zip(starts, starts[1:]))
    return [" ".join(p.split()) for p in pieces if p]


def iter_documents(
    paths: Sequence[Union[str, Path]],
    format: str = "auto",
    stats: Optional[TextStats] = None,
) -> Iterator[TextDocument]:
    """Stream the documents of every input path (files, folders), in order."""
    if format not in TEXT_FORMATS:
        raise ValueError(
            Errors.E606.format(name="format", value=format, reason=f"use one of {TEXT_FORMATS}")
        )
    stats = stats if stats is not None else TextStats()
    for path in paths:
        path = Path(path)
        if not path.exists() and not (
            format in ("auto", "chemprot") and Path(f"{path}_abstracts.tsv").exists()
        ):
            raise FileNotFoundError(Errors.E602.format(path=path))
        for file, fmt in _expand(path, format, stats):
            stats.files += 1
            for doc in _read_file(file, fmt):
                if doc.sentences:
                    stats.documents += 1
                    stats.sentences += len(doc.sentences)
                    stats.characters += sum(len(s) for s in doc.sentences)
                    yield doc


def _expand(path: Path, format: str, stats: TextStats) -> Iterator[Tuple[Path, str]]:
    if not path.exists():  # a ChemProt file prefix (PREFIX_abstracts.tsv exists)
        yield path, "chemprot"
        return
    if not path.is_dir():
        yield path, (format if format != "auto" else _file_format(path, strict=True))
        return
    if format == "chemprot" or (format == "auto" and _is_chemprot_folder(path)):
        # a ChemProt split folder: its *_abstracts.tsv (with their entity files), nothing else
        for abstracts in sorted(path.glob("*_abstracts.tsv")):
            yield Path(str(abstracts)[: -len("_abstracts.tsv")]), "chemprot"
        return
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in file.relative_to(path).parts):
            continue
        if file.name.endswith(("_abstracts.tsv",) + _CHEMPROT_OTHER):
            if file.parent != path:  # a ChemProt split inside the folder
                if file.name.endswith("_abstracts.tsv"):
                    yield Path(str(file)[: -len("_abstracts.tsv")]), "chemprot"
            continue
        fmt = format if format != "auto" else _file_format(file, strict=False)
        if fmt is None:
            stats.skipped_files.append(str(file))
            continue
        yield file, fmt


def _is_chemprot_folder(path: Path) -> bool:
    return any(path.glob("*_abstracts.tsv"))


def _file_format(path: Path, strict: bool) -> Optional[str]:
    """The format of one file; None (folders: skip it) or an error (a file
    named on the command line) when it is none of ours."""
    from ..corpora.formats import _PUBTATOR_HEAD

    if path.name.endswith("_abstracts.tsv"):
        return "chemprot"
    suffix = path.suffix.lower()
    if suffix in _CORPUS_SUFFIXES:
        return _CORPUS_SUFFIXES[suffix]
    if suffix in _TEXT_SUFFIXES and (strict or suffix):
        try:
            with open(path, "rb") as fp:
                for raw in fp:
                    if raw.strip():
                        return "pubtator" if _PUBTATOR_HEAD.match(raw.lstrip(b"\xef\xbb\xbf")) else "text"
        except OSError as err:
            raise ValueError(
                Errors.E603.format(path=path, format="text", reason=err, formats=TEXT_FORMATS)
            ) from None
        return "text"
    if strict:
        raise ValueError(
            Errors.E603.format(
                path=path, format="any known format", reason=f"unknown extension {suffix!r}",
                formats=", ".join(TEXT_FORMATS),
            )
        )
    return None


def _read_file(path: Path, fmt: str) -> Iterator[TextDocument]:
    if fmt == "text":
        yield from _read_plain_text(path)
        return
    if fmt == "spacy":
        from spacy.tokens import DocBin
        from spacy.vocab import Vocab

        for i, doc in enumerate(DocBin().from_disk(path).get_docs(Vocab())):
            yield TextDocument(f"{path.name}:{i}", split_sentences(doc.text))
        return
    from ..corpora.formats import iter_records

    try:
        for rec in iter_records(path, fmt):
            sentences: List[str] = []
            for _type, _offset, text in rec.passages or [("text", 0, rec.text)]:
                sentences.extend(split_sentences(text))
            yield TextDocument(str(rec.doc_id), sentences)
    except UnicodeDecodeError as err:
        raise ValueError(
            Errors.E603.format(path=path, format=fmt, reason=err, formats=", ".join(TEXT_FORMATS))
        ) from None


def _read_plain_text(path: Path) -> Iterator[TextDocument]:
    """Documents separated by blank lines; every line sentence-split."""
    sentences: List[str] = []
    start_line = 1
    with open(path, "rb") as fp:
        for lineno, raw in enumerate(fp, 1):
            try:
                line = raw.decode("utf8").lstrip("\ufeff")
            except UnicodeDecodeError as err:
                raise ValueError(
                    Errors.E603.format(
                        path=f"{path}:{lineno}", format="UTF-8 text", reason=err,
                        formats=", ".join(TEXT_FORMATS),
                    )
                ) from None
            if line.strip():
                if not sentences:
                    start_line = lineno
                sentences.extend(split_sentences(line))
            elif sentences:
                yield TextDocument(f"{path.name}:{start_line}", sentences)
                sentences = []
    if sentences:
        yield TextDocument(f"{path.name}:{start_line}", sentences)


def is_heldout(doc: TextDocument, fraction: float) -> bool:
    """Deterministic by content: the same document is always on the same side."""
    if fraction <= 0:
        return False
    return int(doc.key()[:8], 16) / 0xFFFFFFFF < fraction


@dataclass
class TokenizedDocument:
    """Wordpiece ids of a document (int32) and where each sentence starts."""

    ids: numpy.ndarray
    starts: numpy.ndarray  # len = number of sentences + 1

    @property
    def segments(self) -> List[numpy.ndarray]:
        return [self.ids[a:b] for a, b in zip(self.starts[:-1], self.starts[1:])]


def tokenize_documents(
    docs: Iterable[TextDocument], tokenizer: Any, max_segment: int
) -> Tuple[List[TokenizedDocument], "hashlib._Hash"]:
    """Tokenize every sentence without special tokens; a sentence longer than
    `max_segment` wordpieces is cut into pieces of that length, so no text is
    lost to truncation. Returns the documents and a running hash of their ids
    (a fingerprint of the data, checked on resume)."""
    out: List[TokenizedDocument] = []
    digest = hashlib.sha1()
    for doc in docs:
        encoded = tokenizer(doc.sentences, add_special_tokens=False)["input_ids"]
        pieces: List[List[int]] = []
        for ids in encoded:
            for i in range(0, len(ids), max_segment):
                if ids[i : i + max_segment]:
                    pieces.append(ids[i : i + max_segment])
        if not pieces:
            continue
        ids_arr = numpy.asarray([t for p in pieces for t in p], dtype=numpy.int32)
        starts = numpy.cumsum([0] + [len(p) for p in pieces]).astype(numpy.int64)
        digest.update(ids_arr.tobytes())
        digest.update(starts.tobytes())
        out.append(TokenizedDocument(ids_arr, starts))
    return out, digest
