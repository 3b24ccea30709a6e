"""Strict entity-level NER scoring on the corpus's original character offsets.

A prediction is a true positive only if (document, start, end, type) equals a
gold mention exactly as the corpus wrote it. Gold mentions that do not fall
on token boundaries stay at their original offsets here (the readers widen
them on the reference Doc and keep the original offsets, which
`doc_to_source` gives back; spaCy's `ents_f` scores against the widened gold,
which reads higher). Nested/overlapping gold mentions all count, as in the
corpus.

Scoring keeps the corpus's own label set: a predicted entity whose label the
gold does not annotate (a Gene on BC5CDR) is neither right nor wrong; it is
counted apart, per label, in `NERScores.unscored`.
"""

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Hashable, Iterable, List, Optional, Set, Tuple

from spacy.language import Language
from spacy.training import Example

from ..corpora.records import doc_to_source
from ..extensions import DROPPED_KEY, PREDICTIONS_KEY, install_extensions
from .scores import PRF, doc_key, pipe_docs, score_tuples

Mention = Tuple[Hashable, int, int, str]  # (document key, start char, end char, label)


@dataclass
class NERScores:
    """Micro and per-type PRF; `labels`: the labels scored; `unscored`:
    {label: number of predictions} of the labels outside them."""

    micro: PRF
    per_type: Dict[str, PRF]
    labels: List[str] = field(default_factory=list)
    unscored: Dict[str, int] = field(default_factory=dict)
    documents: int = 0
    words: int = 0
    seconds: float = 0.0
    extra: Dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, object]:
        """JSON-able scores (P/R/F as fractions)."""
        return {
            "ents_strict": self.micro.as_dict(),
            "ents_per_type_strict": {k: v.as_dict() for k, v in sorted(self.per_type.items())},
            "documents": self.documents,
            "words": self.words,
            "seconds": round(self.seconds, 2),
            "words_per_second": round(self.words / self.seconds, 1) if self.seconds else None,
            **self.extra,
            "labels_scored": list(self.labels),
            "ents_unscored": dict(self.unscored),
        }


def score_mentions(
    gold: Iterable[Mention],
    predicted: Iterable[Mention],
    labels: Optional[Iterable[str]] = None,
) -> NERScores:
    """Micro and per-type P/R/F1 over exact (doc, start, end, label) matches.
    Duplicates (the same mention twice) count once.

    labels: the labels scored (None: those of the gold mentions). Gold
    mentions of other labels are dropped; predictions of other labels are
    counted in `unscored` and are not false positives."""
    gold_set: Set[Mention] = set(gold)
    keep = set(labels) if labels is not None else {m[3] for m in gold_set}
    gold_set = {m for m in gold_set if m[3] in keep}
    pred_set: Set[Mention] = set()
    unscored: Dict[str, int] = {}
    for m in set(predicted):
        if m[3] in keep:
            pred_set.add(m)
        else:
            unscored[m[3]] = unscored.get(m[3], 0) + 1
    micro, per_type = score_tuples(gold_set, pred_set)
    return NERScores(
        micro=micro,
        per_type=per_type,
        labels=sorted(keep),
        unscored=dict(sorted(unscored.items())),
    )


def gold_mentions(
    examples: Iterable[Example], label_map: Optional[Dict[str, str]] = None
) -> List[Mention]:
    """The mentions of the examples' references at the corpus's own offsets
    and types (`label_map` applied), keyed by `doc_key`."""
    install_extensions()
    out: List[Mention] = []
    for i, eg in enumerate(examples):
        key = doc_key(eg, i)
        for m in doc_to_source(eg.reference).mentions:
            label = label_map.get(m.type, m.type) if label_map else m.type
            out.append((key, m.start, m.end, label))
    return out


def evaluate_ner(
    nlp: Language,
    examples: Iterable[Example],
    *,
    batch_size: int = 32,
    label_map: Optional[Dict[str, str]] = None,
    labels: Optional[Iterable[str]] = None,
    progress: Optional[Callable[[int], Any]] = None,
) -> NERScores:
    """Run `nlp` over the examples' predicted docs (copies) and score its
    `doc.ents` strictly against the references' mentions (`gold_mentions`).

    examples: from a registered corpus reader (see
        `spacy_biobert.corpora.readers.gold_corpus`), any format.
    label_map: maps gold types first (e.g. NCBI's four classes to "Disease").
    labels: the labels scored (None: the labels present in the gold, after
        `label_map`); predictions of other labels are reported, not scored.
    progress: called with 1 after each document.
    """
    examples = list(examples)
    gold = gold_mentions(examples, label_map)
    keep = set(labels) if labels is not None else {m[3] for m in gold}
    gold = [m for m in gold if m[3] in keep]
    gold_by_key: Dict[Hashable, List[Mention]] = {}
    for m in gold:
        gold_by_key.setdefault(m[0], []).append(m)
    predicted: List[Mention] = []
    widened: List[Mention] = []
    misaligned = 0
    words = 0
    head_predictions = dropped = 0
    start_time = time.perf_counter()
    docs = pipe_docs(nlp, (eg.predicted.copy() for eg in examples), batch_size, progress)
    for i, (eg, doc) in enumerate(zip(examples, docs)):
        key = doc_key(eg, i)
        words += sum(1 for t in doc if not t.is_space)
        predicted.extend((key, e.start_char, e.end_char, e.label_) for e in doc.ents)
        if DROPPED_KEY in doc.spans:  # biobert_entity_merger ran
            head_predictions += len(doc.spans[PREDICTIONS_KEY])
            dropped += len(doc.spans[DROPPED_KEY])
        # Gold widened to this tokenization: what spaCy's own ents_f compares to.
        for _, start, end, label in gold_by_key.get(key, []):
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is None or (span.start_char, span.end_char) != (start, end):
                misaligned += 1
            if span is not None:
                widened.append((key, span.start_char, span.end_char, label))
    seconds = time.perf_counter() - start_time
    scores = score_mentions(gold, predicted, keep)
    scores.documents = len(examples)
    scores.words = words
    scores.seconds = seconds
    widened_scores = score_mentions(widened, predicted, keep)
    scores.extra["ents_token_widened"] = widened_scores.micro.as_dict()
    scores.extra["gold_mentions_not_on_token_boundaries"] = misaligned
    if head_predictions:
        # How often the merger's overlap rule fired (configs/biomed.cfg).
        scores.extra["ents_overlaps_dropped"] = dropped
        scores.extra["ents_head_predictions"] = head_predictions
    return scores
