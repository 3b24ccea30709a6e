"""Candidate entity pairs for relation extraction (`spacy-biobert.EntityPairs.v1`).

A candidate generator is a callable `Doc -> List[Tuple[Span, Span]]` of
ordered (head, tail) pairs, given to `biobert_relations` as its `candidates`
setting (`[components.biobert_relations.candidates]`, the way spaCy's
`spancat` takes its suggester). The component calls it once per doc of a
batch and scores exactly these pairs, so the same generator decides what can
ever be predicted: restrict it to the argument types of the task (Chemical ->
Disease, CHEMICAL -> GENE-*) and, optionally, to a distance.
`max_distance = None` pairs the whole document, which document-level tasks
(BC5CDR CID, where half the relations cross sentences) need.

For document-level labels, `closest_per_concept_pair = k` keeps, of the
mention pairs of each (head concept, tail concept), the k closest (same
sentence first, then fewest tokens between): the usual recipe for encoding a
concept pair once, with a per-pair model (`MarkedRelationModel.v1`), instead
of once per mention pair. A mention's concepts are its kb ids; a mention
without one is a concept of its own.

A generator that pairs the spans of a span group rather than `doc.ents` says
so with a `spans_key` attribute (`SpanGroupCandidates`): with `gold_entities`,
the component copies that group from the reference docs.
"""

from typing import (
    Callable,
    Iterable,
    List,
    Optional,
    Protocol,
    Sequence,
    Set,
    Tuple,
    runtime_checkable,
)

import numpy
from spacy.tokens import Doc, Span
from spacy.util import registry

from ..errors import Errors
from ..extensions import mention_ids

Candidates = List[Tuple[Span, Span]]
GetCandidates = Callable[[Doc], Candidates]

DISTANCE_UNITS = ("tokens", "sentences")

# The ids of a span's kb_id_ ("|" / "+" split, "-1" dropped): one function,
# corpora's `mention_ids`; `kb_ids` is its older name here.
kb_ids = mention_ids


@runtime_checkable
class SpanGroupCandidates(Protocol):
    """A candidate generator that declares where its spans come from:
    `doc.spans[spans_key]`, or `doc.ents` when `spans_key` is None.
    (`EntityPairs` is one.) A generator without the attribute pairs `doc.ents`."""

    spans_key: Optional[str]

    def __call__(self, doc: Doc) -> Candidates: ...


def candidate_spans_key(get_candidates: GetCandidates) -> Optional[str]:
    """The span group `get_candidates` pairs (None: `doc.ents`)."""
    if isinstance(get_candidates, SpanGroupCandidates):
        return get_candidates.spans_key
    return None


def sentence_ids(doc: Doc) -> Optional[numpy.ndarray]:
    """Sentence index of every token, or None when the doc has no sentence
    boundaries. Token 0 always starts sentence 0."""
    if len(doc) == 0:
        return numpy.zeros((0,), dtype="int32")
    if not doc.has_annotation("SENT_START"):
        return None
    starts = doc.to_array("SENT_START").astype("int64") == 1
    starts[0] = True
    return (numpy.cumsum(starts) - 1).astype("int32")


