"""`biobert_relations`: trainable relation extraction over entity pairs.

The component takes a candidate generator (`candidates`, by default
`spacy-biobert.EntityPairs.v1`; the way spaCy's `spancat` takes its
suggester), calls it once per doc of a batch, and scores those pairs with
`spacy-biobert.RelationModel.v2` (input: the docs and their candidates;
listening to the shared `biobert` transformer) or a pair-aware model on
`biobert`'s own transformer: `spacy-biobert.MarkedRelationModel.v1` (each
pair encoded marked in its sentence; models/marked_relation_model.py) or
`spacy-biobert.EntityMarkedRelationModel.v1` (every mention of a doc marked,
one pass per doc; models/entity_marked_model.py) or
`spacy-biobert.LevitatedMarkerRelationModel.v1` (the text once, four
levitated markers per pair; models/levitated_marker_model.py).
The same candidates serve `set_annotations` and the loss. It writes, for every doc:

- `doc._.relations`: {(head.start, tail.start): {label: probability}}, the
  public contract, over `doc.ents` (or the candidate span group);
- `doc._.relation_pairs`: the exact per-pair list
  `((head.start, head.end, head.label_, head.kb_id_), (tail...), {label: p})`;
- `doc._.kb_relations`: {(head kb id, tail kb id): {label: p}}, the
  entity-level (kb_id_) aggregation used by document-level tasks (CID).

Labels are independent (sigmoid). Each label is learned at the level the
corpus states it (`doc._.gold_relations[i]["level"]`):

- "mention" (ChemProt): a candidate is positive when its head and tail have
  the character offsets of a gold relation's head and tail mentions;
- "concept" (BC5CDR CID): the unit is a (head kb id, tail kb id) pair of the
  document. Its logit pools the logits of all its mention pairs
  (`concept_pooling`: "logsumexp", a smooth max that spreads the gradient over
  the mention pairs in proportion to their evidence, or "max"), and the loss
  is taken on the pooled logit (multi-instance learning). Prediction pools the
  same way, so training and `doc._.kb_relations` agree.

Gold relations are matched by character offsets and kb ids, never by token
positions, so the same code trains on gold entities (relation benchmarks) and
on entities predicted by `ner` in the same pipeline (end to end).
"""

import logging
import math
from itertools import islice
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import filter_spans, minibatch
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats2d

from ..errors import Errors
from ..evaluation.relations import relations_score
from ..extensions import concept_labels, document_relations, install_extensions, mention_ids
from ..models.pairs import (
    Candidates,
    EntityPairs,
    GetCandidates,
    candidate_spans_key,
)
from .relation_targets import concept_groups, gold_sets, mention_targets

logger = logging.getLogger("spacy_biobert.relations")

POOLINGS = ("logsumexp", "max")
LEVELS = ("mention", "concept")

DEFAULT_CONFIG = """
[biobert_relations]
threshold = 0.5
concept_pooling = "logsumexp"
gold_entities = false
scorer = {"@scorers":"spacy-biobert.relations_scorer.v1"}

[biobert_relations.candidates]
@misc = "spacy-biobert.EntityPairs.v1"
allowed_pairs = null
max_distance = null
distance_unit = "tokens"
spans_key = null
closest_per_concept_pair = null

[biobert_relations.model]
@architectures = "spacy-biobert.RelationModel.v2"
width = 256
hidden_width = 256
dropout = 0.1
max_pairs_per_batch = 4096
nO = null

[biobert_relations.model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"

[biobert_relations.model.tok2vec.pooling]
@layers = "reduce_mean.v1"
"""

PairKey = Tuple[int, int, str, str]  # (start, end, label, kb_id) of a span
PairResult = Tuple[PairKey, PairKey, Dict[str, float]]


class RelationScores(NamedTuple):
    """What `RelationExtractor.predict` returns and `set_annotations` /
    `get_loss` take: the candidate pairs of each doc of the batch and the
    model's logits, one row per pair in that order."""

    candidates: List[Candidates]
    logits: Floats2d


