"""Document-level concept-id scores, as BioCreative V's DNER task scored
normalisation: per document and entity type, the *set* of ids of the gold
mentions against the set of ids of the predicted entities; micro P/R/F1 over
(PMID, id) pairs, per type and over all types. Composite ids count once per
id ("D014786|D006311" gives two), "-1" counts for nothing.

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
from ..extensions import MENTIONS_KEY

LINKING_FACTORIES = ("biobert_abbreviations", "biobert_linker")
Concepts = Dict[str, Set[str]]


def _ids(span_or_id: Any) -> List[str]:
    from ..corpora._base import mention_ids

    return mention_ids(span_or_id)


def gold_concepts(doc: Doc, label_map: Optional[Dict[str, str]] = None) -> Concepts:
    """{type: ids} of a gold doc's mentions (`doc.spans["mentions"]`, else doc.ents)."""
    spans = doc.spans[MENTIONS_KEY] if MENTIONS_KEY in doc.spans else doc.ents
    out: Concepts = {}
    for span in spans:
        label = (label_map or {}).get(span.label_, span.label_)
        out.setdefault(label, set()).update(_ids(span))
    return out


def predicted_concepts(doc: Doc) -> Concepts:
    """{type: ids} of a processed doc's entities (`kb_id_`)."""
    out: Concepts = {}
    for ent in doc.ents:
        out.setdefault(ent.label_, set()).update(_ids(ent))
    return out


def _prf(tp: int, fp: int, fn: int) -> Dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": 100 * p, "r": 100 * r, "f": 100 * f, "tp": tp, "fp": fp, "fn": fn}


def score_concepts(docs: Iterable[Tuple[Any, Concepts, Concepts]]) -> Dict[str, Any]:
    """Micro P/R/F1 (in percent) over (document, id) pairs per type and over
    all types, from (document id, gold {type: ids}, predicted {type: ids})."""
    counts: Dict[str, List[int]] = {}
    n = 0
    for _doc_id, gold, pred in docs:
        n += 1
        for label in set(gold) | set(pred):
            g, p = gold.get(label, set()), pred.get(label, set())
            c = counts.setdefault(label, [0, 0, 0])
            c[0] += len(g & p)
            c[1] += len(p - g)
            c[2] += len(g - p)
    totals = [sum(c[i] for c in counts.values()) for i in range(3)]
    return {
        "documents": n,
        "micro": _prf(*totals),
        "per_type": {label: _prf(*c) for label, c in sorted(counts.items())},
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
    result then also has `mention_accuracy` (per type: the share of gold
    mentions with ids whose predicted ids are exactly theirs)."""
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
            docs = list(_pipe(nlp, docs_in, batch_size, progress))
    else:
        docs = list(_pipe(nlp, (eg.predicted.copy() for eg in examples), batch_size, progress))
    scored = [
        (eg.reference._.doc_id or i, gold_concepts(eg.reference, label_map), predicted_concepts(doc))
        for i, (eg, doc) in enumerate(zip(examples, docs))
    ]
    result = score_concepts(scored)
    result["gold_mentions"] = gold_mentions
    if gold_mentions:
        result["mention_accuracy"] = _mention_accuracy(examples, docs)
    return result


def _pipe(nlp: Any, docs: Iterable[Doc], batch_size: int, progress: Optional[Callable[[int], Any]]):
    for doc in nlp.pipe(docs, batch_size=batch_size):
        if progress is not None:
            progress(1)
        yield doc


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
        pred = {(e.start_char, e.end_char): set(_ids(e)) for e in doc.ents}
        for ent in eg.reference.ents:
            gold = set(_ids(ent))
            if not gold:
                continue
            c = counts.setdefault(ent.label_, [0, 0])
            c[1] += 1
            c[0] += int(pred.get((ent.start_char, ent.end_char)) == gold)
    out = {
        label: {"accuracy": 100 * ok / total if total else 0.0, "mentions": total}
        for label, (ok, total) in sorted(counts.items())
    }
    ok_all = sum(ok for ok, _ in counts.values())
    total_all = sum(total for _, total in counts.values())
    out["ALL"] = {"accuracy": 100 * ok_all / total_all if total_all else 0.0, "mentions": total_all}
    return out
