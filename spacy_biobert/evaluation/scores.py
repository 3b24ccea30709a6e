"""The one P/R/F type of the evaluators, and what they share.

Every evaluator (`ner`, `relations`, `linking`) scores sets of tuples whose
last item is the label (a mention, a relation, a (document, concept id)
pair) with `score_tuples`, and reports `PRF` counts. Scores are fractions
(0.0-1.0); `percent` is for display (the CLI, bench), which decides the
rounding.
"""

from dataclasses import dataclass
from typing import (
    Any,
    Callable,
    Dict,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)

from spacy.tokens import Doc
from spacy.training import Example

Labelled = Tuple[Any, ...]  # a scored item: (..., label)


@dataclass
class PRF:
    """True positive, false positive and false negative counts, with
    precision, recall and F1 as fractions (0.0 when undefined)."""

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

    def __add__(self, other: "PRF") -> "PRF":
        return PRF(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @classmethod
    def from_sets(cls, gold: Set[Any], predicted: Set[Any]) -> "PRF":
        tp = len(gold & predicted)
        return cls(tp, len(predicted) - tp, len(gold) - tp)

    def as_dict(self) -> Dict[str, Union[int, float]]:
        """{"p", "r", "f"} as fractions and the counts {"tp", "fp", "fn"}."""
        return {
            "p": self.precision,
            "r": self.recall,
            "f": self.f1,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def score_tuples(
    gold: Set[Labelled], predicted: Set[Labelled], labels: Optional[Iterable[str]] = None
) -> Tuple[PRF, Dict[str, PRF]]:
    """Micro PRF over exact matches of `gold` and `predicted` tuples, and one
    PRF per label (the last item of each tuple), sorted by label: the labels
    seen on either side and any in `labels` (which then scores 0 when absent)."""
    by_label: Dict[str, Tuple[Set[Labelled], Set[Labelled]]] = {
        label: (set(), set()) for label in labels or ()
    }
    for side, items in enumerate((gold, predicted)):
        for item in items:
            by_label.setdefault(item[-1], (set(), set()))[side].add(item)
    per_label = {label: PRF.from_sets(*by_label[label]) for label in sorted(by_label)}
    return PRF.from_sets(gold, predicted), per_label


def percent(scores: Mapping[str, Any], digits: Optional[int] = None) -> Dict[str, Any]:
    """A copy of a `PRF.as_dict()` with "p", "r" and "f" in percent, rounded
    to `digits` (None: not rounded)."""
    out = dict(scores)
    for key in ("p", "r", "f"):
        value = 100 * scores[key]
        out[key] = round(value, digits) if digits is not None else value
    return out


def doc_key(eg: Example, i: int) -> Hashable:
    """What tells an example's document apart in scored tuples: its document
    id (the reference's, else the predicted doc's), else its position."""
    doc_id = eg.reference._.doc_id
    if doc_id is None:
        doc_id = eg.predicted._.doc_id
    return str(doc_id) if doc_id else i


def pipe_docs(
    nlp: Any,
    docs: Iterable[Doc],
    batch_size: int,
    progress: Optional[Callable[[int], Any]] = None,
) -> Iterator[Doc]:
    """`nlp.pipe` over docs, calling `progress(1)` after each document."""
    for doc in nlp.pipe(docs, batch_size=batch_size):
        if progress is not None:
            progress(1)
        yield doc
