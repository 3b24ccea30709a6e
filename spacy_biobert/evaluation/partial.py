"""Entity scores when a corpus annotates only some types.

A Gene prediction on BC5CDR (which has no gene annotation) is neither right
nor wrong: it is left out of P/R/F and counted under `ents_unscored`. Which
types an example's corpus annotates comes from the reference Doc
(`spacy-biobert.MultiCorpus.v1` sets it); without that, the types present
in the example's gold are not enough to tell (an abstract with no disease
still has its diseases annotated), so every prediction is scored, as
spaCy's `ner_scorer` does.
"""

from collections import Counter, defaultdict
from typing import Any, Dict, Iterable, List, Optional, Sequence

from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..extensions import ANNOTATED_TYPES_KEY, CORPUS_KEY


def annotated_types(doc: Doc) -> Optional[List[str]]:
    """The entity types the corpus of a reference Doc annotates (None: not
    said, i.e. a single-corpus reader: every type it has is annotated)."""
    types = doc.user_data.get(ANNOTATED_TYPES_KEY)
    return None if types is None else list(types)


def _restrict(eg: Example, labels: Sequence[str]) -> Example:
    predicted = eg.predicted.copy()
    predicted.set_ents([e for e in predicted.ents if e.label_ in labels], default="outside")
    return Example(predicted, eg.reference)


def partial_ner_score(
    examples: Iterable[Example], labels: Optional[Sequence[str]] = None, **kwargs: Any
) -> Dict[str, Any]:
    """spaCy's entity P/R/F (fractions), counting only predictions of types
    the example's corpus annotates (or `labels`, when given); per corpus
    under `ents_per_corpus`, and the predictions left out under
    `ents_unscored` ({label: count})."""
    unscored: Counter = Counter()
    scored = []
    by_corpus: Dict[str, list] = defaultdict(list)
    for eg in examples:
        types = list(labels) if labels is not None else annotated_types(eg.reference)
        if types is not None:
            unscored.update(e.label_ for e in eg.predicted.ents if e.label_ not in types)
            eg = _restrict(eg, types)
        scored.append(eg)
        by_corpus[str(eg.reference.user_data.get(CORPUS_KEY, ""))].append(eg)
    scores = get_ner_prf(scored)
    scores["ents_unscored"] = dict(sorted(unscored.items()))
    if len(by_corpus) > 1:
        scores["ents_per_corpus"] = {}
        for name, egs in sorted(by_corpus.items()):
            prf = get_ner_prf(egs)
            scores["ents_per_corpus"][name or "unnamed"] = {
                "p": prf["ents_p"], "r": prf["ents_r"], "f": prf["ents_f"]
            }
    return scores


@registry.scorers("spacy-biobert.partial_ner_scorer.v1")
def make_partial_ner_scorer():
    return partial_ner_score