@Language.factory(
    "biobert_relations",
    assigns=[
        "doc._.relations",
        "doc._.relation_pairs",
        "doc._.kb_relations",
        "doc._.relation_levels",
    ],
    default_config=Config().from_str(DEFAULT_CONFIG)["biobert_relations"],
    default_score_weights={
        "rel_micro_f": 1.0,
        "rel_micro_p": 0.0,
        "rel_micro_r": 0.0,
        "rel_doc_f": 1.0,
        "rel_doc_p": 0.0,
        "rel_doc_r": 0.0,
    },
)
def make_relation_extractor(
    nlp: Language,
    name: str,
    model: Model,
    candidates: GetCandidates,
    threshold: float,
    concept_pooling: str,
    gold_entities: bool,
    scorer: Optional[Callable] = None,
) -> "RelationExtractor":
    """Relation extraction over candidate entity pairs (see the module docstring).

    model: spacy-biobert.RelationModel.v2 (input: docs and their candidates).
        A RelationModel.v1 (deprecated) brings its own generator, used instead
        of `candidates` (which must then be left at its default).
    candidates: the candidate generator, `Doc -> [(head, tail), ...]`
        (spacy-biobert.EntityPairs.v1 or any registered function returning
        one), called once per doc of each batch.
    threshold: probability from which a relation counts (scoring, helpers).
    concept_pooling: how mention-pair logits combine into a concept (kb id) pair:
        "logsumexp" or "max".
    gold_entities: relation benchmarks on gold entities: in `update` and
        `score`, the candidate spans (doc.ents, or the span group of the
        candidate generator) and sentence boundaries of each example's
        reference are put on its predicted doc (matched by characters) before
        pairs are made. Leave false end to end (entities from `ner`).
    scorer: the scoring function (spacy-biobert.relations_scorer.v1:
        rel_micro_* over the mention-level labels, rel_doc_* over the
        concept-level ones, at `threshold`).
    """
    return RelationExtractor(
        nlp.vocab,
        model,
        name,
        candidates=candidates,
        threshold=threshold,
        concept_pooling=concept_pooling,
        gold_entities=gold_entities,
        scorer=scorer,
    )


