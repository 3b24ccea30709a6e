"""The format table: every corpus and input format in one place, with how it
is named, detected, read (a path, maybe gzip-compressed, or a stream) and
written. `convert`, `alignment`, `evaluate`, `annotate` (its input),
`pretrain` and the service all go through it.

| name | input: detected by | read from | written to (`--to`) |
| --- | --- | --- | --- |
| pubtator | `.pubtator`; a first line `PMID|t|` | path, `.gz`, stream | `.pubtator`, `.txt` |
| bioc | `.xml`, `.json`; a first line `<` | path, `.gz`, stream | `bioc-xml`: `.xml`; `bioc-json`: `.json` |
| chemprot | a folder or prefix of `*_abstracts.tsv` | path | a folder or prefix |
| brat | `.ann`; a folder holding `.ann` files | path | a folder (`--to brat`) |
| jsonl | `.jsonl`; a first line `{` | path, `.gz`, stream | `.jsonl` |
| spacy | `.spacy` | path, stream | `.spacy` |
| text | anything else, where a command takes plain text | path, `.gz`, stream | - |

Detection (`detect_format`) looks at the kind of path (a folder: ChemProt
when it holds a `*_abstracts.tsv`, brat when it holds `.ann` files), its name
(".gz" set aside), then the first non-blank line; each command says which
formats it takes (`formats=`): a corpus command never takes a file it cannot
tell for plain text (E107), a command that reads plain text falls back to it.
Plain text: see `spacy_biobert.corpora.text` (one option, `text_docs`).
"""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

from spacy.tokens import Doc

from ..errors import Errors
from .bioc_format import iter_bioc_records, write_bioc_json, write_bioc_xml
from .brat import iter_brat_records, write_brat
from .checks import DEFAULT_MAX_CHARS
from .chemprot import SUFFIXES as CHEMPROT_SUFFIXES
from .chemprot import iter_chemprot_records, write_chemprot
from .errors import CorpusStats, empty_file_error
from .io import Source, atomic_write, is_gzip_name, is_stream, open_binary, source_name
from .jsonl import iter_jsonl_records, write_jsonl
from .losses import LossReport, check_losses
from .pubtator import iter_pubtator_records, write_pubtator
from .reading import apply_limit, read_docs
from .records import SourceDocument
from .text import DEFAULT_TEXT_DOCS, iter_text_records

_PUBTATOR_HEAD = re.compile(rb"^[^|\t\s]+\|[ta]\|")
_CHEMPROT_FILES = tuple(f"_{suffix}.tsv" for suffix in CHEMPROT_SUFFIXES)
# The longest piece of a line detection holds at once.
_SNIFF_BYTES = 1 << 20


@dataclass
class ReadOptions:
    """The options of a records reader (each format uses those it knows)."""

    on_error: str = "raise"
    stats: Optional[CorpusStats] = None
    max_chars: Optional[int] = DEFAULT_MAX_CHARS
    dedupe: bool = False
    text_docs: str = DEFAULT_TEXT_DOCS


@dataclass(frozen=True)
class Format:
    """One row of the format table.

    extensions: the name endings (lower case, ".gz" set aside) that tell the
        format of an input (plain text's ".txt"/".text" do not: a ".txt" file
        is read as whatever its first line says);
    sniff: whether the first non-blank line (bytes, leading whitespace and
        byte order mark dropped, up to a line break) is of this format;
    read: the records (`SourceDocument`) of a source, given `ReadOptions`;
    read_docs: for a format that holds Docs, not records (.spacy);
    write: `(docs, target) -> count`;
    output_extensions: output names written in this format;
    gzip: an input whose name ends in ".gz" is read decompressed;
    streams: `read` takes an open stream as well as a path;
    annotated: the format holds annotations (everything but plain text);
    hint: how its files are named, for messages (default: the extensions);
    reader: its registered corpus reader (`@readers` in a training config,
        and what every evaluator reads gold with: `readers.gold_corpus`);
    chunked: `annotate` writes it document by document (so a run can
        checkpoint and resume: `annotate.outputs`).
    """

    name: str
    description: str
    extensions: Tuple[str, ...] = ()
    sniff: Optional[Callable[[bytes], bool]] = None
    read: Optional[Callable[[Source, ReadOptions], Iterator[SourceDocument]]] = None
    read_docs: Optional[Callable[..., Iterator[Doc]]] = None
    write: Optional[Callable[[Iterable[Doc], Any], int]] = None
    output_extensions: Tuple[str, ...] = ()
    gzip: bool = False
    streams: bool = False
    annotated: bool = True
    hint: str = ""
    reader: str = ""
    chunked: bool = False

    @property
    def readable(self) -> bool:
        return self.read is not None or self.read_docs is not None


