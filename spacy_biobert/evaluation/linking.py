"""Document-level concept-id scores, as BioCreative V's DNER task scored
normalisation: per document and entity type, the *set* of ids of the gold
mentions against the set of ids of the predicted entities; micro P/R/F1 over
(PMID, id) pairs, per type and over all types. Composite ids count once per
id ("D014786|D006311" gives two), "-1" counts for nothing. Scores are
fractions.

`evaluate_linking` runs a pipeline over corpus examples either end to end
(entities from `ner`, ids from `biobert_linker`) or on the gold mentions
(the reference's entities, without ids, put on the docs; only the
abbreviation and linker components run), which isolates normalisation.
"""

from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import filter_spans

from ..errors import Errors
from ..extensions import MENTIONS_KEY, mention_ids
from .scores import pipe_docs, score_tuples

LINKING_FACTORIES = ("biobert_abbreviations", "biobert_linker")
Concepts = Dict[str, Set[str]]


def gold_concepts(doc: Doc, label_map: Optional[Dict[str, str]] = None) -> Concepts:
    """{type: ids} of a gold doc's mentions (`doc.spans["mentions"]`, else doc.ents)."""
    spans = doc.spans[MENTIONS_KEY] if MENTIONS_KEY in doc.spans else doc.ents
    out: Concepts = {}
    for span in spans:
        label = (label_map or {}).get(span.label_, span.label_)
        out.setdefault(label, set()).update(mention_ids(span))
    return out


def predicted_concepts(doc: Doc) -> Concepts:
    """{type: ids} of a processed doc's entities (`kb_id_`)."""
    out: Concepts = {}
    for ent in doc.ents:
        out.setdefault(ent.label_, set()).update(mention_ids(ent))
    return out


def score_concepts(docs: Iterable[Tuple[Any, Concepts, Concepts]]) -> Dict[str, Any]:
    """Micro P/R/F1 (fractions) over (document, id) pairs per type and over
    all types, from (document id, gold {type: ids}, predicted {type: ids});
    each item is one document, whatever its id."""
    gold: Set[Tuple[int, str, str]] = set()
    pred: Set[Tuple[int, str, str]] = set()
    labels: Set[str] = set()  # a type with no ids (only "-1") still gets a row
    n = 0
    for n, (_doc_id, gold_ids, pred_ids) in enumerate(docs, start=1):
        for side, concepts in ((gold, gold_ids), (pred, pred_ids)):
            labels.update(concepts)
            side.update((n, cid, label) for label, ids in concepts.items() for cid in ids)
    micro, per_type = score_tuples(gold, pred, labels)
    return {
        "documents": n,
        "micro": micro.as_dict(),
        "per_type": {label: prf.as_dict() for label, prf in per_type.items()},
    }


def linking_components(nlp: Any) -> List[str]:
    """Names of the pipeline's abbreviation and linker components, in order."""
    return [
        name
        for name in nlp.pipe_names
        if nlp.get_pipe_meta(name).factory in LINKING_FACTORIES
    ]


def evaluate_linking(
    nlp: Any,
    examples: Iterable[Example],
    *,
    gold_mentions: bool = False,
    batch_size: int = 32,
    label_map: Optional[Dict[str, str]] = None,
    progress: Optional[Callable[[int], Any]] = None,
) -> Dict[str, Any]:
    """Run `nlp` over the examples' texts and score document-level concept
    ids (`score_concepts`). gold_mentions: put each reference's entities
    (labels only) on the doc and run only the linking components; the
    result then also has `mention_accuracy` (per type and "ALL": the share
    of gold mentions with ids whose predicted ids are exactly theirs, as a
    fraction, with the counts `correct` and `mentions`)."""
    names = linking_components(nlp)
    if not any(nlp.get_pipe_meta(n).factory == "biobert_linker" for n in names):
        raise ValueError(
            Errors.E408.format(
                name="biobert_linker",
                what=f" (it has {', '.join(nlp.pipe_names) or 'none'})",
                fix="add one with `spacy-biobert add-linker MODEL KB OUTPUT`, or pass --kb.",
            )
        )
    examples = list(examples)
    if gold_mentions:
        docs_in = [_with_gold_entities(eg) for eg in examples]
        with nlp.select_pipes(enable=names):
            docs = list(pipe_docs(nlp, docs_in, batch_size, progress))
    else:
        docs = list(pipe_docs(nlp, (eg.predicted.copy() for eg in examples), batch_size, progress))
    scored = [
        (eg.reference._.doc_id or i, gold_concepts(eg.reference, label_map), predicted_concepts(doc))
        for i, (eg, doc) in enumerate(zip(examples, docs))
    ]
    result = score_concepts(scored)
    result["gold_mentions"] = gold_mentions
    if gold_mentions:
        result["mention_accuracy"] = _mention_accuracy(examples, docs)
    return result


def _with_gold_entities(eg: Example) -> Doc:
    pred = eg.predicted.copy()
    spans = []
    for ent in eg.reference.ents:
        span = pred.char_span(ent.start_char, ent.end_char, label=ent.label_, alignment_mode="expand")
        if span is not None and len(span):
            spans.append(span)
    pred.set_ents(filter_spans(spans), default="outside")
    return pred


def _mention_accuracy(examples: List[Example], docs: List[Doc]) -> Dict[str, Dict[str, Any]]:
    counts: Dict[str, List[int]] = {}
    for eg, doc in zip(examples, docs):
        pred = {(e.start_char, e.end_char): set(mention_ids(e)) for e in doc.ents}
        for ent in eg.reference.ents:
            gold = set(mention_ids(ent))
            if not gold:
                continue
            c = counts.setdefault(ent.label_, [0, 0])
            c[1] += 1
            c[0] += int(pred.get((ent.start_char, ent.end_char)) == gold)
    counts["ALL"] = [sum(ok for ok, _ in counts.values()), sum(n for _, n in counts.values())]
    return {
        label: {"accuracy": ok / total if total else 0.0, "correct": ok, "mentions": total}
        for label, (ok, total) in sorted(counts.items(), key=lambda kv: (kv[0] == "ALL", kv[0]))
    }