class RelationExtractor(TrainablePipe):
    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "biobert_relations",
        *,
        candidates: Optional[GetCandidates] = None,
        threshold: float = 0.5,
        concept_pooling: str = "logsumexp",
        gold_entities: bool = False,
        scorer: Optional[Callable] = relations_score,
    ):
        """candidates: the candidate generator; None: every ordered pair of
        doc.ents (EntityPairs()), or the generator of a RelationModel.v1."""
        install_extensions()
        check_threshold(threshold)
        if concept_pooling not in POOLINGS:
            raise ValueError(
                Errors.E206.format(
                    what="concept_pooling",
                    options=POOLINGS,
                    value=concept_pooling,
                    name=name,
                )
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.candidates: GetCandidates = _resolve_candidates(name, model, candidates)
        # Where the candidate spans live (None: doc.ents): what `gold_entities`
        # copies from the reference.
        self.spans_key: Optional[str] = candidate_spans_key(self.candidates)
        self.cfg: Dict[str, Any] = {
            "labels": [],
            "concept_labels": [],
            "threshold": threshold,
            "concept_pooling": concept_pooling,
            "gold_entities": gold_entities,
        }
        # Labels added with level=None: their level comes from the data at initialize.
        self._open_levels: set = set()
        # True: the pipeline pass leaves docs unchanged and relations are only
        # predicted in `score`, on the reference's entities. Set (not saved) by
        # spacy-biobert.TrainingLogger.v1 on `gold_entities` components: in a
        # training run's evaluations the pipeline pass's relations, on the
        # entities `ner` predicted, are overwritten by `score` unread.
        self.predict_only_in_score = False

    # --- labels ------------------------------------------------------------------

    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def concept_labels(self) -> Tuple[str, ...]:
        """Labels learned and scored at concept (kb id pair) level."""
        return tuple(self.cfg["concept_labels"])

    @property
    def mention_labels(self) -> Tuple[str, ...]:
        concept = set(self.cfg["concept_labels"])
        return tuple(label for label in self.labels if label not in concept)

    @property
    def threshold(self) -> float:
        return self.cfg["threshold"]

    @property
    def get_candidates(self) -> GetCandidates:
        """The candidate generator (older name of `candidates`)."""
        return self.candidates

    def make_candidates(self, docs: Iterable[Doc]) -> List[Candidates]:
        """The candidate pairs of each doc: the one call of the generator per
        doc and batch, shared by the model, `set_annotations` and the loss."""
        return [self.candidates(doc) for doc in docs]

    def add_label(self, label: str, level: Optional[str] = None) -> int:
        """Add a relation label; it is kept through `initialize` (which adds
        the labels of the data, or of its `labels` setting, after it).
        level: "mention" or "concept"; None: as the training data states it
        at `initialize` ("mention" until then, and when the data has none)."""
        if level is not None and level not in LEVELS:
            raise ValueError(
                Errors.E206.format(
                    what="level", options=LEVELS, value=level, name=self.name
                )
            )
        if level is None:
            self._open_levels.add(label)
        else:
            self._open_levels.discard(label)
        if label in self.cfg["labels"]:
            concept = self.cfg["concept_labels"]
            if level == "concept" and label not in concept:
                concept.append(label)
            elif level == "mention" and label in concept:
                concept.remove(label)
            return 0
        self.cfg["labels"].append(label)
        if level == "concept":
            self.cfg["concept_labels"].append(label)
        return 1

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
        concept_labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Set the labels, check the training data and initialize the model.

        labels: the labels to learn, in order, after those given with
            `add_label`; by default every label of the training examples' gold
            relations. Give them to restrict training, e.g. ChemProt's
            evaluated groups CPR:3,4,5,6,9 (relations with other labels are
            then negatives).
        concept_labels: which labels are concept level; by default those the
            examples state at level "concept" (and those added at that level).

        Before the first step, the training data is checked against the labels
        and the candidate generator (`spacy_biobert.training.data_checks`):
        a label with no positive candidate pair is an error that names the
        cause (E800-E849); what looks wrong but still trains is logged (W8xx).
        """
        validate_get_examples(get_examples, "RelationExtractor.initialize")
        from ..training.data_checks import check_relation_data

        added = list(self.cfg["labels"])
        added_concept = set(self.cfg["concept_labels"])
        open_levels = set(self._open_levels)
        configured = labels is not None
        # one pass over the data: the labels it states (and at which level,
        # the first seen) and the counts the checks need
        report = check_relation_data(
            get_examples(),
            self.candidates,
            labels=list(dict.fromkeys(added + list(labels or []))),
            name=self.name,
            configured=configured or bool(added),
        )
        seen = report.first_levels
        wanted = list(dict.fromkeys(added + (list(labels) if configured else sorted(seen))))

        def level_of(label: str) -> str:
            if concept_labels is not None:
                return "concept" if label in concept_labels else "mention"
            if label in added and label not in open_levels:
                return "concept" if label in added_concept else "mention"
            return "concept" if seen.get(label) == "concept" else "mention"

        self.cfg["labels"] = []
        self.cfg["concept_labels"] = []
        for label in wanted:
            self.add_label(label, level_of(label))
        self._open_levels = set()
        report.labels, report.concept_labels = self.labels, self.concept_labels
        if not self.labels:
            # no relation in the data, none given; say so, unless the data
            # lost its relations on the way (E801)
            lost = [p for p in report.problems() if p.code == "E801"]
            raise ValueError(lost[0].message if lost else Errors.E205.format(name=self.name))
        report.raise_or_log(gold_entities=self.cfg["gold_entities"])
        self.model.set_dim("nO", len(self.labels))
        sample = [eg.predicted for eg in islice(get_examples(), 10)]
        self.model.initialize(X=(sample, self.make_candidates(sample)))

    # --- prediction ------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        if self.predict_only_in_score:
            return doc
        return super().__call__(doc)

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        if self.predict_only_in_score:
            yield from stream
            return
        yield from super().pipe(stream, batch_size=batch_size)

    def predict(self, docs: Iterable[Doc]) -> RelationScores:
        """The candidates of each doc and their logits (see RelationScores)."""
        docs = list(docs)
        candidates = self.make_candidates(docs)
        return RelationScores(candidates, self.model.predict((docs, candidates)))

    def set_annotations(
        self, docs: Iterable[Doc], scores: Union[RelationScores, Floats2d]
    ) -> None:
        """Write the predictions of `predict(docs)`. A bare logits array (the
        older form) is taken as the logits of the docs' candidates, made again."""
        docs = list(docs)
        candidates, logits = self._with_candidates(docs, scores)
        logits = self.model.ops.to_numpy(logits)
        n_pairs = sum(len(c) for c in candidates)
        if logits.shape[0] != n_pairs:
            raise ValueError(Errors.E208.format(rows=logits.shape[0], pairs=n_pairs))
        labels = self.labels
        poolings = self._poolings()
        concept = set(self.concept_labels)
        levels = {label: "concept" if label in concept else "mention" for label in labels}
        offset = 0
        for doc, pairs in zip(docs, candidates):
            z = logits[offset : offset + len(pairs)]
            offset += len(pairs)
            probs = _sigmoid(z)
            relations: Dict[Tuple[int, int], Dict[str, float]] = {}
            results: List[PairResult] = []
            for i, (head, tail) in enumerate(pairs):
                scores = {label: float(probs[i, j]) for j, label in enumerate(labels)}
                key = (head.start, tail.start)
                if key in relations:
                    old = relations[key]
                    relations[key] = {k: max(v, old[k]) for k, v in scores.items()}
                else:
                    relations[key] = scores
                results.append((_span_key(head), _span_key(tail), scores))
            doc._.relations = relations
            doc._.relation_pairs = results
            doc._.kb_relations = pool_by_kb_id(
                [(mention_ids(h), mention_ids(t)) for h, t in pairs], z, labels, poolings
            )
            doc._.relation_levels = levels

    def _with_candidates(
        self, docs: List[Doc], scores: Union[RelationScores, Floats2d]
    ) -> Tuple[List[Candidates], Floats2d]:
        if isinstance(scores, tuple):
            candidates, logits = scores
            return list(candidates), logits
        return self.make_candidates(docs), scores

    def _poolings(self) -> List[str]:
        concept = set(self.concept_labels)
        return [
            self.cfg["concept_pooling"] if label in concept else "max"
            for label in self.labels
        ]

    # --- training ----------------------------------------------------------------

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "RelationExtractor.update")
        if not examples:
            return losses
        if self.cfg["gold_entities"]:
            for eg in examples:
                self.copy_gold_entities(eg)
        set_dropout_rate(self.model, drop)
        docs = [eg.predicted for eg in examples]
        candidates = self.make_candidates(docs)
        logits, backprop = self.model.begin_update((docs, candidates))
        loss, d_logits = self.get_loss(examples, RelationScores(candidates, logits))
        # Always backprop, even with no pairs: the last listener of the
        # transformer triggers its update (and passes on the other listeners').
        backprop(d_logits)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(
        self, examples: Iterable[Example], scores: Union[RelationScores, Floats2d]
    ) -> Tuple[float, Floats2d]:
        """Binary cross-entropy per label: per candidate pair for mention-level
        labels (mean over pairs), per pooled concept pair for concept-level
        labels (mean over concept pairs). Examples whose reference has
        `gold_relations is None` (not annotated) contribute no loss.

        scores: the candidates of the predicted docs and their logits, as
        `update` makes them; a bare logits array is taken as the logits of the
        predicted docs' candidates, made again."""
        examples = list(examples)
        candidates, logits = self._with_candidates(
            [eg.predicted for eg in examples], scores
        )
        if len(candidates) != len(examples):
            raise ValueError(
                Errors.E209.format(docs=len(examples), candidates=len(candidates))
            )
        ops = self.model.ops
        z = ops.to_numpy(logits).astype("float32")
        d = numpy.zeros_like(z)
        labels = self.labels
        concept = set(self.concept_labels)
        m_cols = [j for j, label in enumerate(labels) if label not in concept]
        c_cols = [(j, label) for j, label in enumerate(labels) if label in concept]
        pooling = self.cfg["concept_pooling"]
        m_loss = 0.0
        m_rows = 0
        c_terms: List[Tuple[numpy.ndarray, int, float, float]] = []  # rows, col, grad, loss
        offset = 0
        for eg, pairs in zip(examples, candidates):
            rows = numpy.arange(offset, offset + len(pairs))
            offset += len(pairs)
            gold = eg.reference._.gold_relations
            if gold is None or not pairs:
                continue
            gold_mentions, gold_concepts, ref_spans = gold_sets(eg.reference, gold)
            if m_cols:
                targets = mention_targets(pairs, gold_mentions, labels)
                zm = z[rows][:, m_cols]
                pm = _sigmoid(zm)
                ym = targets[:, m_cols]
                d[numpy.ix_(rows, m_cols)] = pm - ym
                m_loss += float(_bce_with_logits(zm, ym).sum())
                m_rows += len(pairs)
            if c_cols:
                groups = concept_groups(pairs, ref_spans)
                for (head_kb, tail_kb), members in groups.items():
                    member_rows = rows[members]
                    for j, label in c_cols:
                        zs = z[member_rows, j]
                        pooled, weights = _pool(zs, pooling)
                        y = 1.0 if (head_kb, tail_kb, label) in gold_concepts else 0.0
                        p = float(_sigmoid(numpy.asarray(pooled)))
                        loss = float(
                            _bce_with_logits(numpy.asarray(pooled), numpy.asarray(y))
                        )
                        c_terms.append((member_rows, j, weights * (p - y), loss))
        if offset != z.shape[0]:
            raise ValueError(Errors.E208.format(rows=z.shape[0], pairs=offset))
        if m_rows:
            d[:, m_cols] /= m_rows
        loss = m_loss / max(m_rows, 1)
        if c_terms:
            n_groups = len(c_terms) / max(len(c_cols), 1)
            for member_rows, j, grad, term in c_terms:
                d[member_rows, j] += grad / n_groups
                loss += term / n_groups
        return loss, ops.asarray2f(d)

    def copy_gold_entities(self, eg: Example) -> Doc:
        """Put the reference's candidate spans (doc.ents, or the candidate
        generator's span group) on `eg.predicted`, matched by characters, and
        its sentence boundaries when the predicted doc has none. Returns the
        predicted doc."""
        return copy_gold_entities(eg, self.spans_key)

    # --- scoring -------------------------------------------------------------------

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Any]:
        """The scorer's scores (spacy-biobert.relations_scorer.v1 by default:
        rel_micro_* over the mention-level labels, rel_doc_* over the
        concept-level labels, at the component's threshold; a level with no
        labels scores None), after putting the gold entities back on the docs
        in `gold_entities` mode."""
        examples = list(examples)
        validate_examples(examples, "RelationExtractor.score")
        if self.cfg["gold_entities"]:
            # The pipeline ran on docs without entities: annotate again with
            # the gold ones (the transformer output is already on the docs).
            for batch in minibatch(examples, 32):
                docs = [self.copy_gold_entities(eg) for eg in batch]
                self.set_annotations(docs, self.predict(docs))
        # spaCy's Pipe.score: the scorer gets cfg (threshold, labels, concept_labels) and kwargs.
        return super().score(examples, **kwargs)