def _read_docbin(
    path: Source, nlp_or_vocab: Any, limit: Optional[int], stats: CorpusStats
) -> Iterator[Doc]:
    from spacy.tokens import DocBin
    from spacy.vocab import Vocab

    from ..extensions import install_extensions

    install_extensions()
    vocab = getattr(nlp_or_vocab, "vocab", nlp_or_vocab) or Vocab()
    if is_stream(path):
        with open_binary(path) as fp:
            docbin = DocBin().from_bytes(fp.read())
    else:
        docbin = DocBin().from_disk(path)
    for doc in apply_limit(docbin.get_docs(vocab), limit):
        stats.documents += 1
        yield doc


def _write_docbin(docs: Iterable[Doc], path: Union[str, Path]) -> int:
    from spacy.tokens import DocBin

    db = DocBin(store_user_data=True)
    n = 0
    for doc in docs:
        db.add(doc)
        n += 1
    with atomic_write(path) as tmp:
        db.to_disk(tmp)
    return n


FORMATS: Dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "pubtator", "PubTator (BC5CDR, NCBI-disease)", (".pubtator",),
            sniff=lambda line: _PUBTATOR_HEAD.match(line) is not None,
            read=lambda src, o: iter_pubtator_records(
                src, on_error=o.on_error, stats=o.stats, dedupe=o.dedupe, max_chars=o.max_chars
            ),
            write=write_pubtator, output_extensions=(".pubtator", ".txt"), gzip=True, streams=True,
            hint=".txt/.pubtator", reader="spacy-biobert.PubTatorCorpus.v1", chunked=True,
        ),
        Format(
            "bioc", "BioC XML or BioC JSON", (".xml", ".json"),
            sniff=lambda line: line.startswith(b"<"),
            read=lambda src, o: iter_bioc_records(
                src, on_error=o.on_error, stats=o.stats, max_chars=o.max_chars
            ),
            gzip=True, streams=True, reader="spacy-biobert.BioCCorpus.v1",
        ),
        Format(
            "chemprot", "ChemProt TSV split (a folder or a file prefix)", _CHEMPROT_FILES,
            read=lambda src, o: iter_chemprot_records(
                src, on_error=o.on_error, stats=o.stats, max_chars=o.max_chars
            ),
            write=write_chemprot, reader="spacy-biobert.ChemProtCorpus.v1",
        ),
        Format(
            "brat", "brat standoff: a folder of NAME.txt + NAME.ann pairs (or one .ann file)",
            (".ann",),
            read=lambda src, o: iter_brat_records(
                src, on_error=o.on_error, stats=o.stats, max_chars=o.max_chars
            ),
            write=write_brat, hint=".ann, or a folder of .txt + .ann",
            reader="spacy-biobert.BratCorpus.v1", chunked=True,
        ),
        Format(
            "jsonl", "JSONL, a JSON object per document", (".jsonl",),
            sniff=lambda line: line.startswith(b"{"),
            read=lambda src, o: iter_jsonl_records(
                src, on_error=o.on_error, stats=o.stats, max_chars=o.max_chars
            ),
            write=write_jsonl, output_extensions=(".jsonl",), gzip=True, streams=True,
            reader="spacy-biobert.JSONLCorpus.v1", chunked=True,
        ),
        Format(
            "spacy", "spaCy DocBin", (".spacy",), read_docs=_read_docbin, write=_write_docbin,
            output_extensions=(".spacy",), streams=True, reader="spacy.Corpus.v1",
        ),
        Format(
            "text", "plain text (see text_docs)", (".txt", ".text"),
            read=lambda src, o: iter_text_records(
                src, on_error=o.on_error, stats=o.stats, max_chars=o.max_chars, text_docs=o.text_docs
            ),
            gzip=True, streams=True, annotated=False,
        ),
        Format("bioc-xml", "BioC XML", write=write_bioc_xml, output_extensions=(".xml",), chunked=True),
        Format("bioc-json", "BioC JSON", write=write_bioc_json, output_extensions=(".json",), chunked=True),
    )
}
"""The format table, by name."""

