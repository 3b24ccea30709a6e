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


def relation_config(gold_entities: bool, threshold: float = 0.5) -> dict:
    """A small `biobert_relations` listening to `biobert`, Chemical -> Disease pairs."""
    return {
        "gold_entities": gold_entities,
        "threshold": threshold,
        "candidates": {
            "@misc": "spacy-biobert.EntityPairs.v1",
            "allowed_pairs": [["Chemical", "Disease"]],
        },
        "model": {"tok2vec": LISTENER, "width": 16, "hidden_width": 16},
    }


def tiny_relation_pipeline(
    tiny_bert: str, kb_ids: bool = True, gold_entities: bool = False, threshold: float = 0.5
):
    """kb_ids=False leaves out the test-only component, so that the saved
    pipeline loads in another process too."""
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    ruler = nlp.add_pipe("entity_ruler")
    if kb_ids:
        nlp.add_pipe("test_kb_ids_from_ruler")
    nlp.add_pipe("biobert_relations", config=relation_config(gold_entities, threshold))
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
    tiny_bert: str, path: Path, kb_ids: bool = True, gold_entities: bool = False,
    threshold: float = 0.5,
) -> str:
    nlp = tiny_relation_pipeline(
        tiny_bert, kb_ids=kb_ids, gold_entities=gold_entities, threshold=threshold
    )
    nlp.to_disk(path)
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


# A BC5CDR-like PubTator file: Chemical/Disease mentions with MeSH ids and CID.
def write_bc5cdr_corpora(tmp_path: Path, pubtator: str) -> Path:
    """TMP_PATH/corpora with PUBTATOR as BC5CDR's train and dev files (what
    the configs read under --paths.corpora)."""
    corpora = tmp_path / "corpora"
    (corpora / "bc5cdr").mkdir(parents=True)
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        (corpora / "bc5cdr" / name).write_text(pubtator)
    return corpora


JOINT_PUBTATOR = """\
1|t|Cocaine induced seizures.
1|a|Lithium causes hypertension in rats, and naloxone reverses hypotension.
1\t0\t7\tCocaine\tChemical\tD003042
1\t16\t24\tseizures\tDisease\tD012640
1\t26\t33\tLithium\tChemical\tD008094
1\t41\t53\thypertension\tDisease\tD006973
1\t67\t75\tnaloxone\tChemical\tD009270
1\t85\t96\thypotension\tDisease\tD007022
1\tCID\tD003042\tD012640
1\tCID\tD008094\tD006973

2|t|Lithium and seizures.
2|a|Cocaine was associated with hypotension.
2\t0\t7\tLithium\tChemical\tD008094
2\t12\t20\tseizures\tDisease\tD012640
2\t22\t29\tCocaine\tChemical\tD003042
2\t50\t61\thypotension\tDisease\tD007022
2\tCID\tD003042\tD007022
"""


def tiny_joint_pipeline(tiny_bert: str, pubtator: Path, steps: int = 0):
    """configs/bc5cdr.cfg in miniature: one `biobert` that `ner` and
    `biobert_relations` (gold_entities, CID at concept level) both listen to,
    with `biobert_abbreviations` + `biobert_linker` (KB from the gold ids)
    between them; initialized on `pubtator` and updated `steps` times."""
    from spacy.util import registry

    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    nlp.add_pipe("ner", config={"model": {"tok2vec": LISTENER}})
    nlp.add_pipe("biobert_abbreviations")
    nlp.add_pipe("biobert_linker")
    nlp.add_pipe("biobert_relations", config=relation_config(gold_entities=True))
    reader = registry.readers.get("spacy-biobert.PubTatorCorpus.v1")(path=str(pubtator))
    examples = list(reader(nlp))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    return nlp


def save_tiny_joint_pipeline(tiny_bert: str, path: Path, steps: int = 0) -> str:
    path.mkdir(parents=True, exist_ok=True)
    pubtator = path.parent / f"{path.name}.pubtator"
    pubtator.write_text(JOINT_PUBTATOR, encoding="utf8")
    tiny_joint_pipeline(tiny_bert, pubtator, steps=steps).to_disk(path / "model")
    return str(path / "model")


# One sentence with one (Chemical, Disease) pair, and one with a chemical alone
# (bench tests count wordpieces and pairs on it; `cid=True` states the pair's CID).
def one_pair_pubtator(cid: bool = False) -> str:
    relation = "1\tCID\tD003042\tD012640\n" if cid else ""
    return (
        "1|t|Cocaine induced seizures.\n1|a|\n"
        "1\t0\t7\tCocaine\tChemical\tD003042\n1\t16\t24\tseizures\tDisease\tD012640\n"
        + relation
        + "\n2|t|Aspirin was the drug.\n2|a|\n2\t0\t7\tAspirin\tChemical\tD001241\n"
    )
