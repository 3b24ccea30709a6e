"""Doc extensions and the keys under which corpora and components keep data.

Installed idempotently by `install_extensions()` (never `force=True` at import).
Values live in `doc.user_data`, so `DocBin(store_user_data=True)` keeps them.

- `doc._.doc_id` (str | None): the source document id (PMID).
- `doc.spans[MENTIONS_KEY]`: every gold mention, including nested and
  overlapping ones that cannot be `doc.ents`; `span.label_` = corpus type,
  `span.kb_id_` = normalised id(s) as in the source, `span.id_` = the source
  mention id (ChemProt "T12"; PubTator "M<n>", numbered in file order).
- `doc._.gold_relations` (list of dicts): relations as the corpus states them,
  each {"level": "mention" | "concept", "head": ..., "tail": ..., "label": ...}
  plus source fields kept for round trips. Mention level (ChemProt): head/tail
  are mention ids (`span.id_` in doc.spans[MENTIONS_KEY]). Concept level
  (BC5CDR CID): head/tail are kb ids (chemical MeSH id, disease MeSH id).
- `doc._.relations`: predictions of `biobert_relations`,
  {(head.start, tail.start): {label: probability}} over `doc.ents`. (When the
  candidates come from a span group, nested spans can share a start: the
  entry then holds the per-label maximum; `doc._.relation_pairs` is exact.)
- `doc._.relation_pairs`: predictions of `biobert_relations`, one entry per
  candidate pair: `((head.start, head.end, head.label_), (tail.start,
  tail.end, tail.label_), {label: probability})`, plain data (JSON/msgpack-able).
- `doc._.kb_relations`: predictions of `biobert_relations` aggregated by
  entity (`kb_id_`, split on "|" and "+", "-1" ignored):
  {(head kb id, tail kb id): {label: probability}}, for document-level tasks
  such as BC5CDR CID.
- `doc._.abbreviations` (getter): `biobert_abbreviations`' detections, a
  list of (short form Span, long form Span), one per occurrence of a defined
  short form; stored as token offsets in `doc.user_data[ABBREVIATIONS_KEY]`.
- `span._.long_form` (getter): the long form Span of a span whose text is a
  detected short form of its doc, else None.
"""
from typing import List, Optional, Tuple

from spacy.tokens import Doc, Span

MENTIONS_KEY = "mentions"
ABBREVIATIONS_KEY = "spacy_biobert.abbreviations"

_DOC_EXTENSIONS = {
    "doc_id": None,
    "gold_relations": None,
    "relations": None,
    "relation_pairs": None,
    "kb_relations": None,
}


def install_extensions() -> None:
    for name, default in _DOC_EXTENSIONS.items():
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=default)
    if not Doc.has_extension("abbreviations"):
        Doc.set_extension("abbreviations", getter=_get_abbreviations)
    if not Span.has_extension("long_form"):
        Span.set_extension("long_form", getter=_get_long_form)


def _get_abbreviations(doc: Doc) -> List[Tuple[Span, Span]]:
    return [
        (doc[s_start:s_end], doc[l_start:l_end])
        for s_start, s_end, l_start, l_end in doc.user_data.get(ABBREVIATIONS_KEY) or ()
    ]


def _get_long_form(span: Span) -> Optional[Span]:
    doc = span.doc
    found = doc.user_data.get(ABBREVIATIONS_KEY)
    if not found:
        return None
    text = span.text
    for s_start, s_end, l_start, l_end in found:
        if (s_start == span.start and s_end == span.end) or doc[s_start:s_end].text == text:
            return doc[l_start:l_end]
    return None