INPUT_FORMATS = tuple(n for n, f in FORMATS.items() if f.readable and f.annotated)
"""Corpus inputs: the readable formats that hold annotations."""
RECORD_FORMATS = tuple(n for n, f in FORMATS.items() if f.read is not None)
"""Formats read as records (`iter_records`)."""
STREAM_FORMATS = tuple(n for n in RECORD_FORMATS if FORMATS[n].streams and FORMATS[n].gzip)
"""Formats read as records from a stream or a ".gz" file (annotate's inputs)."""
READABLE_FORMATS = tuple(n for n, f in FORMATS.items() if f.readable)
"""Every format that can be read (pretrain's inputs)."""
OUTPUT_FORMATS = tuple(n for n, f in FORMATS.items() if f.write is not None)
OUTPUT_EXTENSIONS = {ext: n for n, f in FORMATS.items() for ext in f.output_extensions}

CHUNKED_OUTPUT_FORMATS = tuple(n for n, f in FORMATS.items() if f.write is not None and f.chunked)
"""What `annotate` writes: the outputs it writes document by document."""


def file_extensions(formats: Sequence[str] = READABLE_FORMATS) -> Tuple[str, ...]:
    """The name endings of input files of `formats` (plain text's included),
    with their ".gz" forms where the format reads gzip: what a folder walk
    takes as files of a known format."""
    found: List[str] = []
    for name in formats:
        f = FORMATS[name]
        found.extend(f.extensions)
        if f.gzip:
            found.extend(f"{ext}.gz" for ext in f.extensions)
    return tuple(found)


def detect_format(path: Source, formats: Sequence[str] = INPUT_FORMATS) -> str:
    """The format of an input among `formats` (default: the corpus inputs):

    1. a folder: "chemprot" when it holds a *_abstracts.tsv, "brat" when
       it holds .ann files (each format when taken); else "chemprot" when
       taken and plain text is not, else "text";
    2. a ChemProt file name (*_abstracts.tsv, ...) or prefix: "chemprot";
    3. a name ending (".gz" set aside) of the table (`Format.extensions`);
    4. the first non-blank line (`Format.sniff`); a file with none is plain
       text, or empty (E105) where plain text is not taken;
    5. plain text, where taken; else E107.

    A missing path is E106. A stream is told by its name (a file opened by
    the caller), else by its first line (a seekable stream only: it is read
    back to where it was)."""
    names = set(formats)
    if is_stream(path):
        by_name = _detect_by_name(Path(source_name(path)).name, False, formats)
        return by_name or _detect_by_content(path, False, names, formats, source_name(path))
    path = Path(path)
    if path.is_dir():
        if "chemprot" in names and any(path.glob("*_abstracts.tsv")):
            return "chemprot"
        if "brat" in names and next(path.rglob("*.ann"), None) is not None:
            return "brat"
        if "chemprot" in names and "text" not in names:
            return "chemprot"
        if "text" in names:
            return "text"
        raise _undetected(path, formats)
    if "chemprot" in names and path.name.endswith(_CHEMPROT_FILES):
        return "chemprot"
    if not path.exists():
        if "chemprot" in names and Path(f"{path}_abstracts.tsv").exists():
            return "chemprot"
        raise FileNotFoundError(Errors.E106.format(what=f"input '{path}'", fix="check the path"))
    gz = is_gzip_name(path)
    by_name = _detect_by_name(path.name, gz, formats)
    return by_name or _detect_by_content(path, gz, names, formats, str(path))


