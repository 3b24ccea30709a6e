"""NER across corpora that annotate different entity types.

BC5CDR annotates Chemical and Disease, NCBI-disease only Disease, ChemProt
Chemical and Gene. One NER head over all three would learn from BC5CDR that
the gene names in its text are outside any entity. So each type family gets
its own head (`biobert_ner`, spaCy's transition-based `ner` underneath),
listening to the shared `biobert`, and each head learns only from documents
whose corpus annotates all its types (the reader says which:
`spacy-biobert.MultiCorpus.v1`). On the other documents its gold is
"missing": no loss, but the listener still gets its (zero) gradient, so the
transformer's update is never skipped.

The heads do not write `doc.ents` (a later head would then be forced to keep
the earlier head's entities); each adds its predictions to the span group
`doc.spans["biobert_ner"]`. `biobert_entity_merger` then writes `doc.ents`
by one rule: longer spans first; on equal length the head listed first in
`priority`; a span overlapping one already kept is dropped and kept in
`doc.spans["biobert_ner_dropped"]`, so how often the rule fires is counted
(the merger's scores: `ents_overlaps_dropped`).
"""

from typing import Callable, Dict, Iterable, List, Optional, Sequence

from spacy.attrs import ENT_ID, ENT_IOB, ENT_KB_ID, ENT_TYPE
from spacy.language import Language
from spacy.pipeline import EntityRecognizer
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import filter_spans
from thinc.api import Model

from ..errors import Errors
from ..evaluation.partial import annotated_types
from ..extensions import DROPPED_KEY, PREDICTIONS_KEY, TYPED_GOLD_KEY

_ENT_ATTRS = [ENT_IOB, ENT_TYPE, ENT_KB_ID, ENT_ID]

DEFAULT_HEAD_MODEL = {
    "@architectures": "spacy.TransitionBasedParser.v2",
    "state_type": "ner",
    "extra_state_tokens": False,
    "hidden_width": 64,
    "maxout_pieces": 2,
    "use_upper": False,
    "nO": None,
    "tok2vec": {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "upstream": "*",
        "pooling": {"@layers": "reduce_mean.v1"},
    },
}


def gold_spans(doc: Doc) -> List[Span]:
    """Every gold mention of a reference Doc under its training label."""
    if TYPED_GOLD_KEY in doc.spans:
        return list(doc.spans[TYPED_GOLD_KEY])
    return list(doc.ents)


@Language.factory(
    "biobert_ner",
    assigns=["doc.spans"],
    default_config={
        "entity_types": [],
        "model": DEFAULT_HEAD_MODEL,
        "moves": None,
        "update_with_oracle_cut_size": 100,
        "spans_key": PREDICTIONS_KEY,
    },
)
def make_typed_ner(
    nlp: Language,
    name: str,
    model: Model,
    entity_types: List[str],
    moves: Optional[object],
    update_with_oracle_cut_size: int,
    spans_key: str,
) -> "TypedEntityRecognizer":
    """One NER head for `entity_types`, trained only on corpora that annotate
    all of them, predicting into `doc.spans[spans_key]`."""
    return TypedEntityRecognizer(
        nlp.vocab,
        model,
        name,
        moves,
        entity_types=entity_types,
        spans_key=spans_key,
        update_with_oracle_cut_size=update_with_oracle_cut_size,
    )


