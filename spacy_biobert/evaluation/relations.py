"""Relation scores as the field reports them.

- `score_relations`: mention-level micro P/R/F1 over labels (ChemProt: the
  (PMID, Arg1, Arg2, CPR group) tuples of the gold standard), matching
  arguments by character offsets.
- `score_document_relations` / `score_cid`: document-level P/R/F1 over
  (document id, head kb id, tail kb id, label) tuples (BC5CDR CID as
  BioCreative V scored it: (PMID, chemical MeSH, disease MeSH)).
- `spacy-biobert.relations_scorer.v1`: the scorer of `biobert_relations`
  (both levels, registered the way spaCy registers `spacy.spancat_scorer.v1`).

Both read the predictions on `eg.predicted` through the accessors every
writer uses (`spacy_biobert.extensions.mention_relations` /
`document_relations`: `doc._.relation_pairs`, `doc._.kb_relations`), so
what is written is what is scored, and the gold relations on
`eg.reference` (`doc._.gold_relations`). A predicted relation absent from the
gold set is a false positive, never an error; a gold relation never predicted
is a false negative (also when no candidate pair could reach it).
Scores are fractions.
"""

from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..extensions import (
    MENTIONS_KEY,
    document_relations,
    install_extensions,
    mention_relations,
)
from .scores import doc_key, pipe_docs, score_tuples

Tuple_ = Tuple[Any, ...]
Scores = Dict[str, Any]


def _score_relations(
    examples: Iterable[Example],
    labels: Optional[Sequence[str]],
    gold_of: Callable[[Doc], Iterable[Tuple_]],
    predicted_of: Callable[[Doc], Iterable[Tuple_]],
    prefix: str,
) -> Scores:
    """Micro and per-label scores over (document key, *relation) tuples whose
    last item is the label: `gold_of(reference)` (restricted to `labels`)
    against `predicted_of(predicted)`, as {prefix}_p/r/f, {prefix}_counts and
    {prefix}_per_type."""
    install_extensions()
    keep = set(labels) if labels is not None else None
    gold: Set[Tuple_] = set()
    pred: Set[Tuple_] = set()
    for i, eg in enumerate(examples):
        key = doc_key(eg, i)
        gold.update((key, *rel) for rel in gold_of(eg.reference) if keep is None or rel[-1] in keep)
        pred.update((key, *rel) for rel in predicted_of(eg.predicted))
    micro, per_type = score_tuples(gold, pred, labels)
    return {
        f"{prefix}_p": micro.precision,
        f"{prefix}_r": micro.recall,
        f"{prefix}_f": micro.f1,
        f"{prefix}_counts": {"tp": micro.tp, "fp": micro.fp, "fn": micro.fn},
        f"{prefix}_per_type": {label: prf.as_dict() for label, prf in per_type.items()},
    }


def _gold_relations(doc: Doc, level: str) -> Iterator[Dict[str, Any]]:
    for rel in doc._.gold_relations or []:
        if rel.get("level", "mention") == level:
            yield rel


def _gold_mention_relations(ref: Doc) -> Iterator[Tuple_]:
    """(head char span, tail char span, label) of the mention-level gold
    relations; an argument that names no span is ("id", its id)."""
    spans = list(ref.spans[MENTIONS_KEY]) if MENTIONS_KEY in ref.spans else []
    by_id = {}
    for span in spans + list(ref.ents):
        if span.id_:
            by_id.setdefault(span.id_, span)
    for rel in _gold_relations(ref, "mention"):
        head, tail = by_id.get(str(rel["head"])), by_id.get(str(rel["tail"]))
        if head is None or tail is None:
            # Unplaceable argument: still a gold relation (a false negative).
            yield ("id", str(rel["head"])), ("id", str(rel["tail"])), rel["label"]
        else:
            yield (head.start_char, head.end_char), (tail.start_char, tail.end_char), rel["label"]


def score_relations(
    examples: Iterable[Example],
    threshold: float = 0.5,
    labels: Optional[Sequence[str]] = None,
) -> Scores:
    """Mention-level micro P/R/F1 of `doc._.relation_pairs` at `threshold`:
    rel_micro_p/r/f, rel_micro_counts (tp/fp/fn), rel_micro_per_type.

    A relation is (doc, head char span, tail char span, label); gold ones are
    the mention-level `gold_relations` of the reference. labels: the labels
    scored (others are ignored on both sides); None = every label seen that
    the doc's relation component does not predict at concept level.
    """
    return _score_relations(
        examples,
        labels,
        _gold_mention_relations,
        lambda doc: (
            (tuple(rel["head"]), tuple(rel["tail"]), rel["label"])
            for rel in mention_relations(doc, threshold, labels)
        ),
        "rel_micro",
    )