def _detect_by_name(name: str, gz: bool, formats: Sequence[str]) -> Optional[str]:
    """The format a file name ending tells (".gz" set aside when `gz`)."""
    plain = name.lower()[: -len(".gz")] if gz else name.lower()
    for fmt in formats:
        f = FORMATS[fmt]
        if fmt not in ("text", "chemprot") and f.extensions and plain.endswith(f.extensions):
            if f.gzip or not gz:
                return fmt
    return None


def _detect_by_content(
    source: Any, gz: bool, names: Set[str], formats: Sequence[str], where: str
) -> str:
    """The format the first non-blank line of a file or stream tells."""
    line = _first_line_of_stream(source, formats) if is_stream(source) else _first_line(source)
    if line is None:
        if "text" in names:
            return "text"
        raise empty_file_error(where)
    for name in formats:
        f = FORMATS[name]
        if line and f.sniff is not None and (f.gzip or not gz) and f.sniff(line):
            return name
    if "text" in names:
        return "text"
    raise _undetected(where, formats)


def unknown_format(name: str, source: Any, formats: Sequence[str]) -> str:
    """E810: `name` is not one of `formats` (a format passed by name)."""
    return Errors.E810.format(
        value=name, path=source_name(source), formats=", ".join(formats),
        extensions=", ".join(_extension_hints(formats)),
    )


def _extension_hints(formats: Sequence[str]) -> List[str]:
    return [
        FORMATS[n].hint or ", ".join(FORMATS[n].extensions)
        for n in formats
        if n not in ("chemprot", "text") and FORMATS[n].extensions
    ]


def _undetected(where: Any, formats: Sequence[str]) -> ValueError:
    """E107: an input of none of `formats`."""
    extensions = _extension_hints(formats)
    return ValueError(
        Errors.E107.format(path=where, formats=", ".join(formats), extensions=", ".join(extensions))
    )


def _first_line(source: Source) -> Optional[bytes]:
    """The first non-blank line of a file, from its first non-space byte up to
    a line break (a byte order mark dropped); None when it holds none."""
    with open_binary(source) as fp:
        while True:
            raw = fp.readline(_SNIFF_BYTES)  # a long line is looked at in pieces
            if not raw:
                return None
            raw = raw.lstrip(b"\xef\xbb\xbf")
            if raw.strip():
                # a CR-only file is one "line" here: look at its first line
                return raw.lstrip().split(b"\r", 1)[0]


def _first_line_of_stream(stream: Any, formats: Sequence[str]) -> Optional[bytes]:
    seekable = getattr(stream, "seekable", None)
    if seekable is None or not seekable():
        raise ValueError(
            Errors.E107.format(
                path=source_name(stream), formats=", ".join(formats),
                extensions="(a stream that cannot be read back: pass its format)",
            )
        )
    start = stream.tell()
    try:
        return _first_line(stream)
    finally:
        stream.seek(start)


def output_format(path: Union[str, Path]) -> str:
    """The output format for a path: by extension; an existing folder that
    holds .ann files is brat; another folder (existing, or a path ending in
    "/") or a path without extension is a ChemProt prefix (brat: `--to brat`)."""
    path_s = str(path)
    suffix = Path(path_s).suffix.lower()
    if suffix in OUTPUT_EXTENSIONS:
        return OUTPUT_EXTENSIONS[suffix]
    if Path(path_s).is_dir() and next(Path(path_s).rglob("*.ann"), None) is not None:
        return "brat"
    if Path(path_s).is_dir() or path_s.endswith(("/", "\\")) or not suffix:
        return "chemprot"
    raise _unknown_output(path)


