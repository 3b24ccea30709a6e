"""One training corpus out of several that annotate different entity types.

```
[corpora.train]
@readers = "spacy-biobert.MultiCorpus.v1"
annotates = null        # {corpus: [types]}; default: the types its gold has
repeat = {"chemprot": 2}  # copies of a corpus's documents per pass (default 1)

[corpora.train.corpora.bc5cdr]
@readers = "spacy-biobert.PubTatorCorpus.v1"
path = ${paths.bc5cdr_train}

[corpora.train.corpora.chemprot]
@readers = "spacy-biobert.ChemProtCorpus.v1"
path = ${paths.chemprot_train}
label_map = {"CHEMICAL": "Chemical", "GENE-Y": "Gene", "GENE-N": "Gene"}
```
Each reference Doc is marked with its corpus's name and the types that
corpus annotates, so `biobert_ner` heads learn only from the corpora that
annotate their types and the scorer does not count, say, a Gene prediction
on BC5CDR as wrong. The reference also gets every gold mention under its
mapped type in `doc.spans["biobert_typed_gold"]` (`typed_gold_key`), overlaps
included (ChemProt nests chemicals in gene names; `doc.ents` keeps only the
longest). A relation component trained on gold entities can take its
candidates from that group: name it after the group the `biobert_ner` heads
predict into (`typed_gold_key = "biobert_ner"`), and the same candidate
setting serves gold entities in training and predicted ones end to end.

`repeat` gives a corpus a larger share of the training steps: each pass over
the training data yields its documents that many times (copies; spaCy shuffles
them with the rest). In a joint pipeline where only one corpus carries a
component's labels (biomed: ChemProt alone has (Chemical, Gene) relations),
that component otherwise learns from a fraction of each batch.
"""

from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from ..errors import Errors
from ..extensions import ANNOTATED_TYPES_KEY, CORPUS_KEY, MENTIONS_KEY, TYPED_GOLD_KEY

Reader = Callable[[Language], Iterable[Example]]


class MultiCorpus:
    def __init__(
        self,
        corpora: Dict[str, Reader],
        annotates: Optional[Dict[str, List[str]]] = None,
        typed_gold_key: str = TYPED_GOLD_KEY,
        repeat: Optional[Dict[str, int]] = None,
    ):
        if not corpora:
            raise ValueError(Errors.E703)
        for setting, names in (("annotates", annotates), ("repeat", repeat)):
            for name in names or {}:
                if name not in corpora:
                    raise ValueError(
                        Errors.E704.format(setting=setting, name=name, known=", ".join(corpora))
                    )
        for name, times in (repeat or {}).items():
            if isinstance(times, bool) or not isinstance(times, int) or times < 1:
                raise ValueError(Errors.E705.format(name=name, value=times))
        self.repeat: Dict[str, int] = dict(repeat or {})
        self.corpora = dict(corpora)
        self.typed_gold_key = typed_gold_key
        self.annotates: Dict[str, List[str]] = {
            k: sorted(str(t) for t in v) for k, v in (annotates or {}).items()
        }

    def types_of(self, name: str, nlp: Language) -> List[str]:
        """The types a corpus annotates: as configured, or those its gold has
        (found by one pass over it, then remembered)."""
        if name not in self.annotates:
            found = set()
            for eg in self.corpora[name](nlp):
                found.update(s.label_ for s in _typed_gold(eg, self.corpora[name]))
            self.annotates[name] = sorted(found)
        return self.annotates[name]

    def __call__(self, nlp: Language) -> Iterator[Example]:
        for name, reader in self.corpora.items():
            types = self.types_of(name, nlp)
            for eg in reader(nlp):
                reference = eg.reference
                typed = _typed_gold(eg, reader)
                reference.spans[self.typed_gold_key] = typed
                if self.typed_gold_key != TYPED_GOLD_KEY:
                    reference.spans[TYPED_GOLD_KEY] = typed
                reference.user_data[ANNOTATED_TYPES_KEY] = list(types)
                reference.user_data[CORPUS_KEY] = name
                yield eg
                for _ in range(self.repeat.get(name, 1) - 1):
                    yield eg.copy()


def _typed_gold(eg: Example, reader: Reader) -> List[Span]:
    return typed_gold_spans(eg.reference, getattr(reader, "label_map", None))


def typed_gold_spans(reference: Doc, label_map: Optional[Dict[str, str]] = None) -> List[Span]:
    """All gold mentions of a reference Doc (overlapping ones too) under their
    mapped types; the entities alone for readers that keep no mention group."""
    if MENTIONS_KEY not in reference.spans:
        return list(reference.ents)
    label_map = label_map or {}
    return [
        Span(reference, s.start, s.end, label=label_map.get(s.label_, s.label_), kb_id=s.kb_id_)
        for s in reference.spans[MENTIONS_KEY]
    ]


@registry.readers("spacy-biobert.MultiCorpus.v1")
def create_multi_corpus(
    # Any, not Reader: thinc validates a dict of promises before resolving it
    corpora: Dict[str, Any],
    annotates: Optional[Dict[str, List[str]]] = None,
    typed_gold_key: str = TYPED_GOLD_KEY,
    repeat: Optional[Dict[str, int]] = None,
) -> MultiCorpus:
    """Examples of several corpora in turn (spaCy shuffles the training
    examples each epoch), each marked with its name and annotated types, with
    every gold mention under its mapped type in doc.spans[typed_gold_key];
    `repeat` {corpus: n} yields a corpus's documents n times a pass."""
    return MultiCorpus(corpora, annotates, typed_gold_key, repeat)
