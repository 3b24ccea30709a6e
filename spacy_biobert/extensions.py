"""The Doc data contract: Doc extensions, the keys under which corpora and
components keep data, mention ids, and the one reader of predicted relations.

Every package (corpora, models, pipeline, evaluation, linking, annotate, the
service and the renderer) takes the contract from here, never from a reader or
writer module.

Installed idempotently by `install_extensions()` (never `force=True` at import).
Values live in `doc.user_data`, so `DocBin(store_user_data=True)` keeps them.

- `doc._.doc_id` (str | None): the source document id (PMID).
- `doc.user_data[SOURCE_KEY]`: what a reader keeps for byte-exact round trips
  that is not a span attribute (passages, BC5CDR's composite column, original
  offsets of expanded mentions, raw fields; see `corpora.records`).
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
  candidate pair: `((head.start, head.end, head.label_, head.kb_id_),
  (tail.start, tail.end, tail.label_, tail.kb_id_), {label: probability})`,
  plain data (JSON/msgpack-able).
- `doc._.kb_relations`: predictions of `biobert_relations` aggregated by
  entity (`kb_id_`, split on "|" and "+", "-1" ignored):
  {(head kb id, tail kb id): {label: probability}}, for document-level tasks
  such as BC5CDR CID: the pooled probability the component is trained on.
- `doc._.relation_levels`: {label: "mention" | "concept"}, the level at which
  `biobert_relations` learned each label.

`predicted_relations(doc, threshold)` is the one reader of these predictions:
every writer (PubTator, BioC, JSONL, ChemProt, the service), the renderer and
the relation scorer take relations from it, so what is written is what is
scored.
`mention_ids(span_or_kb_id)` splits a mention's `kb_id_` into its ids, the
one rule every user of kb ids (pairs, pooling, scorers, linking) follows.
- `doc._.abbreviations` (getter): `biobert_abbreviations`' detections, a
  list of (short form Span, long form Span), one per occurrence of a defined
  short form; stored as token offsets in `doc.user_data[ABBREVIATIONS_KEY]`.
- `span._.long_form` (getter): the long form Span of a span whose text is a
  detected short form of its doc, else None.
"""
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from spacy.tokens import Doc, Span

MENTIONS_KEY = "mentions"
SOURCE_KEY = "spacy_biobert.source"
"""`doc.user_data` key of the round-trip information (a JSON-able dict)."""
ABBREVIATIONS_KEY = "spacy_biobert.abbreviations"
# Multi-corpus NER (corpora/multi.py sets them on reference Docs): the corpus
# name, the entity types its corpus annotates, and every gold mention under
# its mapped type, overlaps included.
CORPUS_KEY = "spacy_biobert.corpus"
ANNOTATED_TYPES_KEY = "spacy_biobert.annotated_types"
TYPED_GOLD_KEY = "biobert_typed_gold"
# The span groups of predicted Docs: every `biobert_ner` head's predictions
# (overlaps kept), and those `biobert_entity_merger` left out of doc.ents.
PREDICTIONS_KEY = "biobert_ner"
DROPPED_KEY = "biobert_ner_dropped"

_DOC_EXTENSIONS = {
    "doc_id": None,
    "gold_relations": None,
    "relations": None,
    "relation_pairs": None,
    "kb_relations": None,
    "relation_levels": None,
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


def concept_labels(doc: Doc) -> List[str]:
    """The labels the relation component of `doc` predicts at document
    (concept) level: those `doc._.relation_levels` marks "concept"."""
    install_extensions()
    levels = doc._.relation_levels or {}
    return sorted(label for label, level in levels.items() if level == "concept")


def document_relations(
    doc: Doc, threshold: float = 0.5, labels: Optional[Iterable[str]] = None
) -> List[Dict[str, Any]]:
    """Document-level relations: one entry per (head kb id, tail kb id, label)
    of `doc._.kb_relations` with probability >= threshold, in the component's
    order: {"level": "concept", "head": kb id, "tail": kb id, "label", "score"}.
    labels: the labels wanted; None = the doc's concept-level labels."""
    install_extensions()
    keep = set(labels) if labels is not None else set(concept_labels(doc))
    out = []
    for (head, tail), scores in (doc._.kb_relations or {}).items():
        for label, score in scores.items():
            if label in keep and score >= threshold:
                out.append(
                    {"level": "concept", "head": head, "tail": tail, "label": label,
                     "score": float(score)}
                )
    return out


def mention_relations(
    doc: Doc, threshold: float = 0.5, labels: Optional[Iterable[str]] = None
) -> List[Dict[str, Any]]:
    """Mention-level relations: one entry per candidate pair and label with
    probability >= threshold, from `doc._.relation_pairs` (or, when a component
    wrote only the public `doc._.relations` over `doc.ents`, from that):
    {"level": "mention", "head": [start_char, end_char], "tail": [...],
    "head_kb_id", "tail_kb_id" ("-1" when unlinked), "label", "score"}.
    labels: the labels wanted; None = every label not at concept level."""
    install_extensions()
    skip = set(concept_labels(doc)) if labels is None else set()
    keep = set(labels) if labels is not None else None

    def wanted(label: str, score: float) -> bool:
        if score < threshold or label in skip:
            return False
        return keep is None or label in keep

    out = []
    pairs = doc._.relation_pairs
    if pairs:
        for head, tail, scores in pairs:
            h, t = doc[head[0] : head[1]], doc[tail[0] : tail[1]]
            h_kb = head[3] if len(head) > 3 else ""
            t_kb = tail[3] if len(tail) > 3 else ""
            for label, score in scores.items():
                if wanted(label, score):
                    out.append(_mention_entry(h, t, h_kb, t_kb, label, score))
        return out
    by_start = {e.start: e for e in doc.ents}
    for (h_start, t_start), scores in (doc._.relations or {}).items():
        h, t = by_start.get(h_start), by_start.get(t_start)
        if h is None or t is None:
            continue
        for label, score in scores.items():
            if wanted(label, score):
                out.append(_mention_entry(h, t, h.kb_id_, t.kb_id_, label, score))
    return out


def predicted_relations(doc: Doc, threshold: float = 0.5) -> List[Dict[str, Any]]:
    """Every confident predicted relation of `doc`: the document-level ones
    (`document_relations`) for the labels learned at concept level, then the
    mention-level ones (`mention_relations`) for the others."""
    return document_relations(doc, threshold) + mention_relations(doc, threshold)


def _mention_entry(
    head: Span, tail: Span, head_kb: str, tail_kb: str, label: str, score: float
) -> Dict[str, Any]:
    return {
        "level": "mention",
        "head": [head.start_char, head.end_char],
        "tail": [tail.start_char, tail.end_char],
        "head_kb_id": head_kb or "-1",
        "tail_kb_id": tail_kb or "-1",
        "label": label,
        "score": float(score),
    }


_KB_SPLIT = re.compile(r"[|+]")


def mention_ids(span_or_kb_id: Union[Span, str]) -> List[str]:
    """The individual ids of a mention: its `kb_id_` split on "|" and "+",
    stripped, with "-1" and empty parts dropped.

    `mention_ids("D014786|D006311") == ["D014786", "D006311"]`;
    `mention_ids("-1") == []`.
    """
    value = span_or_kb_id if isinstance(span_or_kb_id, str) else span_or_kb_id.kb_id_
    return [p.strip() for p in _KB_SPLIT.split(value) if p.strip() not in ("", "-1")]