def score_document_relations(
    examples: Iterable[Example],
    threshold: float = 0.5,
    labels: Optional[Sequence[str]] = None,
) -> Scores:
    """Document-level P/R/F1 of `doc._.kb_relations` at `threshold`:
    rel_doc_p/r/f, rel_doc_counts, rel_doc_per_type, over (document id, head kb
    id, tail kb id, label). Gold ones are the concept-level `gold_relations` of
    the reference. labels: the labels scored; None = the labels the doc's
    relation component predicts at concept level (`doc._.relation_levels`)."""
    return _score_relations(
        examples,
        labels,
        lambda ref: (
            (str(rel["head"]), str(rel["tail"]), rel["label"])
            for rel in _gold_relations(ref, "concept")
        ),
        lambda doc: (
            (rel["head"], rel["tail"], rel["label"])
            for rel in document_relations(doc, threshold, labels)
        ),
        "rel_doc",
    )


def score_cid(examples: Iterable[Example], threshold: float = 0.5) -> Scores:
    """BC5CDR CID: document-level (PMID, chemical MeSH, disease MeSH) P/R/F1
    (`score_document_relations` for the label "CID")."""
    return score_document_relations(examples, threshold, labels=["CID"])


def score_relation_levels(
    examples: Sequence[Example],
    threshold: float,
    mention_labels: Sequence[str],
    concept_labels: Sequence[str],
) -> Scores:
    """`score_relations` over the mention-level labels and
    `score_document_relations` over the concept-level ones; a level without
    labels is left out."""
    scores: Scores = {}
    if mention_labels:
        scores.update(score_relations(examples, threshold, labels=mention_labels))
    if concept_labels:
        scores.update(score_document_relations(examples, threshold, labels=concept_labels))
    return scores


def relations_score(
    examples: Iterable[Example],
    *,
    threshold: float = 0.5,
    labels: Sequence[str] = (),
    concept_labels: Sequence[str] = (),
    **kwargs: Any,
) -> Scores:
    """The scorer of `biobert_relations` (spaCy passes the component's cfg and
    labels as keyword arguments): rel_micro_* over the mention-level labels
    (`labels` not in `concept_labels`) and rel_doc_* over `concept_labels`, at
    `threshold`. A level with no labels scores None."""
    concept = set(concept_labels)
    mention_labels = [label for label in labels if label not in concept]
    scores: Scores = {f"rel_{level}_{k}": None for level in ("micro", "doc") for k in "prf"}
    scores.update(
        score_relation_levels(list(examples), threshold, mention_labels, list(concept_labels))
    )
    return scores


@registry.scorers("spacy-biobert.relations_scorer.v1")
def make_relations_scorer() -> Callable[..., Scores]:
    """The scorer of `biobert_relations` (`relations_score`)."""
    return relations_score


def evaluate_relations(
    nlp: Any,
    examples: Iterable[Example],
    thresholds: Sequence[float] = (0.5,),
    component: str = "biobert_relations",
    batch_size: int = 16,
    label_map: Optional[Dict[str, str]] = None,
) -> Dict[float, Scores]:
    """Run `nlp` once over the examples and score relations at each threshold:
    {threshold: {rel_micro_*, rel_doc_*}} over the component's mention-level
    and concept-level labels. With `gold_entities` on the component, the
    reference's entities (and sentences) are put on the docs first, as in
    training, and only the component and its transformer run (no `ner` or
    linker to change them). A component whose candidates come from a span
    group the gold corpus lacks (the biomed pipeline's "biobert_ner") gets
    every gold mention there, under its type mapped by `label_map` (as
    `MultiCorpus` gives it in training). The examples are not modified."""
    from ..corpora.multi import typed_gold_spans

    rel = nlp.get_pipe(component)
    examples = [Example(eg.predicted.copy(), eg.reference) for eg in examples]
    disable: List[str] = []
    if rel.cfg.get("gold_entities"):
        key = rel.spans_key
        for eg in examples:
            if key is not None and key not in eg.reference.spans:
                reference = eg.reference.copy()
                reference.spans[key] = typed_gold_spans(reference, label_map)
                rel.copy_gold_entities(Example(eg.predicted, reference))
            else:
                rel.copy_gold_entities(eg)
        # Only the component and the transformer it listens to run: `ner`
        # would add predicted entities around the gold ones and the linker
        # would replace their gold ids.
        keep = {component} | {
            name for name, pipe in nlp.pipeline
            if component in (getattr(pipe, "listening_components", None) or [])
        }
        disable = [name for name in nlp.pipe_names if name not in keep]
    with nlp.select_pipes(disable=disable):
        docs = list(pipe_docs(nlp, (eg.predicted for eg in examples), batch_size))
    scored = [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]
    return {
        threshold: score_relation_levels(
            scored, threshold, rel.mention_labels, rel.concept_labels
        )
        for threshold in thresholds
    }