def _resolve_candidates(
    name: str, model: Model, candidates: Optional[GetCandidates]
) -> GetCandidates:
    """The component's generator. A RelationModel.v1 carries its own (older
    configs: [components.NAME.model.get_candidates]); it is used when
    `candidates` is left at its default, and an error when both are set."""
    in_model = model.attrs.get("get_candidates")
    if in_model is None:
        return candidates if candidates is not None else EntityPairs()
    if candidates is None or candidates == EntityPairs() or candidates == in_model:
        return in_model
    raise ValueError(
        Errors.E211.format(name=name, model_candidates=in_model, candidates=candidates)
    )


# --- gold matching ---------------------------------------------------------------


def copy_gold_entities(eg: Example, spans_key: Optional[str] = None) -> Doc:
    """Put the reference's doc.ents (spans_key None) or doc.spans[spans_key] on
    eg.predicted, matched by characters (label, kb_id_ and id_ kept), and its
    sentence boundaries when the predicted doc has none. Returns eg.predicted."""
    ref, pred = eg.reference, eg.predicted

    def moved(spans: Iterable[Span]) -> List[Span]:
        out = []
        for span in spans:
            new = pred.char_span(
                span.start_char,
                span.end_char,
                label=span.label_,
                kb_id=span.kb_id_,
                span_id=span.id_,
                alignment_mode="expand",
            )
            if new is not None and len(new):
                out.append(new)
        return out

    if spans_key is None:
        pred.set_ents(filter_spans(moved(ref.ents)), default="outside")
    elif spans_key in ref.spans:
        pred.spans[spans_key] = moved(ref.spans[spans_key])
    if (
        len(pred)
        and ref.has_annotation("SENT_START")
        and not pred.has_annotation("SENT_START")
    ):
        starts = {sent.start_char for sent in ref.sents}
        for token in pred:
            token.is_sent_start = token.i == 0 or token.idx in starts
    return pred


