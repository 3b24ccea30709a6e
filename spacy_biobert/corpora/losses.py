"""What each output format keeps of a document, and what a conversion to it
would lose (`convert`, `write_corpus`).

JSONL and `.spacy` keep everything a reader gives. The others cannot hold
some of it (see docs/corpora.md, "What each format keeps"):

- PubTator: mention-level relations (ChemProt's CPR); relation, mention and
  document fields it has no column for; an empty document id (written "0");
  passages other than one title and one abstract;
- ChemProt: kb ids and BC5CDR's 7th column; document-level relations
  (BC5CDR's CID); relations whose head or tail is no mention; the same
  fields, ids and passages as PubTator;
- BioC: mention and document fields it has no infon for; relation fields that
  are not text (written as text); passages that overlap or leave text outside
  them (written as one passage); whitespace other than spaces between them
  (read back as spaces).

`document_losses(doc, format)` counts them for one Doc; `LossReport` adds
them up over a file. `write_corpus` refuses (E121) a file that would lose
any, unless `allow_loss=True` (CLI `--allow-loss`), when the report holds
what was dropped.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from spacy.tokens import Doc

from ..errors import Errors, Warnings
from ..extensions import SOURCE_KEY, predicted_relations
from .errors import logger
from .records import SourceDocument, doc_to_source, title_abstract_passages, title_and_abstract

_ALL = ("pubtator", "chemprot", "bioc-xml", "bioc-json", "jsonl", "spacy")
_BIOC = ("bioc-xml", "bioc-json")


@dataclass(frozen=True)
class Kind:
    """One kind of thing a format may not hold: what messages call it, and
    the output formats that keep it."""

    name: str
    kept_by: Tuple[str, ...]
    per_document: bool = False  # counts documents, not mentions or relations


DOCUMENT_ID = Kind("empty document ids (written as '0')", _BIOC + ("jsonl", "spacy"), True)
TEXT_LAYOUT = Kind(
    "texts that are not a title, a space and an abstract (written with a space there)",
    _BIOC + ("jsonl", "spacy"),
    True,
)
PASSAGES = Kind(
    "passage layouts other than one title and one abstract", _BIOC + ("jsonl", "spacy"), True
)
BIOC_WHITESPACE = Kind(
    "texts with whitespace other than spaces between or after their passages (BioC reads "
    "spaces there)",
    ("jsonl", "spacy"),
    True,
)
BIOC_PASSAGES = Kind(
    "passage layouts BioC cannot hold (overlapping, or text outside them; written as one passage)",
    ("jsonl", "spacy"),
    True,
)
KB_IDS = Kind("kb ids", ("pubtator", "brat") + _BIOC + ("jsonl", "spacy"))
COMPONENTS = Kind(
    "individual-mention columns (BC5CDR's 7th column)", ("pubtator",) + _BIOC + ("jsonl", "spacy")
)
LOCATIONS = Kind(
    "discontinuous mentions (written as one span, first to last location)", _BIOC + ("jsonl", "spacy")
)
MENTION_FIELDS = Kind("other mention fields", ("jsonl", "spacy"))
MENTION_RELATIONS = Kind(
    "mention-level relations (such as ChemProt's CPR)", ("chemprot", "brat") + _BIOC + ("jsonl", "spacy")
)
CONCEPT_RELATIONS = Kind(
    "document-level relations (such as BC5CDR's CID)", ("pubtator",) + _BIOC + ("jsonl", "spacy")
)
UNLINKED_RELATIONS = Kind(
    "mention-level relations whose head or tail is no mention of the document", _BIOC + ("jsonl", "spacy")
)
RELATION_FIELDS = Kind("relation fields", ("jsonl", "spacy"))
DOCUMENT_FIELDS = Kind("documents' other fields (such as BioC infons)", ("jsonl", "spacy"), True)
PREDICTED_MENTION_RELATIONS = Kind(
    "predicted mention-level relations", ("chemprot", "brat") + _BIOC + ("jsonl", "spacy")
)
PREDICTED_CONCEPT_RELATIONS = Kind(
    "predicted document-level relations", ("pubtator",) + _BIOC + ("jsonl", "spacy")
)

BRAT_PASSAGES = Kind(
    "passage layouts (brat keeps one text, read back as one passage)",
    _BIOC + ("jsonl", "spacy"),
    True,
)

# The relation keys each format writes (other keys are lost).
_PUBTATOR_RELATION_KEYS = ("level", "head", "tail", "label")
_CHEMPROT_RELATION_KEYS = (
    "level", "head", "tail", "label", "relation", "eval", "eval_raw", "gold", "gold_only"
)
# BioC writes every other relation key as a text infon; these read back as they were.
_BIOC_BOOL_KEYS = ("gold", "gold_only")
# Document fields: ChemProt's title/abstract separator is a layout every title +
# abstract format writes its own way, not data.
_LAYOUT_FIELDS = ("separator",)
_BIOC_DOCUMENT_FIELDS = ("bioc_infons",) + _LAYOUT_FIELDS
_BIOC_MENTION_FIELDS = ("locations", "bioc_text")
# What the brat writer writes back: fragments, the text as written, N lines;
# relation ids and argument roles.
_BRAT_MENTION_FIELDS = ("fragments", "brat_text", "norms")
_BRAT_RELATION_KEYS = ("level", "head", "tail", "label", "id", "roles")


def bioc_text(src: SourceDocument) -> Tuple[Optional[str], str]:
    """(why BioC cannot hold the passages of `src`, or None; the text BioC
    reads back). BioC puts each passage at its offset and fills the gaps with
    spaces: passages must not overlap, and outside them there must be nothing
    but whitespace (a line break between lines is read back as a space, and
    whitespace after the last passage is dropped: offsets stay right)."""
    parts: List[str] = []
    end = 0
    for _type, offset, ptext in sorted(src.passages, key=lambda p: p[1]):
        if offset < end:
            why = f"its passage at offset {offset} overlaps the one before (which ends at {end})"
            return why, src.text
        if src.text[end:offset].strip():
            break
        parts.append(" " * (offset - end))
        parts.append(ptext)
        end = offset + len(ptext)
    else:
        if not src.text[end:].strip():
            return None, "".join(parts)
    return "its text has characters outside its passages (only whitespace can be there)", src.text


def bioc_layout_problem(src: SourceDocument) -> Optional[str]:
    """Why BioC cannot hold the passages of `src` (`bioc_text`), or None."""
    return bioc_text(src)[0]


def title_abstract_layout(src: SourceDocument) -> Tuple[bool, bool]:
    """(text kept, passages kept) when `src` is written as a title and an
    abstract (PubTator, ChemProt) and read back."""
    title, abstract = title_and_abstract(src)
    if title + " " + abstract != src.text:
        return False, False
    return True, [tuple(p) for p in src.passages] == title_abstract_passages(title, abstract)


def _relation_fields_bioc_changes(rel: Dict[str, Any]) -> bool:
    """Whether BioC reads a relation's other fields back as something else
    (it writes each as a text infon)."""
    for key, value in rel.items():
        if key in _PUBTATOR_RELATION_KEYS:
            continue
        if key == "type":  # BioC's label infon
            return True
        if key in _BIOC_BOOL_KEYS and isinstance(value, bool):
            continue
        if key == "score" and isinstance(value, (int, float)) and not isinstance(value, bool):
            continue
        if not isinstance(value, str):
            return True
    return False


def document_losses(doc: Doc, fmt: str, *, threshold: float = 0.5) -> Counter:
    """What writing `doc` in the output format `fmt` loses: a Counter from
    `Kind` to the number of items (documents, mentions, relations)."""
    found: Counter = Counter()
    if fmt in ("jsonl", "spacy"):
        return found
    src = doc_to_source(doc)
    extra = set(src.extra)
    if fmt in _BIOC:
        problem, text = bioc_text(src)
        if problem is not None:
            found[BIOC_PASSAGES] += 1
        elif text != src.text:
            found[BIOC_WHITESPACE] += 1
        for m in src.mentions:
            if set(m.extra) - set(_BIOC_MENTION_FIELDS):
                found[MENTION_FIELDS] += 1
        found[RELATION_FIELDS] += sum(_relation_fields_bioc_changes(r) for r in src.relations)
        if extra - set(_BIOC_DOCUMENT_FIELDS):
            found[DOCUMENT_FIELDS] += 1
        return +found
    if fmt == "brat":
        return +_brat_losses(doc, src, extra, threshold)
    # PubTator and ChemProt: a title and an abstract.
    if not src.doc_id:
        found[DOCUMENT_ID] += 1
    text_kept, passages_kept = title_abstract_layout(src)
    if not text_kept:
        found[TEXT_LAYOUT] += 1
    elif not passages_kept:
        found[PASSAGES] += 1
    if extra - set(_LAYOUT_FIELDS):
        found[DOCUMENT_FIELDS] += 1
    for m in src.mentions:
        if "locations" in m.extra:
            found[LOCATIONS] += 1
        if set(m.extra) - set(_BIOC_MENTION_FIELDS):
            found[MENTION_FIELDS] += 1
        if fmt == "chemprot":
            if mention_kb_id(m.kb_id, m.raw_kb_id):
                found[KB_IDS] += 1
            if m.components:
                found[COMPONENTS] += 1
    mention_ids = {m.id for m in src.mentions}
    for r in src.relations:
        concept = r.get("level") == "concept"
        if fmt == "pubtator":
            if not concept:
                found[MENTION_RELATIONS] += 1
            elif set(r) - set(_PUBTATOR_RELATION_KEYS):
                found[RELATION_FIELDS] += 1
        elif concept:
            found[CONCEPT_RELATIONS] += 1
        elif r.get("head") not in mention_ids or r.get("tail") not in mention_ids:
            found[UNLINKED_RELATIONS] += 1
        elif set(r) - set(_CHEMPROT_RELATION_KEYS):
            found[RELATION_FIELDS] += 1
    if not src.relations:  # the writers write predictions only for Docs without gold relations
        dropped = "mention" if fmt == "pubtator" else "concept"
        kind = PREDICTED_MENTION_RELATIONS if dropped == "mention" else PREDICTED_CONCEPT_RELATIONS
        found[kind] += sum(1 for p in predicted_relations(doc, threshold) if p["level"] == dropped)
    return +found


def _brat_losses(doc: Doc, src: SourceDocument, extra: set, threshold: float) -> Counter:
    """brat keeps the text, mentions (fragments too), kb ids and mention-level
    relations; not passages, document-level relations or other fields."""
    from .brat import BRAT_KEY

    found: Counter = Counter()
    if not src.doc_id:
        found[DOCUMENT_ID] += 1
    if [tuple(p) for p in src.passages] not in ([], [("text", 0, src.text)]):
        found[BRAT_PASSAGES] += 1
    if extra - {BRAT_KEY}:
        found[DOCUMENT_FIELDS] += 1
    for m in src.mentions:
        if "locations" in m.extra:
            found[LOCATIONS] += 1
        if set(m.extra) - set(_BRAT_MENTION_FIELDS) - {"locations"}:
            found[MENTION_FIELDS] += 1
    mention_ids = {m.id for m in src.mentions}
    for r in src.relations:
        if r.get("level") == "concept":
            found[CONCEPT_RELATIONS] += 1
        elif r.get("head") not in mention_ids or r.get("tail") not in mention_ids:
            found[UNLINKED_RELATIONS] += 1
        elif set(r) - set(_BRAT_RELATION_KEYS):
            found[RELATION_FIELDS] += 1
    if not src.relations:
        found[PREDICTED_CONCEPT_RELATIONS] += sum(
            1 for p in predicted_relations(doc, threshold) if p["level"] == "concept"
        )
    return found


def mention_kb_id(kb_id: str, raw_kb_id: Optional[str]) -> bool:
    """Whether a mention has an id (not "", not "-1", the corpora's "none")."""
    return any(v and v.strip() not in ("", "-1") for v in (kb_id, raw_kb_id))


def one_passage(doc: Doc) -> Doc:
    """`doc` with its passages replaced by one passage holding all its text
    (in place): what BioC is given for a document whose passages it cannot
    hold (`bioc_layout_problem`), when losing the layout is allowed."""
    source = dict(doc.user_data.get(SOURCE_KEY) or {})
    source["passages"] = [["text", 0, len(doc.text)]]
    doc.user_data[SOURCE_KEY] = source
    return doc


@dataclass
class LossReport:
    """What a conversion to `format` loses, added up over its documents:
    `items[kind]` things in `documents[kind]` documents."""

    format: str
    source: str = ""
    items: Counter = field(default_factory=Counter)
    documents: Counter = field(default_factory=Counter)

    def add(self, found: Counter) -> None:
        for kind, n in found.items():
            self.items[kind] += n
            self.documents[kind] += 1

    def __bool__(self) -> bool:
        return bool(self.items)

    def rows(self) -> List[Tuple[str, int, int]]:
        """(what, items, documents), most items first."""
        return [(k.name, n, self.documents[k]) for k, n in self.items.most_common()]

    def summary(self) -> str:
        return "; ".join(
            f"{n} {kind.name}" + ("" if kind.per_document else f" in {self.documents[kind]} document(s)")
            for kind, n in self.items.most_common()
        )

    def keeps(self) -> str:
        """The output formats that keep everything this conversion loses."""
        kept = [f for f in _ALL if all(f in k.kept_by for k in self.items)]
        return ", ".join(kept)

    def error(self) -> ValueError:
        return ValueError(
            Errors.E121.format(
                source=self.source or "the input", format=self.format, losses=self.summary(),
                keeps=self.keeps(),
            )
        )


def check_losses(
    docs: Iterable[Doc], fmt: str, report: LossReport, *, allow_loss: bool, threshold: float = 0.5
) -> Iterator[Doc]:
    """`docs`, each counted in `report` for what `fmt` cannot hold. Without
    `allow_loss`, the first Doc that would lose something ends the stream
    with E121, once the rest is counted too (the message gives the counts of
    the whole file; the writers write atomically, so the output is left as it
    was). With it, a document whose passages BioC cannot hold is given to the
    writer as one passage, and what was dropped is logged (W108)."""
    docs = iter(docs)
    for doc in docs:
        found = document_losses(doc, fmt, threshold=threshold)
        report.add(found)
        if found and not allow_loss:
            # Refused: the rest is only counted, for the message.
            for rest in docs:
                report.add(document_losses(rest, fmt, threshold=threshold))
            raise report.error()
        if BIOC_PASSAGES in found:
            doc = one_passage(doc)
        yield doc
    if report:
        logger.warning(
            Warnings.W108.format(target=report.source or "output", format=fmt, losses=report.summary())
        )


__all__ = [
    "Kind",
    "LossReport",
    "bioc_layout_problem",
    "bioc_text",
    "check_losses",
    "document_losses",
    "one_passage",
]
