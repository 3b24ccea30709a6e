"""What a relation component learns from a reference Doc: its gold relations
as sets (`gold_sets`), the per-label targets of candidate mention pairs
(`mention_targets`) and the candidate pairs grouped by concept
(`concept_groups`). Shared by `biobert_relations`' training step and the
training-data checks (`training.data_checks`), which count what it would learn.
"""

import logging
from typing import Any, Dict, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span

from ..extensions import MENTIONS_KEY, mention_ids

logger = logging.getLogger("spacy_biobert.relations")


def reference_spans(doc: Doc) -> List[Span]:
    spans = list(doc.spans[MENTIONS_KEY]) if MENTIONS_KEY in doc.spans else []
    return spans + list(doc.ents)


def gold_sets(reference: Doc, gold: List[Dict[str, Any]]):
    """(mention relations {(h_start_char, h_end_char, t_start_char, t_end_char): {labels}},
    concept relations {(head kb, tail kb, label)}, {(start_char, end_char): [kb ids]})."""
    spans = reference_spans(reference)
    by_id: Dict[str, Span] = {}
    ref_kb: Dict[Tuple[int, int], List[str]] = {}
    for span in spans:
        if span.id_:
            by_id.setdefault(span.id_, span)
        ids = mention_ids(span)
        if ids:
            ref_kb.setdefault((span.start_char, span.end_char), ids)
    mentions: Dict[Tuple[int, int, int, int], set] = {}
    concepts = set()
    for rel in gold:
        level = rel.get("level", "mention")
        if level == "concept":
            concepts.add((str(rel["head"]), str(rel["tail"]), rel["label"]))
            continue
        head, tail = by_id.get(str(rel["head"])), by_id.get(str(rel["tail"]))
        if head is None or tail is None:
            # e.g. an argument the reader could not place on tokens: it can
            # never be a candidate, so it cannot be learned either.
            logger.debug("gold relation %r has an argument without a span", rel)
            continue
        key = (head.start_char, head.end_char, tail.start_char, tail.end_char)
        mentions.setdefault(key, set()).add(rel["label"])
    return mentions, concepts, ref_kb


def mention_targets(pairs, gold_mentions, labels: Sequence[str]) -> numpy.ndarray:
    targets = numpy.zeros((len(pairs), len(labels)), dtype="float32")
    if not gold_mentions:
        return targets
    col = {label: j for j, label in enumerate(labels)}
    for i, (head, tail) in enumerate(pairs):
        found = gold_mentions.get(
            (head.start_char, head.end_char, tail.start_char, tail.end_char)
        )
        if found:
            for label in found:
                if label in col:
                    targets[i, col[label]] = 1.0
    return targets


def concept_groups(pairs, ref_kb) -> Dict[Tuple[str, str], List[int]]:
    """Mention pairs by (head kb id, tail kb id). A span's ids are its own
    kb_id_, or, when it has none (entities from `ner`), those of the gold
    mention with the same characters."""
    groups: Dict[Tuple[str, str], List[int]] = {}
    for i, (head, tail) in enumerate(pairs):
        h_ids = mention_ids(head) or ref_kb.get((head.start_char, head.end_char), [])
        t_ids = mention_ids(tail) or ref_kb.get((tail.start_char, tail.end_char), [])
        for a in h_ids:
            for b in t_ids:
                groups.setdefault((a, b), []).append(i)
    return groups
