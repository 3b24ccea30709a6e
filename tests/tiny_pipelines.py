"""A tiny NER + relations pipeline for render and serve tests: the tiny random
BERT of conftest, an entity ruler giving entities with kb ids (so the output
is known), and an untrained `biobert_relations` (scores near 0.5: tests use
threshold 0 to see every candidate pair)."""
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

PATTERNS = [
    {"label": "Chemical", "pattern": "cocaine", "id": "D003042"},
    {"label": "Chemical", "pattern": "lithium", "id": "D008094"},
    {"label": "Chemical", "pattern": "naloxone", "id": "D009270"},
    {"label": "Disease", "pattern": "hypertension", "id": "D006973"},
    {"label": "Disease", "pattern": "seizures", "id": "D012640"},
    {"label": "Disease", "pattern": "hypotension", "id": "D007022"},
]



@Language.component("test_kb_ids_from_ruler")
def kb_ids_from_ruler(doc: Doc) -> Doc:
    """The entity ruler's pattern ids as kb ids (what a linker would set).
    Registered here, so pipelines using it load in the test process only."""
    doc.ents = [
        Span(doc, e.start, e.end, label=e.label_, kb_id=e.ent_id_) for e in doc.ents
    ]
    return doc


LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "upstream": "biobert",
    "pooling": {"@layers": "reduce_mean.v1"},
}


def tiny_relation_pipeline(tiny_bert: str, kb_ids: bool = True, gold_entities: bool = False):
    """kb_ids=False leaves out the test-only component, so that the saved
    pipeline loads in another process too."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    ruler = nlp.add_pipe("entity_ruler")
    if kb_ids:
        nlp.add_pipe("test_kb_ids_from_ruler")
    nlp.add_pipe(
        "biobert_relations",
        config={
            "gold_entities": gold_entities,
            "model": {
                "tok2vec": LISTENER,
                "width": 16,
                "hidden_width": 16,
                "get_candidates": {
                    "@misc": "spacy-biobert.EntityPairs.v1",
                    "allowed_pairs": [["Chemical", "Disease"]],
                },
            }
        },
    )
    text = "cocaine induced seizures"
    sample = [Example(nlp.make_doc(text), nlp.make_doc(text))]
    # Component by component: nlp.initialize() would empty the ruler.
    nlp.get_pipe("biobert").initialize(lambda: sample, nlp=nlp)
    nlp.get_pipe("biobert_relations").initialize(
        lambda: sample, nlp=nlp, labels=["CID"], concept_labels=["CID"]
    )
    ruler.add_patterns(PATTERNS)
    return nlp


def save_tiny_relation_pipeline(
    tiny_bert: str, path: Path, kb_ids: bool = True, gold_entities: bool = False
) -> str:
    tiny_relation_pipeline(tiny_bert, kb_ids=kb_ids, gold_entities=gold_entities).to_disk(path)
    return str(path)


def save_tiny_ner_pipeline(tiny_bert: str, path: Path) -> str:
    """biobert + an untrained listener `ner` (Chemical, Disease)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    nlp.add_pipe("ner", config={"model": {"tok2vec": LISTENER}})
    for label in ("Chemical", "Disease"):
        nlp.get_pipe("ner").add_label(label)
    nlp.initialize()
    nlp.to_disk(path)
    return str(path)
