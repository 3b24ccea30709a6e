"""The toy ChemProt-like task both pair-aware relation models are tested on
(tests/test_relation_marking.py, tests/test_relation_doc_marking.py), and the
listener config the relation tests share (LISTENER): two
sentences of chemicals and genes with CPR relations, docs built with gold
entities and relations, and a tiny BERT whose vocabulary holds the marker
characters."""

from pathlib import Path

import spacy
from conftest import write_tiny_bert
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_biobert.extensions import install_extensions

install_extensions()

LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "upstream": "biobert",
    "pooling": {"@layers": "reduce_mean.v1"},
}
SHARED_ENCODER = {"@architectures": "spacy-biobert.SharedTransformer.v1", "upstream": "biobert"}
CP_WORDS = "aspirin inhibits kinase and lithium activates receptor gene expression .".split()
CP_ENTS = [
    (0, 1, "CHEMICAL", "T1"),
    (2, 3, "GENE-Y", "T2"),
    (4, 5, "CHEMICAL", "T3"),
    (6, 7, "GENE-N", "T4"),
]
CP_RELS = [
    {"level": "mention", "head": "T1", "tail": "T2", "label": "CPR:4"},
    {"level": "mention", "head": "T3", "tail": "T4", "label": "CPR:3"},
]
TYPE_WORDS = {"CHEMICAL": "chemical", "GENE-Y": "gene", "GENE-N": "gene"}
PAIRS = [["CHEMICAL", "GENE-Y"], ["CHEMICAL", "GENE-N"]]
MARKER_CHARACTERS = "@*#^$"


def tiny_marker_bert(folder: Path) -> str:
    """The tiny random BERT of conftest, with the marker characters in its
    vocabulary (so that the markers decode as themselves, not [UNK])."""
    return str(write_tiny_bert(folder, MARKER_CHARACTERS))


def make_doc(vocab, words, ents=(), sents=None, relations=None, spaces=None):
    doc = Doc(vocab, words=words, spaces=spaces)
    if sents is not None:
        for i, token in enumerate(doc):
            token.is_sent_start = i in sents
    doc.ents = [Span(doc, s, e, label=lab, span_id=mid) for s, e, lab, mid in ents]
    doc._.gold_relations = relations
    return doc


def example(vocab, words, **kwargs):
    """An Example whose reference has the gold relations and whose predicted
    doc has the same entities and none."""
    reference = make_doc(vocab, words, **kwargs)
    kwargs["relations"] = None
    return Example(make_doc(vocab, words, **kwargs), reference)


def cp_examples(vocab):
    second = "lithium inhibits receptor and aspirin activates kinase .".split()
    ents2 = [
        (0, 1, "CHEMICAL", "T1"),
        (2, 3, "GENE-N", "T2"),
        (4, 5, "CHEMICAL", "T3"),
        (6, 7, "GENE-Y", "T4"),
    ]
    rels2 = [
        {"level": "mention", "head": "T1", "tail": "T2", "label": "CPR:4"},
        {"level": "mention", "head": "T3", "tail": "T4", "label": "CPR:3"},
    ]
    return [
        example(vocab, CP_WORDS, ents=CP_ENTS, relations=CP_RELS),
        example(vocab, second, ents=ents2, relations=rels2),
    ]


def relation_model_config(architecture: str, **overrides) -> dict:
    """A small pair-aware model on the `biobert` component's own weights."""
    cfg = {
        "@architectures": architecture,
        "encoder": SHARED_ENCODER,
        "type_words": TYPE_WORDS,
        "hidden_width": 16,
        "dropout": 0.0,
    }
    cfg.update(overrides)
    return cfg


def pair_aware_nlp(bert: str, architecture: str, *, ner=False, pairs=PAIRS, **overrides):
    """`biobert` (+ a listening `ner` with ner=True) + `biobert_relations`
    with the pair-aware `architecture`; overrides go to its model."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": bert}})
    if ner:
        nlp.add_pipe("ner", config={"model": {"tok2vec": LISTENER}})
    nlp.add_pipe(
        "biobert_relations",
        config={
            "candidates": {"@misc": "spacy-biobert.EntityPairs.v1", "allowed_pairs": pairs},
            "model": relation_model_config(architecture, **overrides),
        },
    )
    return nlp
