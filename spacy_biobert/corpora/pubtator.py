"""PubTator: BC5CDR, NCBI-disease (and PubTator exports in general).

```
PMID|t|TITLE
PMID|a|ABSTRACT
PMID<TAB>START<TAB>END<TAB>MENTION<TAB>TYPE<TAB>ID[<TAB>INDIVIDUAL_MENTIONS]
PMID<TAB>LABEL<TAB>ID1<TAB>ID2                       (concept relation, e.g. CID)
```
Text = TITLE + " " + ABSTRACT. Mention ids are "M1", "M2", ... in file order
within a document. Relation lines become concept-level gold relations
{"level": "concept", "head": ID1, "tail": ID2, "label": LABEL}.
"""

import re
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, TextIO, Union

from spacy.tokens import Doc

from ..errors import Errors
from ..extensions import predicted_relations
from .checks import DEFAULT_MAX_CHARS, check_length
from .errors import CorpusFormatError, CorpusStats, empty_file_error, malformed
from .io import Source, iter_lines, write_text
from .reading import docs_reader, start_reading
from .records import (
    SourceDocument,
    SourceMention,
    check_mention,
    doc_to_source,
    title_abstract_passages,
    title_and_abstract,
)

_HEADER = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$", re.DOTALL)


class _Block:
    def __init__(self, doc_id: str, line: int, title: str):
        self.doc_id = doc_id
        self.line = line
        self.title = title
        self.abstract: Optional[str] = None
        self.text = ""
        self.mentions: List[SourceMention] = []
        self.relations: List[Dict[str, Any]] = []
        self.bad = False


