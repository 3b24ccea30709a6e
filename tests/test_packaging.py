"""The release pipeline: configs/package.cfg with `spacy assemble` sources
biobert, ner and biobert_relations from ONE jointly trained pipeline, so both
components listen to a single transformer; relations then run on predicted
entities (spacy-biobert.ConfigureComponents.v1), and what every writer writes
is what the scorer scores."""
import json
import os
import subprocess
import sys
from pathlib import Path

import bioc
import pytest
import spacy
from spacy.tokens import Span
from spacy.training import Example
from spacy.util import registry
from spacy_transformers import Transformer
from tiny_pipelines import JOINT_PUBTATOR, save_tiny_joint_pipeline, tiny_relation_pipeline

from spacy_biobert.corpora import write_bioc_xml, write_pubtator
from spacy_biobert.corpora.jsonl import write_jsonl
from spacy_biobert.evaluation.relations import score_document_relations
from spacy_biobert.extensions import document_relations
from spacy_biobert.linking.kb import NameKB

ROOT = Path(__file__).resolve().parents[1]
IDS = {
    "cocaine": ("D003042", "Chemical"),
    "lithium": ("D008094", "Chemical"),
    "naloxone": ("D009270", "Chemical"),
    "seizures": ("D012640", "Disease"),
    "hypertension": ("D006973", "Disease"),
    "hypotension": ("D007022", "Disease"),
}


@pytest.fixture(scope="module")
def joint(tiny_bert, tmp_path_factory):
    """The trained pipeline (gold_entities = true), as configs/bc5cdr.cfg trains it."""
    return save_tiny_joint_pipeline(tiny_bert, tmp_path_factory.mktemp("joint") / "joint", steps=2)


@pytest.fixture(scope="module")
def release(joint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    kb = NameKB()
    for name, (kb_id, label) in IDS.items():
        kb.add(name, kb_id, label)
    kb.build().to_disk(tmp / "kb")
    out = tmp / "release"
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "assemble", str(ROOT / "configs" / "package.cfg"), str(out),
         "--paths.model", joint, "--paths.kb", str(tmp / "kb")],
        capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return out


@pytest.fixture(scope="module")
def release_nlp(release):
    return spacy.load(release)


def given_entities(nlp, text, ents):
    """A doc of `text` with entities (token start, end, label), run through
    the transformer, the linker and the relations (ner left out)."""
    doc = nlp.make_doc(text)
    doc.ents = [Span(doc, s, e, label) for s, e, label in ents]
    with nlp.select_pipes(enable=["biobert", "biobert_abbreviations", "biobert_linker", "biobert_relations"]):
        return nlp(doc)


def test_release_holds_one_transformer_that_both_components_listen_to(release, release_nlp):
    nlp = release_nlp
    assert nlp.pipe_names == [
        "biobert", "ner", "biobert_abbreviations", "biobert_linker", "biobert_relations"
    ]
    transformers = [name for name, pipe in nlp.pipeline if isinstance(pipe, Transformer)]
    assert transformers == ["biobert"]
    assert nlp.get_pipe("biobert").listening_components == ["ner", "biobert_relations"]
    config = (release / "config.cfg").read_text()
    assert config.count('@architectures = "spacy-transformers.TransformerListener.v1"') == 2
    assert "Tok2VecTransformer" not in config
    # The transformer's weights are saved once, with biobert, not with a listener.
    def holds_transformer(name):
        return any(b"word_embeddings" in p.read_bytes() for p in (release / name).rglob("*") if p.is_file())

    assert holds_transformer("biobert")
    assert not holds_transformer("ner") and not holds_transformer("biobert_relations")
    # Relations trained on gold entities run on predicted ones in the release.
    cfg = json.loads((release / "biobert_relations" / "cfg").read_text())
    assert cfg["gold_entities"] is False and cfg["labels"] == ["CID"] and cfg["concept_labels"] == ["CID"]
    assert nlp.config["components"]["biobert_relations"]["gold_entities"] is False
    doc = nlp("Cocaine induced seizures.")
    assert isinstance(doc._.relations, dict) and isinstance(doc._.kb_relations, dict)


def test_relations_aggregate_by_linked_ids(release_nlp):
    doc = given_entities(
        release_nlp, "naloxone reverses the hypotension of cocaine .",
        [(0, 1, "Chemical"), (3, 4, "Disease"), (5, 6, "Chemical")],
    )
    assert [e.kb_id_ for e in doc.ents] == ["D009270", "D007022", "D003042"]
    assert sorted(doc._.relations) == [(0, 3), (5, 3)]  # Chemical -> Disease only
    assert sorted(doc._.kb_relations) == [("D003042", "D007022"), ("D009270", "D007022")]
    assert doc._.relation_levels == {"CID": "concept"}


def test_select_pipes_ner_only_and_relations_only(release_nlp):
    nlp = release_nlp
    with nlp.select_pipes(disable=["biobert_relations"]):
        doc = nlp("Cocaine induced seizures.")
    assert doc._.relations is None and doc._.kb_relations is None
    # Relations only, on entities a user gives (e.g. from another recogniser).
    doc = given_entities(nlp, "cocaine induced seizures", [(0, 1, "Chemical"), (2, 3, "Disease")])
    assert list(doc._.kb_relations) == [("D003042", "D012640")]