def _span_key(span: Span) -> PairKey:
    return (span.start, span.end, span.label_, span.kb_id_)


# --- numerics ----------------------------------------------------------------------


def _sigmoid(z: numpy.ndarray) -> numpy.ndarray:
    return numpy.exp(-numpy.logaddexp(0.0, -z))


def _logit(p: float, eps: float = 1e-7) -> float:
    p = min(max(p, eps), 1.0 - eps)
    return math.log(p) - math.log1p(-p)


def _bce_with_logits(z: numpy.ndarray, y: numpy.ndarray) -> numpy.ndarray:
    return numpy.logaddexp(0.0, z) - y * z


def _pool(z: numpy.ndarray, pooling: str) -> Tuple[float, numpy.ndarray]:
    """Pooled logit of a group and d(pooled)/d(z)."""
    if pooling == "max":
        weights = numpy.zeros_like(z)
        weights[int(numpy.argmax(z))] = 1.0
        return float(z.max()), weights
    top = float(z.max())
    e = numpy.exp(z - top)
    total = float(e.sum())
    return top + math.log(total), e / total


def pool_by_kb_id(
    kb_pairs: Sequence[Tuple[Sequence[str], Sequence[str]]],
    logits: numpy.ndarray,
    labels: Sequence[str],
    poolings: Sequence[str],
) -> Dict[Tuple[str, str], Dict[str, float]]:
    """Aggregate mention-pair logits into {(head kb, tail kb): {label: p}}: one
    entry per pair of ids (a composite mention counts for each of its ids),
    each label pooled with its pooling ("logsumexp" or "max"), then sigmoid."""
    groups: Dict[Tuple[str, str], List[int]] = {}
    for i, (h_ids, t_ids) in enumerate(kb_pairs):
        for a in h_ids:
            for b in t_ids:
                groups.setdefault((a, b), []).append(i)
    out: Dict[Tuple[str, str], Dict[str, float]] = {}
    for key, members in groups.items():
        scores = {}
        for j, label in enumerate(labels):
            pooled, _ = _pool(
                numpy.asarray(logits[members, j], dtype="float64"), poolings[j]
            )
            scores[label] = float(_sigmoid(numpy.asarray(pooled)))
        out[key] = scores
    return out


