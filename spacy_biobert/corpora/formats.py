"""One entry point over every format: detection, reading, writing and the
token-alignment count that the `convert`/`alignment` commands use."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

from spacy.tokens import Doc

from ..errors import Errors
from ._base import (
    DEFAULT_MAX_CHARS,
    CorpusStats,
    SourceDocument,
    apply_limit,
    atomic_write,
    empty_file_error,
    get_make_doc,
    max_chars_of,
    source_to_doc,
)

INPUT_FORMATS = ("pubtator", "bioc", "chemprot", "jsonl", "spacy")
OUTPUT_FORMATS = ("spacy", "pubtator", "bioc-xml", "bioc-json", "jsonl", "chemprot")
OUTPUT_EXTENSIONS = {
    ".spacy": "spacy",
    ".pubtator": "pubtator",
    ".txt": "pubtator",
    ".xml": "bioc-xml",
    ".json": "bioc-json",
    ".jsonl": "jsonl",
}
_PUBTATOR_HEAD = re.compile(rb"^[^|\t\s]+\|[ta]\|")


def detect_format(path: Union[str, Path]) -> str:
    """The input format of a path, from its kind, extension or first line."""
    path = Path(path)
    if path.is_dir() or path.name.endswith(
        ("_abstracts.tsv", "_entities.tsv", "_relations.tsv", "_gold_standard.tsv")
    ):
        return "chemprot"
    if not path.exists():
        if Path(f"{path}_abstracts.tsv").exists():
            return "chemprot"
        raise FileNotFoundError(
            Errors.E106.format(what=f"input '{path}'", fix="check the path")
        )
    suffix = path.suffix.lower()
    if suffix in (".xml", ".json"):
        return "bioc"
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".spacy":
        return "spacy"
    if suffix == ".pubtator":
        return "pubtator"
    empty = True
    with open(path, "rb") as fp:
        for raw in fp:
            raw = raw.lstrip(b"\xef\xbb\xbf")
            if raw.strip():
                empty = False
                # a CR-only file is one "line" here: look at its first line
                raw = raw.lstrip().split(b"\r", 1)[0]
                if _PUBTATOR_HEAD.match(raw):
                    return "pubtator"
                if raw.startswith(b"<"):
                    return "bioc"
                if raw.startswith(b"{"):
                    return "jsonl"
                break
    if empty:
        raise empty_file_error(path)
    raise ValueError(
        Errors.E107.format(
            path=path,
            formats=", ".join(INPUT_FORMATS),
            extensions=".txt/.pubtator, .xml, .json, .jsonl, .spacy",
        )
    )


def output_format(path: Union[str, Path]) -> str:
    """The output format for a path: by extension; a folder (existing, or a
    path ending in "/") or a path without extension is a ChemProt prefix."""
    path_s = str(path)
    suffix = Path(path_s).suffix.lower()
    if suffix in OUTPUT_EXTENSIONS:
        return OUTPUT_EXTENSIONS[suffix]
    if Path(path_s).is_dir() or path_s.endswith(("/", "\\")) or not suffix:
        return "chemprot"
    raise ValueError(
        Errors.E107.format(
            path=path,
            formats=", ".join(OUTPUT_FORMATS),
            extensions=", ".join(OUTPUT_EXTENSIONS),
        )
    )


def iter_records(
    path: Union[str, Path],
    format: Optional[str] = None,
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
    dedupe: bool = False,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> Iterator[SourceDocument]:
    """Records (no tokenization) of any supported input format but .spacy.
    A document longer than `max_chars` characters is a bad record (E113;
    None: no bound)."""
    fmt = format or detect_format(path)
    if fmt == "pubtator":
        from .pubtator import iter_pubtator_records

        return iter_pubtator_records(
            path, on_error=on_error, stats=stats, dedupe=dedupe, max_chars=max_chars
        )
    if fmt == "bioc":
        from .bioc_format import iter_bioc_records

        return iter_bioc_records(path, on_error=on_error, stats=stats, max_chars=max_chars)
    if fmt == "chemprot":
        from .chemprot import iter_chemprot_records

        return iter_chemprot_records(
            path, on_error=on_error, stats=stats, max_chars=max_chars
        )
    if fmt == "jsonl":
        from .jsonl import iter_jsonl_records

        return iter_jsonl_records(path, on_error=on_error, stats=stats, max_chars=max_chars)
    raise ValueError(
        Errors.E107.format(
            path=path, formats=", ".join(INPUT_FORMATS[:-1]), extensions="(records)"
        )
    )


def read_corpus(
    path: Union[str, Path],
    nlp_or_vocab: Any = None,
    *,
    format: Optional[str] = None,
    on_error: str = "raise",
    limit: Optional[int] = None,
    label_map: Optional[Dict[str, str]] = None,
    dedupe: bool = False,
    stats: Optional[CorpusStats] = None,
) -> Iterator[Doc]:
    """Stream Docs from any supported format (detected when format is None)."""
    fmt = format or detect_format(path)
    stats = stats if stats is not None else CorpusStats()
    stats.path = str(path)
    if fmt == "spacy":
        yield from _read_docbin(path, nlp_or_vocab, limit, stats)
        return
    make_doc = get_make_doc(nlp_or_vocab)
    records = iter_records(
        path,
        fmt,
        on_error=on_error,
        stats=stats,
        dedupe=dedupe,
        max_chars=max_chars_of(nlp_or_vocab),
    )
    for rec in apply_limit(records, limit):
        yield source_to_doc(
            rec, make_doc, label_map=label_map, stats=stats, source_format=fmt
        )
    stats.log_warnings()


def _read_docbin(
    path: Union[str, Path], nlp_or_vocab: Any, limit: Optional[int], stats: CorpusStats
) -> Iterator[Doc]:
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    from ..extensions import install_extensions

    install_extensions()
    vocab = getattr(nlp_or_vocab, "vocab", nlp_or_vocab) or Vocab()
    for doc in apply_limit(DocBin().from_disk(path).get_docs(vocab), limit):
        stats.documents += 1
        yield doc


def write_corpus(
    docs: Iterable[Doc], path: Union[str, Path], format: Optional[str] = None
) -> int:
    """Write Docs in the format of `path` (or `format`); returns the count.
    Every format is written atomically (a temporary file in the same folder,
    renamed when complete): on an error the output is left as it was."""
    fmt = format or output_format(path)
    if fmt == "spacy":
        from spacy.tokens import DocBin

        db = DocBin(store_user_data=True)
        n = 0
        for doc in docs:
            db.add(doc)
            n += 1
        with atomic_write(path) as tmp:
            db.to_disk(tmp)
        return n
    if fmt == "pubtator":
        from .pubtator import write_pubtator

        return write_pubtator(docs, path)
    if fmt == "bioc-xml":
        from .bioc_format import write_bioc_xml

        return write_bioc_xml(docs, path)
    if fmt == "bioc-json":
        from .bioc_format import write_bioc_json

        return write_bioc_json(docs, path)
    if fmt == "jsonl":
        from .jsonl import write_jsonl

        return write_jsonl(docs, path)
    if fmt == "chemprot":
        from .chemprot import write_chemprot

        return write_chemprot(docs, path)
    raise ValueError(
        Errors.E107.format(
            path=path,
            formats=", ".join(OUTPUT_FORMATS),
            extensions=", ".join(OUTPUT_EXTENSIONS),
        )
    )


@dataclass
class AlignmentReport:
    """How many gold mentions do not fall on token boundaries."""

    path: str
    tokenizer: str
    documents: int = 0
    mentions: int = 0
    misaligned: int = 0
    by_type: Dict[str, List[int]] = field(
        default_factory=dict
    )  # type -> [misaligned, total]
    examples: List[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.misaligned / self.mentions if self.mentions else 0.0


def count_misaligned(
    records: Iterable[SourceDocument],
    make_doc: Callable[[str], Doc],
    *,
    path: str = "",
    tokenizer: str = "",
    max_examples: int = 20,
) -> AlignmentReport:
    """Count the mentions whose start or end is not a token boundary of
    `make_doc` (such mentions are expanded to the enclosing tokens by the
    readers)."""
    report = AlignmentReport(path=path, tokenizer=tokenizer)
    for rec in records:
        doc = make_doc(rec.text)
        report.documents += 1
        for m in rec.mentions:
            report.mentions += 1
            counts = report.by_type.setdefault(m.type, [0, 0])
            counts[1] += 1
            if doc.char_span(m.start, m.end) is None:
                report.misaligned += 1
                counts[0] += 1
                if len(report.examples) < max_examples:
                    wide = doc.char_span(m.start, m.end, alignment_mode="expand")
                    report.examples.append(
                        f"{rec.doc_id}:{m.id} {m.text!r} -> "
                        f"{wide.text if wide is not None else None!r}"
                    )
    return report


def make_tokenizer_nlp(tokenizer: str = "biomedical", lang: str = "en") -> Any:
    """A blank pipeline with spaCy's default tokenizer or the biomedical one."""
    import spacy

    nlp = spacy.blank(lang)
    if tokenizer == "biomedical":
        from ..tokenizer import create_biomedical_tokenizer

        nlp.tokenizer = create_biomedical_tokenizer()(nlp)
    elif tokenizer != "default":
        raise ValueError(f"tokenizer must be 'default' or 'biomedical', not {tokenizer!r}.")
    return nlp
