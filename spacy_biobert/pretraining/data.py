"""Text for pretraining: documents as lists of sentences, streamed from corpus
files or plain text, split deterministically into a training and a held-out
slice, and tokenized into compact wordpiece arrays.

Inputs (one or many paths; a folder is walked in sorted order), every file
detected and read through the format table (`spacy_biobert.corpora.formats`):

- corpus formats (PubTator, BioC XML/JSON, ChemProt split folders or
  prefixes, JSONL, `.spacy`; `.gz` where the table reads it): each passage
  (title, abstract) is sentence-split on its own;
- plain text (`.txt`, `.text` or no extension, and none of the others by its
  first line): the one plain-text rule of every command
  (`spacy_biobert.corpora.text`, option `text_docs`): a document per line by
  default, or with `text_docs="blank-line"` documents separated by blank
  lines (BERT's own pretraining format: one sentence per line, a blank line
  between documents); each line is sentence-split on its own.

Sentences come from the one splitter of the corpus readers
(`spacy_biobert.corpora.sentences.split_sentences`). Files are read as
streams; only the tokenized wordpieces are kept, as int32 arrays (4 bytes per
wordpiece).
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy

from ..corpora.chemprot import SUFFIXES as CHEMPROT_SUFFIXES
from ..corpora.formats import (
    INPUT_FORMATS,
    READABLE_FORMATS,
    detect_format,
    file_extensions,
    iter_records,
    read_corpus,
)
from ..corpora.sentences import split_sentences  # noqa: F401  (re-exported)
from ..corpora.text import DEFAULT_TEXT_DOCS, check_text_docs
from ..errors import Errors

TEXT_FORMATS = ("auto", "text") + INPUT_FORMATS
_KNOWN_FILES = file_extensions(READABLE_FORMATS)
_CHEMPROT_FILES = tuple(f"_{suffix}.tsv" for suffix in CHEMPROT_SUFFIXES)


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


def iter_documents(
    paths: Sequence[Union[str, Path]],
    format: str = "auto",
    stats: Optional[TextStats] = None,
    *,
    text_docs: str = DEFAULT_TEXT_DOCS,
) -> Iterator[TextDocument]:
    """Stream the documents of every input path (files, folders), in order.
    `text_docs`: how plain text holds its documents (see the module docs)."""
    if format not in TEXT_FORMATS:
        raise ValueError(
            Errors.E606.format(name="format", value=format, reason=f"use one of {TEXT_FORMATS}")
        )
    check_text_docs(text_docs)
    stats = stats if stats is not None else TextStats()
    for path in paths:
        path = Path(path)
        if not path.exists() and not (
            format in ("auto", "chemprot") and Path(f"{path}_abstracts.tsv").exists()
        ):
            raise FileNotFoundError(Errors.E602.format(path=path))
        for file, fmt in _expand(path, format, stats):
            stats.files += 1
            for doc in _read_file(file, fmt, text_docs):
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
        if file.name.endswith(_CHEMPROT_FILES):
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
    """The format of one file, as the format table detects it, for a file
    with a name ending of one of its formats (plain text's ".txt"/".text"
    included), or, named on the command line (`strict`), no extension. Any
    other file is skipped in a folder (None) and an error (E603) when named."""
    name = path.name.lower()
    if not (name.endswith(_KNOWN_FILES) or (strict and not path.suffix)):
        if strict:
            raise ValueError(
                Errors.E603.format(
                    path=path, format="any known format", reason=f"unknown extension {path.suffix.lower()!r}",
                    formats=", ".join(TEXT_FORMATS),
                )
            )
        return None
    try:
        return detect_format(path, READABLE_FORMATS)
    except OSError as err:
        raise ValueError(
            Errors.E603.format(path=path, format="text", reason=err, formats=", ".join(TEXT_FORMATS))
        ) from None


def _read_file(path: Path, fmt: str, text_docs: str) -> Iterator[TextDocument]:
    if fmt == "spacy":
        for i, doc in enumerate(read_corpus(path, format="spacy")):
            yield TextDocument(f"{path.name}:{i}", split_sentences(doc.text))
        return
    # plain text has no length bound here (it never had): it is tokenized whole anyway
    bound = {"max_chars": None} if fmt == "text" else {}
    for rec in iter_records(path, fmt, text_docs=text_docs, **bound):
        sentences: List[str] = []
        for _type, _offset, text in rec.passages or [("text", 0, rec.text)]:
            sentences.extend(split_sentences(text))
        # a plain-text document is named by its file and first line
        yield TextDocument(f"{path.name}:{rec.doc_id}" if fmt == "text" else str(rec.doc_id), sentences)


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