# --- helpers for users ------------------------------------------------------------


def relation_triples(
    doc: Doc, threshold: float = 0.5, labels: Optional[Iterable[str]] = None
) -> List[Tuple[Span, Span, str, float]]:
    """Confident relations of a processed doc: (head, tail, label, probability)
    with probability >= threshold, in document order (head, then tail). Head
    and tail are Spans with their label and kb_id_.

    A mention-level label (ChemProt) comes once per candidate pair. A
    document-level label (`doc._.relation_levels` "concept": BC5CDR CID) comes
    once per (head kb id, tail kb id), with the pooled probability of
    `doc._.kb_relations` (the one the writers write and the scorer scores),
    on its strongest mention pair (the evidence), whose spans carry that pair
    of ids as kb_id_."""
    check_threshold(threshold)
    keep = set(labels) if labels is not None else None
    concept = set(concept_labels(doc))
    pairs = doc._.relation_pairs or []
    out = []
    for head, tail, scores in pairs:
        for label, p in scores.items():
            if label not in concept and p >= threshold and (keep is None or label in keep):
                out.append((_to_span(doc, head), _to_span(doc, tail), label, p))
    wanted = concept if keep is None else concept & keep
    for rel in document_relations(doc, threshold, wanted):
        evidence = None
        for head, tail, scores in pairs:
            if rel["head"] in mention_ids(head[3]) and rel["tail"] in mention_ids(tail[3]):
                score = scores.get(rel["label"], 0.0)
                if evidence is None or score > evidence[0]:
                    evidence = (score, head, tail)
        if evidence is not None:
            _, head, tail = evidence
            out.append(
                (
                    _to_span(doc, tuple(head[:3]) + (rel["head"],)),
                    _to_span(doc, tuple(tail[:3]) + (rel["tail"],)),
                    rel["label"],
                    rel["score"],
                )
            )
    out.sort(key=lambda r: (r[0].start, r[0].end, r[1].start, r[1].end, r[2]))
    return out