class TypedEntityRecognizer(EntityRecognizer):
    def __init__(
        self,
        vocab,
        model: Model,
        name: str = "biobert_ner",
        moves=None,
        *,
        entity_types: Sequence[str],
        spans_key: str = PREDICTIONS_KEY,
        update_with_oracle_cut_size: int = 100,
    ):
        if not entity_types or isinstance(entity_types, str):
            raise ValueError(Errors.E701.format(name=name, value=entity_types))
        super().__init__(
            vocab,
            model,
            name,
            moves,
            update_with_oracle_cut_size=update_with_oracle_cut_size,
            scorer=None,
        )
        self.entity_types = [str(t) for t in entity_types]
        self.spans_key = spans_key

    # --- training: a per-head view of the gold ---------------------------------

    def _learns_from(self, reference: Doc) -> bool:
        types = annotated_types(reference)
        return types is None or all(t in types for t in self.entity_types)

    def _view(self, eg: Example) -> Example:
        """The example as this head sees it: its own types' gold spans with
        every other token outside, or all tokens missing when the example's
        corpus does not annotate its types."""
        reference = eg.reference.copy()
        if self._learns_from(eg.reference):
            own = [s for s in gold_spans(eg.reference) if s.label_ in self.entity_types]
            spans = [Span(reference, s.start, s.end, label=s.label_) for s in own]
            reference.set_ents(filter_spans(spans), default="outside")
        else:
            reference.set_ents([], default="missing")
        return Example(eg.predicted, reference)

    def update(self, examples: Iterable[Example], *, drop=0.0, sgd=None, losses=None):
        examples = list(examples)
        views = [self._view(eg) for eg in examples]
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        if any(self.moves.has_gold(v) for v in views):
            return super().update(views, drop=drop, sgd=sgd, losses=losses)
        # Nothing to learn in this batch. The transformer waits for the
        # gradient of every listener before it updates, so give a zero one.
        tok2vec = self.model.get_ref("tok2vec")
        outputs, backprop = tok2vec.begin_update([eg.predicted for eg in examples])
        backprop(_zeros_like(self.model.ops, outputs))
        return losses

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp=None, labels=None):
        def own_examples() -> Iterable[Example]:
            return [self._view(eg) for eg in get_examples()]

        super().initialize(own_examples, nlp=nlp, labels=labels)
        unknown = [t for t in self.entity_types if t not in self.labels]
        if unknown:
            raise ValueError(Errors.E702.format(name=self.name, types=unknown))

    # --- inference: predictions go to a span group ------------------------------

    def set_annotations(self, docs: Iterable[Doc], states_or_beams) -> None:
        docs = list(docs)
        before = [doc.to_array(_ENT_ATTRS) for doc in docs]
        super().set_annotations(docs, states_or_beams)
        for doc, saved in zip(docs, before):
            own = [
                Span(doc, e.start, e.end, label=e.label_)
                for e in doc.ents
                if e.label_ in self.entity_types
            ]
            doc.from_array(_ENT_ATTRS, saved)
            kept = [
                s for s in doc.spans.get(self.spans_key, []) if s.label_ not in self.entity_types
            ]
            doc.spans[self.spans_key] = kept + own

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, object]:
        # the merged doc.ents are scored once, by biobert_entity_merger
        return {}


def _zeros_like(ops, value):
    if hasattr(value, "shape"):
        return ops.alloc(value.shape, dtype=value.dtype)
    return [_zeros_like(ops, v) for v in value]


@Language.factory(
    "biobert_entity_merger",
    assigns=["doc.ents", "doc.spans"],
    requires=["doc.spans"],
    default_config={
        "priority": [],
        "spans_key": PREDICTIONS_KEY,
        "scorer": {"@scorers": "spacy-biobert.partial_ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_entity_merger(
    nlp: Language,
    name: str,
    priority: List[str],
    spans_key: str,
    scorer: Optional[Callable],
) -> "EntityMerger":
    """doc.ents from the heads' predictions: longer first, then `priority`
    (entity types, first wins) on equal length; the rest are dropped."""
    return EntityMerger(name, priority=priority, spans_key=spans_key, scorer=scorer)


class EntityMerger:
    def __init__(
        self,
        name: str = "biobert_entity_merger",
        *,
        priority: Sequence[str] = (),
        spans_key: str = PREDICTIONS_KEY,
        scorer: Optional[Callable] = None,
    ):
        self.name = name
        self.priority = [str(p) for p in priority]
        self.spans_key = spans_key
        self.scorer = scorer

    def _rank(self, span: Span):
        label = span.label_
        order = self.priority.index(label) if label in self.priority else len(self.priority)
        return (-(span.end - span.start), order, span.start, label)

    def __call__(self, doc: Doc) -> Doc:
        spans = list(doc.spans.get(self.spans_key, []))
        kept: List[Span] = []
        dropped: List[Span] = []
        taken = set()
        for span in sorted(spans, key=self._rank):
            if any(i in taken for i in range(span.start, span.end)):
                dropped.append(span)
                continue
            kept.append(span)
            taken.update(range(span.start, span.end))
        # entities set by an earlier component (e.g. an entity ruler) stay
        # unless a head's span overlaps them
        earlier = [e for e in doc.ents if not any(i in taken for i in range(e.start, e.end))]
        doc.set_ents(sorted(earlier + kept, key=lambda s: s.start), default="outside")
        doc.spans[DROPPED_KEY] = dropped
        return doc

    def pipe(self, docs: Iterable[Doc], batch_size: int = 128) -> Iterable[Doc]:
        for doc in docs:
            yield self(doc)

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, object]:
        examples = list(examples)
        scores = dict(self.scorer(examples, **kwargs)) if self.scorer is not None else {}
        dropped = sum(len(eg.predicted.spans.get(DROPPED_KEY, [])) for eg in examples)
        predicted = sum(len(eg.predicted.spans.get(self.spans_key, [])) for eg in examples)
        scores["ents_overlaps_dropped"] = dropped
        scores["ents_overlaps_dropped_rate"] = dropped / predicted if predicted else 0.0
        return scores

    # no weights; the settings are in the config
    def to_disk(self, path, *, exclude=tuple()):
        pass

    def from_disk(self, path, *, exclude=tuple()):
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        return b""

    def from_bytes(self, data: bytes, *, exclude=tuple()):
        return self
