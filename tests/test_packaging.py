"""configs/assemble.cfg with `spacy assemble`: NER and relations sourced from two
pipelines, each with its own transformer, relations set to predicted entities
(spacy-biobert.ConfigureComponents.v1)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span
from spacy.util import registry
from tiny_pipelines import save_tiny_ner_pipeline, save_tiny_relation_pipeline, tiny_relation_pipeline

from spacy_biobert.linking.kb import NameKB

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def assembled(tiny_bert, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("assemble")
    ner = save_tiny_ner_pipeline(tiny_bert, tmp / "ner")
    rel = save_tiny_relation_pipeline(tiny_bert, tmp / "rel", kb_ids=False, gold_entities=True)
    kb = NameKB()
    kb.add("cocaine", "D003042", "Chemical")
    kb.add("seizures", "D012640", "Disease")
    kb.build().to_disk(tmp / "kb")
    out = tmp / "assembled"
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "assemble", str(ROOT / "configs" / "assemble.cfg"), str(out),
         "--paths.ner", ner, "--paths.relations", rel, "--paths.kb", str(tmp / "kb")],
        capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return out


def test_assembled_pipeline_has_own_transformers_and_predicted_entities(assembled):
    cfg = json.loads((assembled / "biobert_relations" / "cfg").read_text())
    assert cfg["gold_entities"] is False and cfg["labels"] == ["CID"]
    nlp = spacy.load(assembled)
    assert nlp.pipe_names == ["ner", "biobert_abbreviations", "biobert_linker", "biobert_relations"]
    assert nlp.config["components"]["biobert_relations"]["gold_entities"] is False
    for name in ("ner", "biobert_relations"):
        tok2vec = nlp.config["components"][name]["model"]["tok2vec"]
        assert tok2vec["@architectures"] == "spacy-biobert.Tok2VecTransformer.v1"
    assert type(nlp.tokenizer).__name__ == "Tokenizer"
    assert nlp.config["nlp"]["tokenizer"]["@tokenizers"] == "spacy-biobert.BiomedicalTokenizer.v1"
    doc = nlp("cocaine induced seizures")
    assert isinstance(doc._.relations, dict)
    doc = nlp.make_doc("cocaine induced seizures")
    doc.ents = [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 3, "Disease")]
    for name in ("biobert_linker", "biobert_relations"):
        doc = nlp.get_pipe(name)(doc)
    assert [e.kb_id_ for e in doc.ents] == ["D003042", "D012640"]
    assert list(doc._.relations) == [(0, 2)] and 0 <= doc._.relations[(0, 2)]["CID"] <= 1
    # The linked ids are what document-level CID is aggregated by.
    assert list(doc._.kb_relations) == [("D003042", "D012640")]


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