def test_no_entities_one_type_and_hundreds_of_mentions(release_nlp):
    nlp = release_nlp
    doc = given_entities(nlp, "the rats were fine .", [])
    assert doc._.relations == {} and doc._.kb_relations == {}
    doc = given_entities(nlp, "cocaine and lithium .", [(0, 1, "Chemical"), (2, 3, "Chemical")])
    assert doc._.relations == {} and doc._.kb_relations == {}
    words = " ".join(["cocaine hypotension"] * 150)  # 150 x 150 Chemical -> Disease pairs
    ents = [(i, i + 1, "Chemical" if i % 2 == 0 else "Disease") for i in range(300)]
    doc = given_entities(nlp, words, ents)
    assert len(doc._.relation_pairs) == 150 * 150
    assert list(doc._.kb_relations) == [("D003042", "D007022")]


def test_written_relations_are_the_scored_relations(release_nlp, tmp_path):
    """JSONL, PubTator and BioC write the document-level relations of
    `doc._.kb_relations` that score_document_relations scores, at any threshold."""
    nlp = release_nlp
    path = tmp_path / "gold.pubtator"
    path.write_text(JOINT_PUBTATOR, encoding="utf8")
    reader = registry.readers.get("spacy-biobert.PubTatorCorpus.v1")(path=str(path))
    refs = [eg.reference for eg in reader(nlp)]
    docs = []
    for ref in refs:
        doc = given_entities(
            nlp, ref.text, [(e.start, e.end, e.label_) for e in ref.ents]
        )
        doc._.doc_id = ref._.doc_id
        docs.append(doc)
    probs = sorted({p for doc in docs for s in doc._.kb_relations.values() for p in s.values()})
    assert len(probs) > 1
    for threshold in (0.0, probs[len(probs) // 2]):
        expected = {
            (doc._.doc_id, r["head"], r["tail"], r["label"])
            for doc in docs for r in document_relations(doc, threshold)
        }
        assert 0 < len(expected)
        gold = {
            (ref._.doc_id, r["head"], r["tail"], r["label"])
            for ref in refs for r in ref._.gold_relations
        }
        scores = score_document_relations(
            [Example(doc, ref) for doc, ref in zip(docs, refs)], threshold, labels=["CID"]
        )
        counts = scores["rel_doc_counts"]
        assert counts == {"tp": len(gold & expected), "fp": len(expected - gold), "fn": len(gold - expected)}

        write_jsonl(docs, tmp_path / "out.jsonl", threshold=threshold)
        written = set()
        for line in (tmp_path / "out.jsonl").read_text().splitlines():
            obj = json.loads(line)
            for r in obj.get("predicted_relations", []):
                assert r["level"] == "concept"
                written.add((obj["id"], r["head"], r["tail"], r["label"]))
        assert written == expected

        write_pubtator(docs, tmp_path / "out.pubtator", threshold=threshold)
        lines = [line.split("\t") for line in (tmp_path / "out.pubtator").read_text().splitlines()]
        assert {(c[0], c[2], c[3], c[1]) for c in lines if len(c) == 4} == expected

        write_bioc_xml(docs, tmp_path / "out.xml", threshold=threshold)
        with open(tmp_path / "out.xml", encoding="utf8") as fp:
            collection = bioc.biocxml.load(fp)
        written = {
            (d.id, r.infons["head"], r.infons["tail"], r.infons["type"])
            for d in collection.documents for r in d.relations
        }
        assert written == expected


def test_gold_entity_evaluation_of_the_joint_pipeline_keeps_gold_entities(joint, tmp_path):
    """evaluate_relations on the trained pipeline (gold_entities = true) runs only
    the transformer and the relations: at threshold 0 exactly the (chemical
    id, disease id) pairs of the gold entities are predicted."""
    from spacy_biobert.evaluation.relations import evaluate_relations

    nlp = spacy.load(joint)
    # A linker that would give every entity another id: it must not run.
    wrong = NameKB()
    for name, (_, label) in IDS.items():
        wrong.add(name, "D999999", label)
    nlp.get_pipe("biobert_linker").set_kb(wrong.build())
    path = tmp_path / "gold.pubtator"
    path.write_text(JOINT_PUBTATOR, encoding="utf8")
    examples = list(registry.readers.get("spacy-biobert.PubTatorCorpus.v1")(path=str(path))(nlp))
    pairs = set()
    for eg in examples:
        ents = eg.reference.ents
        pairs |= {
            (eg.reference._.doc_id, h.kb_id_, t.kb_id_)
            for h in ents if h.label_ == "Chemical" for t in ents if t.label_ == "Disease"
        }
    scores = evaluate_relations(nlp, examples, thresholds=[0.0])[0.0]
    counts = scores["rel_doc_counts"]
    assert counts["fn"] == 0 and counts["tp"] + counts["fp"] == len(pairs)


def test_configure_components_sets_config_and_cfg(tiny_bert):
    nlp = tiny_relation_pipeline(tiny_bert, kb_ids=False, gold_entities=True)
    configure = registry.callbacks.get("spacy-biobert.ConfigureComponents.v1")
    configure({"biobert_relations": {"gold_entities": False, "threshold": 0.7}})(nlp)
    pipe = nlp.get_pipe("biobert_relations")
    assert pipe.cfg["gold_entities"] is False and pipe.threshold == 0.7
    assert nlp.config["components"]["biobert_relations"]["threshold"] == 0.7
    with pytest.raises(ValueError, match=r"E502.*'relations'.*biobert_relations"):
        configure({"relations": {"gold_entities": False}})(nlp)
    with pytest.raises(ValueError, match=r"E503.*'model'.*gold_entities"):
        configure({"biobert_relations": {"model": None}})(nlp)
    with pytest.raises(ValueError, match=r"E503.*'foo' of component 'entity_ruler'"):
        configure({"entity_ruler": {"foo": 1}})(nlp)
    assert configure(None)(nlp) is nlp