def iter_pubtator_records(
    path: Source,
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
    dedupe: bool = False,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> Iterator[SourceDocument]:
    """Stream the documents of a PubTator file (a path, maybe ending in
".gz", or an open binary or text stream) as SourceDocument records.

    Bad lines raise CorpusFormatError (file, line, problem), or with
    on_error="skip" are skipped and counted in `stats` (a document whose
    title/abstract is bad is skipped whole). With dedupe=True a document whose
    PMID was seen before with identical content is dropped and counted
    (`stats.duplicates`); a repeated PMID with different content is a bad
    record (E111). A document longer than `max_chars` characters (None: no
    bound) is a bad record (E113). Lines may end in LF, CRLF or CR.
    """
    reading = start_reading(path, on_error, stats, max_chars)
    stats, policy, path = reading.stats, reading.policy, reading.name
    seen: Dict[str, tuple] = {}
    block: Optional[_Block] = None
    any_content = False

    def spoil(b: _Block, err: CorpusFormatError) -> None:
        """A bad document: raised, or counted and the rest of it skipped."""
        b.bad = True
        policy(err, document=True)

    def finish(b: Optional[_Block]) -> Iterator[SourceDocument]:
        """The document that ends, if it is good."""
        if b is None or b.bad:
            return
        if b.abstract is None:
            detail = f"document {b.doc_id} has a title line but no '|a|' abstract line"
            spoil(b, malformed(path, b.line, detail, record=b.doc_id))
            return
        doc = SourceDocument(
            doc_id=b.doc_id,
            text=b.text,
            passages=title_abstract_passages(b.title, b.abstract),
            mentions=b.mentions,
            relations=b.relations,
            line=b.line,
        )
        if dedupe:
            key = doc.content_key()
            if b.doc_id in seen:
                first_line, first_key = seen[b.doc_id]
                if first_key == key:
                    stats.duplicates += 1
                    stats.duplicate_ids.append(b.doc_id)
                    return
                problem = Errors.E111.format(doc_id=b.doc_id, first_line=first_line)
                spoil(b, CorpusFormatError(path, b.line, problem, record=b.doc_id))
                return
            seen[b.doc_id] = (b.line, key)
        yield doc

    for lineno, line in iter_lines(reading.source, name=str(path)):
        if isinstance(line, CorpusFormatError):
            any_content = True
            # What the undecodable line would have been: a bad title line
            # starts a (bad) document; it must not end up in the previous one.
            text = getattr(line, "text", "")
            bad_header = _HEADER.match(text) if "\t" not in text.split("|", 1)[0] else None
            if bad_header is not None and bad_header.group(2) == "t":
                yield from finish(block)
                block = _Block(bad_header.group(1), lineno, "")
                spoil(block, line)
            elif block is not None and not block.bad and (
                block.abstract is None or bad_header is not None
            ):
                spoil(block, line)
            else:
                policy(line)
            continue
        if not line.strip():
            yield from finish(block)
            block = None
            continue
        any_content = True
        header = _HEADER.match(line) if "\t" not in line.split("|", 1)[0] else None
        if header is not None and header.group(2) == "t":
            yield from finish(block)
            block = _Block(header.group(1), lineno, header.group(3))
            continue
        if block is None:
            block = _Block("?", lineno, "")
            detail = f"expected a 'PMID|t|TITLE' line to start a document, got {line[:80]!r}"
            spoil(block, malformed(path, lineno, detail))
            continue
        if block.bad:
            continue
        if header is not None:  # |a|
            if header.group(1) != block.doc_id or block.abstract is not None:
                detail = (
                    f"unexpected abstract line for document {header.group(1)} (current "
                    f"document {block.doc_id}, started at line {block.line})"
                )
                spoil(block, malformed(path, lineno, detail, record=block.doc_id))
                continue
            block.abstract = header.group(3)
            block.text = block.title + " " + block.abstract
            too_long = check_length(
                path, block.line, block.doc_id, len(block.text), max_chars
            )
            if too_long is not None:
                spoil(block, too_long)
            continue
        if block.abstract is None:
            detail = (
                f"document {block.doc_id} (line {block.line}) has no '|a|' abstract line "
                f"before its annotations: {line[:80]!r}"
            )
            spoil(block, malformed(path, lineno, detail, record=block.doc_id))
            continue
        err = _parse_annotation(path, lineno, line, block)
        if err is not None:
            policy(err)
    yield from finish(block)
    if not any_content:
        raise empty_file_error(path)


def _parse_annotation(
    path: Union[str, Path], lineno: int, line: str, block: _Block
) -> Optional[CorpusFormatError]:
    cols = line.split("\t")
    if cols[0] != block.doc_id:
        return malformed(
            path,
            lineno,
            f"annotation for PMID {cols[0]!r} inside document {block.doc_id} "
            f"(started at line {block.line}); is a blank line missing?",
        )
    if len(cols) in (6, 7):
        try:
            start, end = int(cols[1]), int(cols[2])
        except ValueError:
            return malformed(path, lineno, f"offsets {cols[1]!r}, {cols[2]!r} are not integers")
        raw_kb = cols[5]
        m = SourceMention(
            id=f"M{len(block.mentions) + 1}",
            start=start,
            end=end,
            text=cols[3],
            type=cols[4],
            kb_id=raw_kb.strip(),
            components=cols[6] if len(cols) == 7 else None,
            # kept verbatim when stripping changed it, or when empty (the
            # writer writes "-1" for a mention without an id)
            raw_kb_id=raw_kb if raw_kb != raw_kb.strip() or not raw_kb else None,
        )
        err = check_mention(path, lineno, block.text, m)
        if err is not None:
            return err
        block.mentions.append(m)
        return None
    if len(cols) == 4:
        problem = _relation_problem(cols)
        if problem is not None:
            return malformed(path, lineno, f"{problem}: {line[:100]!r}")
        block.relations.append(
            {"level": "concept", "head": cols[2], "tail": cols[3], "label": cols[1]}
        )
        return None
    return malformed(
        path,
        lineno,
        f"{len(cols)} tab-separated columns; expected 6 or 7 (mention) or 4 "
        f"(relation): {line[:100]!r}",
    )


def _relation_problem(cols: List[str]) -> Optional[str]:
    """Why a 4-column line is not a relation line `PMID LABEL ID1 ID2`, or None."""
    if cols[1].strip().lstrip("-").isdigit():
        return (
            "a relation line needs a LABEL (e.g. CID) in column 2, not the number "
            f"{cols[1]!r}; this looks like a mention line cut to 4 columns (a "
            "mention has 6 or 7: PMID START END MENTION TYPE ID)"
        )
    empty = [name for name, v in zip(("LABEL", "ID1", "ID2"), cols[1:]) if not v.strip()]
    if empty:
        return (
            f"a relation line 'PMID LABEL ID1 ID2' has an empty {', '.join(empty)}"
        )
    return None


read_pubtator = docs_reader(
    iter_pubtator_records,
    "pubtator",
    """Stream the Docs of a PubTator file (one per document):
    `read_pubtator(path, nlp_or_vocab=None, *, on_error="raise", limit=None,
    label_map=None, dedupe=False, stats=None)`.

    nlp_or_vocab: a Language (its tokenizer is used) or a Vocab / None (the
    biomedical tokenizer). label_map renames types in `doc.ents` (e.g. the
    NCBI classes to "Disease"); `doc.spans["mentions"]` keeps source types.
    dedupe: drop a document whose PMID was seen with identical content (a
    repeated PMID with other content is E111). Pass a CorpusStats
    to get counts (documents, mentions, relations, misaligned, duplicates,
    skipped). Warnings are logged at the end.
    """,
    options=("dedupe",),
)


def format_pubtator(doc: Doc, *, threshold: float = 0.5) -> str:
    """One document in PubTator (ending with a blank line). Gold Docs write
    back what was read; predicted Docs write doc.ents, and concept relation
    lines from `doc._.gold_relations` or, when none, the document-level
    predictions (`doc._.kb_relations`, through `predicted_relations`).
    PubTator has no line for a mention-level relation (ChemProt's): write
    BioC or JSONL for those."""
    src = doc_to_source(doc)
    doc_id = src.doc_id or "0"
    title, abstract = title_and_abstract(src)
    if "\n" in title or "\n" in abstract or "\r" in title or "\r" in abstract:
        raise ValueError(
            Errors.E110.format(
                format="PubTator",
                problem=f"document {doc_id} has a line break inside its title or abstract",
                fix="replace line breaks in the text by spaces, or write BioC or JSONL",
            )
        )
    check_pubtator_writable(src, doc_id)
    lines = [f"{doc_id}|t|{title}", f"{doc_id}|a|{abstract}"]
    for m in src.mentions:
        cols = [
            doc_id,
            str(m.start),
            str(m.end),
            m.raw_text if m.raw_text is not None else m.text,
            m.type,
            m.raw_kb_id if m.raw_kb_id is not None else (m.kb_id or "-1"),
        ]
        if m.components is not None:
            cols.append(m.components)
        lines.append("\t".join(cols))
    relations = [r for r in src.relations if r.get("level") == "concept"]
    if relations:
        for r in relations:
            lines.append(
                "\t".join([doc_id, str(r["label"]), str(r["head"]), str(r["tail"])])
            )
    elif not src.relations:
        # PubTator relation lines are document level: (label, head id, tail
        # id) as `doc._.kb_relations` pools them; a composite id is written
        # as the corpus writes each of its ids.
        seen = set()
        for r in predicted_relations(doc, threshold):
            if r["level"] != "concept":
                continue
            key = (r["label"], r["head"], r["tail"])
            if key not in seen:
                seen.add(key)
                lines.append("\t".join([doc_id, r["label"], r["head"], r["tail"]]))
    return "\n".join(lines) + "\n\n"


_ID_SEPARATORS = ("|", "\t", "\n", "\r")
_FIELD_SEPARATORS = ("\t", "\n", "\r")


def check_pubtator_writable(src: SourceDocument, doc_id: str) -> None:
    """Raise ValueError (E110) when the document id or a mention field holds
    a character PubTator uses as a separator: an id with "|", a tab or a line
    break would write fake documents or columns, and a leading U+FEFF would
    be read as a byte order mark, so such ids are refused (never rewritten):
    write BioC or JSONL, which take any id."""
    bad = [c for c in _ID_SEPARATORS if c in doc_id]
    why = ""
    if bad:
        why = f"contains {', '.join(map(repr, bad))}, which PubTator uses as separators"
    elif doc_id.startswith("\ufeff"):
        why = "starts with U+FEFF, which a reader drops as a byte order mark"
    if why:
        raise ValueError(
            Errors.E110.format(
                format="PubTator",
                problem=f"document id {doc_id!r} {why}",
                fix="give the document an id without '|', tabs and line breaks, or "
                "write BioC or JSONL, which take any id",
            )
        )
    for r in src.relations:
        if r.get("level") != "concept":
            continue
        cols = [doc_id] + [str(r.get(key, "")) for key in ("label", "head", "tail")]
        problem = _relation_problem(cols)
        if problem is None and any(c in v for v in cols[1:] for c in _FIELD_SEPARATORS):
            problem = "a relation field holds a tab or line break, which PubTator uses as separators"
        if problem is not None:  # the reader would reject the line
            raise ValueError(
                Errors.E110.format(
                    format="PubTator",
                    problem=f"relation {cols[1:]} of document {doc_id}: {problem}",
                    fix="correct the relation (a label such as CID and two ids), or write "
                    "BioC or JSONL",
                )
            )
    for m in src.mentions:
        fields = (
            ("mention text", m.raw_text if m.raw_text is not None else m.text),
            ("type", m.type),
            ("identifier", m.raw_kb_id if m.raw_kb_id is not None else m.kb_id),
            ("7th column", m.components),
        )
        for name, value in fields:
            if value and any(c in value for c in _FIELD_SEPARATORS):
                raise ValueError(
                    Errors.E110.format(
                        format="PubTator",
                        problem=(
                            f"the {name} {value!r} of mention {m.id} of document "
                            f"{doc_id} holds a tab or line break, which PubTator "
                            "uses as separators"
                        ),
                        fix="normalise whitespace in the text and annotations, or "
                        "write BioC or JSONL",
                    )
                )


def write_pubtator(
    docs: Iterable[Doc], path: Union[str, Path, TextIO], *, threshold: float = 0.5
) -> int:
    """Write Docs to a PubTator file (or an open text file); returns the
    number of documents written. Title/abstract are joined by one character
    in the Doc (ChemProt's separator is written as the " " PubTator expects);
    a predicted Doc with no passages is written with its first line as title
    (a Doc text without a line break is written as a title with an empty
    abstract). Newlines inside a passage can't be represented and are an error,
    and so is a document id with "|", a tab or a line break (E110; see
    `check_pubtator_writable`). A path is written atomically: on an error
    it is left as it was."""
    return write_text(path, lambda fp: _write_pubtator(docs, fp, threshold))


def _write_pubtator(docs: Iterable[Doc], fp: TextIO, threshold: float) -> int:
    n = 0
    for doc in docs:
        fp.write(format_pubtator(doc, threshold=threshold))
        n += 1
    return n
