"""Strict entity-level NER scoring on the corpus's original character offsets.

A prediction is a true positive only if (document, start, end, type) equals a
gold mention exactly as the corpus wrote it. Gold mentions that do not fall
on token boundaries stay at their original offsets here (spaCy's `ents_f`
scores against gold widened to token boundaries, which reads higher).
Nested/overlapping gold mentions all count, as in the corpus.
"""
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, Hashable, Iterable, Iterator, List, Optional, Set, Tuple

from spacy.language import Language

Mention = Tuple[Hashable, int, int, str]  # (document key, start char, end char, label)


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> Dict[str, float]:
        return {
            "p": round(100 * self.precision, 2),
            "r": round(100 * self.recall, 2),
            "f": round(100 * self.f1, 2),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass
class NERScores:
    micro: PRF
    per_type: Dict[str, PRF]
    documents: int = 0
    words: int = 0
    seconds: float = 0.0
    extra: Dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, object]:
        return {
            "ents_strict": self.micro.as_dict(),
            "ents_per_type_strict": {k: v.as_dict() for k, v in sorted(self.per_type.items())},
            "documents": self.documents,
            "words": self.words,
            "seconds": round(self.seconds, 2),
            "words_per_second": round(self.words / self.seconds, 1) if self.seconds else None,
            **self.extra,
        }


def score_mentions(gold: Iterable[Mention], predicted: Iterable[Mention]) -> NERScores:
    """Micro and per-type P/R/F1 over exact (doc, start, end, label) matches.
    Duplicates (the same mention twice) count once."""
    gold_set: Set[Mention] = set(gold)
    pred_set: Set[Mention] = set(predicted)
    micro = PRF()
    per_type: Dict[str, PRF] = {}
    for m in pred_set:
        prf = per_type.setdefault(m[3], PRF())
        if m in gold_set:
            prf.tp += 1
            micro.tp += 1
        else:
            prf.fp += 1
            micro.fp += 1
    for m in gold_set - pred_set:
        per_type.setdefault(m[3], PRF()).fn += 1
        micro.fn += 1
    return NERScores(micro=micro, per_type=per_type)


GoldDocument = Tuple[Hashable, str, List[Tuple[int, int, str]]]  # key, text, mentions


def evaluate_ner(
    nlp: Language,
    gold_docs: Iterable[GoldDocument],
    *,
    batch_size: int = 32,
    label_map: Optional[Dict[str, str]] = None,
    labels: Optional[Iterable[str]] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> NERScores:
    """Run `nlp` over the texts and score its `doc.ents` strictly.

    gold_docs: (document key, text, [(start, end, label), ...]) with the
        corpus's own offsets and types; `label_map` maps gold types first
        (e.g. NCBI's four classes to "Disease").
    labels: score only these gold/predicted labels (None = all).
    progress: called with the number of documents done in each batch.
    """
    keep = set(labels) if labels is not None else None
    gold: List[Mention] = []
    texts: List[Tuple[str, Hashable]] = []
    for key, text, mentions in gold_docs:
        texts.append((text, key))
        for start, end, label in mentions:
            label = label_map.get(label, label) if label_map else label
            if keep is None or label in keep:
                gold.append((key, start, end, label))
    gold_by_key: Dict[Hashable, List[Mention]] = {}
    for m in gold:
        gold_by_key.setdefault(m[0], []).append(m)
    predicted: List[Mention] = []
    widened: List[Mention] = []
    misaligned = 0
    words = 0
    start_time = time.perf_counter()
    for doc, key in _pipe(nlp, texts, batch_size, progress):
        words += sum(1 for t in doc if not t.is_space)
        for ent in doc.ents:
            if keep is None or ent.label_ in keep:
                predicted.append((key, ent.start_char, ent.end_char, ent.label_))
        # Gold widened to this tokenization: what spaCy's own ents_f compares to.
        for _, start, end, label in gold_by_key.get(key, []):
            span = doc.char_span(start, end, alignment_mode="expand")
            if span is None or (span.start_char, span.end_char) != (start, end):
                misaligned += 1
            if span is not None:
                widened.append((key, span.start_char, span.end_char, label))
    seconds = time.perf_counter() - start_time
    scores = score_mentions(gold, predicted)
    scores.documents = len(texts)
    scores.words = words
    scores.seconds = seconds
    widened_scores = score_mentions(widened, predicted)
    scores.extra["ents_token_widened"] = widened_scores.micro.as_dict()
    scores.extra["gold_mentions_not_on_token_boundaries"] = misaligned
    return scores


def _pipe(nlp, texts, batch_size, progress) -> Iterator:
    done = 0
    for doc, key in nlp.pipe(texts, as_tuples=True, batch_size=batch_size):
        done += 1
        if progress is not None and done % batch_size == 0:
            progress(batch_size)
        yield doc, key
    if progress is not None and done % batch_size:
        progress(done % batch_size)