def kb_relation_triples(
    doc: Doc, threshold: float = 0.5, labels: Optional[Iterable[str]] = None
) -> List[Tuple[str, str, str, float]]:
    """Confident entity-level relations: (head kb id, tail kb id, label,
    probability) from `doc._.kb_relations`, sorted by decreasing probability."""
    check_threshold(threshold)
    keep = set(labels) if labels is not None else None
    out = [
        (h, t, label, p)
        for (h, t), scores in (doc._.kb_relations or {}).items()
        for label, p in scores.items()
        if p >= threshold and (keep is None or label in keep)
    ]
    return sorted(out, key=lambda x: (-x[3], x[0], x[1], x[2]))


def aggregate_by_kb_id(
    doc: Doc, pooling: str = "max"
) -> Dict[Tuple[str, str], Dict[str, float]]:
    """Entity-level aggregation of `doc._.relation_pairs` by kb_id_ with any
    pooling ("max" or "logsumexp" over mention-pair logits), for docs whose
    `doc._.kb_relations` was not written with the pooling wanted."""
    if pooling not in POOLINGS:
        raise ValueError(
            Errors.E206.format(
                what="pooling", options=POOLINGS, value=pooling, name="biobert_relations"
            )
        )
    pairs = doc._.relation_pairs or []
    if not pairs:
        return {}
    labels = sorted({label for _, _, scores in pairs for label in scores})
    logits = numpy.asarray(
        [[_logit(scores.get(label, 0.0)) for label in labels] for _, _, scores in pairs],
        dtype="float64",
    )
    kb_pairs = [(mention_ids(h[3]), mention_ids(t[3])) for h, t, _ in pairs]
    return pool_by_kb_id(kb_pairs, logits, labels, [pooling] * len(labels))


def relations_to_displacy(
    doc: Doc, threshold: float = 0.5, labels: Optional[Iterable[str]] = None
) -> Dict[str, Any]:
    """displaCy "dep" data (use `displacy.render(data, style="dep", manual=True)`):
    entities merged into one word each, tagged with their label, and an arc
    per confident relation of `relation_triples` (document-level labels once
    per pair of ids, on their strongest mention pair, as `visualize` draws
    them), labelled "LABEL 0.93", pointing at the tail."""
    from spacy.util import filter_spans

    triples = relation_triples(doc, threshold, labels)
    spans = filter_spans(list(doc.ents) + [s for h, t, _, _ in triples for s in (h, t)])
    word_of: Dict[Tuple[int, int], int] = {}
    words = []
    i = 0
    by_start = {s.start: s for s in spans}
    while i < len(doc):
        span = by_start.get(i)
        if span is not None:
            word_of[(span.start, span.end)] = len(words)
            words.append({"text": span.text, "tag": span.label_})
            i = span.end
        else:
            words.append({"text": doc[i].text, "tag": ""})
            i += 1
    arcs = []
    for head, tail, label, p in triples:
        a, b = word_of.get((head.start, head.end)), word_of.get((tail.start, tail.end))
        if a is None or b is None or a == b:
            continue
        arcs.append(
            {
                "start": min(a, b),
                "end": max(a, b),
                "label": f"{label} {p:.2f}",
                "dir": "right" if a < b else "left",
            }
        )
    return {"words": words, "arcs": arcs}


def _to_span(doc: Doc, key: Sequence[Any]) -> Span:
    return Span(doc, key[0], key[1], label=key[2], kb_id=key[3] if len(key) > 3 else "")


def check_threshold(threshold: float) -> None:
    """Raise E207 unless `threshold` is a number in [0, 1] (shared by the
    component, the service and the renderer)."""
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not (0.0 <= threshold <= 1.0)
    ):
        raise ValueError(Errors.E207.format(value=threshold))


# What every reader of predictions uses when neither the user nor a pipeline
# says otherwise (the component's own default).
DEFAULT_THRESHOLD = 0.5


def pipeline_threshold(nlp: Any) -> float:
    """The relation threshold `nlp` was configured with: that of its (first)
    `biobert_relations` component, else DEFAULT_THRESHOLD. Every output path
    (annotate, serve, render, show, evaluate-relations) writes relations at
    this threshold unless the user passes one."""
    for _name, proc in getattr(nlp, "pipeline", ()):
        if isinstance(proc, RelationExtractor):
            return float(proc.threshold)
    return DEFAULT_THRESHOLD


def resolve_threshold(nlp: Any, threshold: Optional[float]) -> float:
    """`threshold` checked (E207), or the pipeline's own where it is None."""
    if threshold is None:
        return pipeline_threshold(nlp)
    check_threshold(threshold)
    return float(threshold)

