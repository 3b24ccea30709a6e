"""The plumbing every format's reader shares: checking a reader's arguments
and setting up its counts and error policy (`start_reading`), the content lines
of a document-per-line file (`document_lines`), and the public
`read_<format>` functions (`docs_reader`, `read_docs`, `records_to_docs`,
`apply_limit`).
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence, Tuple

from spacy.tokens import Doc

from .checks import check_max_chars, max_chars_of
from .errors import CorpusFormatError, CorpusStats, ErrorPolicy, check_exists, empty_file_error
from .io import Source, is_stream, iter_lines, source_name
from .records import SourceDocument, get_make_doc, source_to_doc


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