class EntityPairs:
    """Ordered (head, tail) pairs of `doc.ents` (or of the span group
    `spans_key`), filtered by label pairs and distance, optionally only the
    closest of each concept pair. A span is never paired with itself or with
    another span covering exactly the same characters."""

    def __init__(
        self,
        allowed_pairs: Optional[Iterable[Sequence[str]]] = None,
        max_distance: Optional[int] = None,
        distance_unit: str = "tokens",
        spans_key: Optional[str] = None,
        closest_per_concept_pair: Optional[int] = None,
    ):
        if distance_unit not in DISTANCE_UNITS:
            raise ValueError(Errors.E201.format(value=distance_unit))
        if max_distance is not None and (
            isinstance(max_distance, bool)
            or not isinstance(max_distance, int)
            or max_distance < 0
        ):
            raise ValueError(Errors.E202.format(value=max_distance))
        if closest_per_concept_pair is not None and (
            isinstance(closest_per_concept_pair, bool)
            or not isinstance(closest_per_concept_pair, int)
            or closest_per_concept_pair < 1
        ):
            raise ValueError(Errors.E242.format(value=closest_per_concept_pair))
        self.allowed_pairs: Optional[Set[Tuple[str, str]]] = None
        if allowed_pairs is not None:
            pairs = set()
            for pair in allowed_pairs:
                if (
                    isinstance(pair, str)
                    or len(pair) != 2
                    or not all(isinstance(x, str) for x in pair)
                ):
                    raise ValueError(Errors.E203.format(value=allowed_pairs))
                pairs.add((pair[0], pair[1]))
            self.allowed_pairs = pairs
        self.max_distance = max_distance
        self.distance_unit = distance_unit
        self.spans_key = spans_key
        self.closest_per_concept_pair = closest_per_concept_pair

    def _settings(self):
        allowed = None if self.allowed_pairs is None else frozenset(self.allowed_pairs)
        return (allowed, self.max_distance, self.distance_unit, self.spans_key,
                self.closest_per_concept_pair)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EntityPairs):
            return NotImplemented
        return self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash(self._settings())

    def __repr__(self) -> str:
        allowed = None if self.allowed_pairs is None else sorted(self.allowed_pairs)
        return (
            f"EntityPairs(allowed_pairs={allowed!r}, max_distance={self.max_distance!r}, "
            f"distance_unit={self.distance_unit!r}, spans_key={self.spans_key!r}, "
            f"closest_per_concept_pair={self.closest_per_concept_pair!r})"
        )

    def get_spans(self, doc: Doc) -> List[Span]:
        """The spans candidates are built from, deduplicated (same start, end
        and label) and sorted by (start, end, label)."""
        if self.spans_key is None:
            spans: Iterable[Span] = doc.ents
        else:
            if self.spans_key not in doc.spans:
                return []  # like a doc without entities
            spans = doc.spans[self.spans_key]
        unique = {}
        for span in spans:
            unique.setdefault((span.start, span.end, span.label_), span)
        return [unique[k] for k in sorted(unique)]

    def __call__(self, doc: Doc) -> Candidates:
        spans = self.get_spans(doc)
        if len(spans) < 2:
            return []
        if self.allowed_pairs is None:
            heads = tails = spans
        else:
            head_labels = {h for h, _ in self.allowed_pairs}
            tail_labels = {t for _, t in self.allowed_pairs}
            heads = [s for s in spans if s.label_ in head_labels]
            tails = [s for s in spans if s.label_ in tail_labels]
        if not heads or not tails:
            return []
        sents = None
        if self.max_distance is not None and self.distance_unit == "sentences":
            sents = sentence_ids(doc)
            if sents is None:
                raise ValueError(
                    Errors.E204.format(doc_id=_doc_name(doc), name="biobert_relations")
                )
        allowed = self.allowed_pairs
        bound = self.max_distance
        pairs: Candidates = []
        for head in heads:
            for tail in tails:
                if head.start_char == tail.start_char and head.end_char == tail.end_char:
                    continue
                if allowed is not None and (head.label_, tail.label_) not in allowed:
                    continue
                if bound is not None:
                    if sents is not None:
                        distance = abs(int(sents[head.start]) - int(sents[tail.start]))
                    else:
                        distance = max(
                            0, max(head.start, tail.start) - min(head.end, tail.end)
                        )
                    if distance > bound:
                        continue
                pairs.append((head, tail))
        if self.closest_per_concept_pair is not None:
            pairs = closest_per_concept_pair(doc, pairs, self.closest_per_concept_pair)
        return pairs


def _concepts(span: Span) -> List[str]:
    # A mention without a kb id is a concept of its own.
    return mention_ids(span) or [f"@{span.start_char}:{span.end_char}:{span.label_}"]


def closest_per_concept_pair(doc: Doc, pairs: Candidates, k: int) -> Candidates:
    """Of `pairs`, those among the k closest mention pairs of one of their
    (head concept, tail concept) pairs, in their order in `pairs`. Closest:
    fewest sentences apart (when the doc has sentences), then fewest tokens
    strictly between the two mentions, then first in the text."""
    sents = sentence_ids(doc)
    ranked: dict = {}
    for index, (head, tail) in enumerate(pairs):
        gap = max(0, max(head.start, tail.start) - min(head.end, tail.end))
        apart = 0 if sents is None else abs(int(sents[head.start]) - int(sents[tail.start]))
        key = (apart, gap, min(head.start, tail.start), index)
        for h in _concepts(head):
            for t in _concepts(tail):
                ranked.setdefault((h, t), []).append(key)
    keep = {key[-1] for keys in ranked.values() for key in sorted(keys)[:k]}
    return [pair for index, pair in enumerate(pairs) if index in keep]


def _doc_name(doc: Doc) -> str:
    doc_id = doc._.doc_id if Doc.has_extension("doc_id") else None
    return repr(doc_id) if doc_id is not None else repr(doc.text[:40])


@registry.misc("spacy-biobert.EntityPairs.v1")
def create_entity_pairs(
    allowed_pairs: Optional[List[List[str]]] = None,
    max_distance: Optional[int] = None,
    distance_unit: str = "tokens",
    spans_key: Optional[str] = None,
    closest_per_concept_pair: Optional[int] = None,
) -> GetCandidates:
    """Candidate generator: ordered pairs of `doc.ents` (or `doc.spans[spans_key]`).

    allowed_pairs: [head label, tail label] pairs to keep; None keeps every pair.
    max_distance: the largest distance between head and tail; None = whole document.
    distance_unit: "tokens" (tokens strictly between the two spans; 0 for adjacent
        or overlapping spans) or "sentences" (difference of sentence indices; needs
        sentence boundaries).
    spans_key: pair the spans of this span group instead of doc.ents (gold-entity
        benchmarks with nested mentions, e.g. ChemProt's "mentions"); a doc
        without that group has no candidates, like a doc without entities.
    closest_per_concept_pair: keep only the k closest mention pairs of each
        (head kb id, tail kb id), for document-level labels scored per pair
        (MarkedRelationModel.v1); None keeps every mention pair.
    """
    return EntityPairs(
        allowed_pairs=allowed_pairs,
        max_distance=max_distance,
        distance_unit=distance_unit,
        spans_key=spans_key,
        closest_per_concept_pair=closest_per_concept_pair,
    )