def _unknown_output(path: Any) -> ValueError:
    return ValueError(
        Errors.E107.format(
            path=path, formats=", ".join(OUTPUT_FORMATS), extensions=", ".join(OUTPUT_EXTENSIONS)
        )
    )


def get_format(name: str, source: Any = None, *, records: bool = False) -> Format:
    """The table's row `name`, checked to read `source` (records, when
    `records`): an unknown or unreadable format is E107; a stream given to a
    format read from paths only (ChemProt) is E118."""
    f = FORMATS.get(name)
    if f is None or not (f.read is not None if records else f.readable):
        taken = RECORD_FORMATS if records else READABLE_FORMATS
        raise ValueError(unknown_format(name, source, taken))
    if is_stream(source) and not f.streams:
        raise ValueError(
            Errors.E118.format(
                format=f.description, why="it is found by its file names",
                fix="pass the path (a folder or file prefix for ChemProt)",
            )
        )
    return f


def iter_records(
    path: Source,
    format: Optional[str] = None,
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
    dedupe: bool = False,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
    text_docs: str = DEFAULT_TEXT_DOCS,
) -> Iterator[SourceDocument]:
    """Records (no tokenization) of any format with a records reader (every
    one but .spacy), from a path (".gz" where the format allows it) or a
    stream. A document longer than `max_chars` characters is a bad record
    (E113; None: no bound). `dedupe`: PubTator only; `text_docs`: plain text
    only."""
    fmt = format or detect_format(path)
    options = ReadOptions(on_error, stats, max_chars, dedupe, text_docs)
    return get_format(fmt, path, records=True).read(path, options)  # type: ignore[misc]


def read_corpus(
    path: Source,
    nlp_or_vocab: Any = None,
    *,
    format: Optional[str] = None,
    on_error: str = "raise",
    limit: Optional[int] = None,
    label_map: Optional[Dict[str, str]] = None,
    dedupe: bool = False,
    stats: Optional[CorpusStats] = None,
    text_docs: str = DEFAULT_TEXT_DOCS,
) -> Iterator[Doc]:
    """Stream Docs from any supported format (detected when format is None)."""
    fmt = format or detect_format(path)
    f = get_format(fmt, path)
    stats = stats if stats is not None else CorpusStats()
    stats.path = source_name(path)
    if f.read_docs is not None:
        yield from f.read_docs(path, nlp_or_vocab, limit, stats)
        return
    yield from read_docs(
        iter_records, path, nlp_or_vocab, source_format=fmt, stats=stats, limit=limit,
        label_map=label_map, format=fmt, on_error=on_error, dedupe=dedupe, text_docs=text_docs,
    )


def write_corpus(
    docs: Iterable[Doc],
    path: Union[str, Path],
    format: Optional[str] = None,
    *,
    allow_loss: bool = False,
    losses: Optional[LossReport] = None,
) -> int:
    """Write Docs in the format of `path` (or `format`); returns the count.
    Every format is written atomically (a temporary file in the same folder,
    renamed when complete): on an error the output is left as it was.

    What the format cannot hold (`spacy_biobert.corpora.losses`: ChemProt's
    relations in PubTator, kb ids in ChemProt, ...) is never dropped without
    a word: it is an error (E121, with the counts of the whole file) unless
    `allow_loss`, when the file is written without it. `losses`: a
    `LossReport` filled with the counts (set its `source` to name the input
    in E121)."""
    fmt = format or output_format(path)
    f = FORMATS.get(fmt)
    if f is None or f.write is None:
        raise _unknown_output(path)
    report = losses if losses is not None else LossReport(fmt)
    report.format = fmt
    return f.write(check_losses(docs, fmt, report, allow_loss=allow_loss), path)


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
