"""Relation training data is checked before the first step: each way a
relation component used to train silently on nothing (loss 0.00, scores
0.00, exit 0) is a coded error naming its cause; what still trains but looks
wrong is a coded warning. Also: `add_label` sticks through `initialize`, and
`import spacy_biobert` registers every extension."""
import logging
import subprocess
import sys

import pytest
import spacy
from own_data import documents, write_jsonl
from relation_toys import LISTENER
from spacy.tokens import DocBin
from spacy.util import registry

import spacy_biobert  # noqa: F401
from spacy_biobert.training.data_checks import check_relation_data

PAIRS = [["Drug", "AdverseEvent"]]


def make_nlp(tiny_bert, allowed_pairs=PAIRS, gold_entities=True, **candidates):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    nlp.add_pipe("biobert_relations", config={
        "gold_entities": gold_entities,
        "candidates": {"@misc": "spacy-biobert.EntityPairs.v1", "allowed_pairs": allowed_pairs,
                       **candidates},
        "model": {"tok2vec": LISTENER, "width": 16, "hidden_width": 16},
    })
    return nlp


def jsonl_examples(nlp, tmp_path, docs):
    path = write_jsonl(tmp_path / "train.jsonl", docs)
    return list(registry.readers.get("spacy-biobert.JSONLCorpus.v1")(path=str(path))(nlp))


def initialize(nlp, examples, **rel_settings):
    if rel_settings:
        nlp.config["initialize"]["components"]["biobert_relations"] = rel_settings
    return nlp.initialize(lambda: examples)


def test_good_data_has_positives_and_no_problem(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert)
    rel = nlp.get_pipe("biobert_relations")
    report = check_relation_data(jsonl_examples(nlp, tmp_path, documents(6)), rel.candidates,
                                 labels=["CAUSES"], configured=False)
    assert report.mentions == {"Drug": 12, "AdverseEvent": 12}
    assert report.relations == {"CAUSES": 6}
    assert report.candidate_pairs == 6 * 4 and report.positives("CAUSES") == 6
    assert report.relation_types["CAUSES"] == {("Drug", "AdverseEvent"): 6}
    assert report.problems() == []


# --- the silent failures of issue 25, each now an error --------------------------------


def test_docbin_saved_without_user_data_is_E801(tiny_bert, tmp_path):
    """DocBin(store_user_data=False) keeps the entities but loses
    doc._.gold_relations: before, relations trained on nothing."""
    nlp = make_nlp(tiny_bert)
    docs = [eg.reference for eg in jsonl_examples(nlp, tmp_path, documents(4))]
    DocBin(docs=docs, store_user_data=False).to_disk(tmp_path / "train.spacy")
    corpus = registry.readers.get("spacy.Corpus.v1")(path=tmp_path / "train.spacy", gold_preproc=False)
    with pytest.raises(ValueError, match=r"\[E801\].*store_user_data=True"):
        initialize(nlp, list(corpus(nlp)))


def test_allowed_pairs_typo_is_E806(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert, allowed_pairs=[["Drugs", "AdverseEvent"]])
    examples = jsonl_examples(nlp, tmp_path, documents(4))
    with pytest.raises(ValueError, match=r"\[E806\].*'Drugs'.*their types: 'AdverseEvent', 'Drug'"):
        initialize(nlp, examples)


def test_labels_left_over_from_a_copied_config_is_E802(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert)
    examples = jsonl_examples(nlp, tmp_path, documents(4))
    with pytest.raises(ValueError, match=r'\[E802\].*\["CID"\].*\'CAUSES\'.*labels = \["CAUSES"\]'):
        initialize(nlp, examples, labels=["CID"], concept_labels=["CID"])


def test_relations_naming_no_mention_is_E804(tiny_bert, tmp_path):
    """What a Prodigy-shaped JSONL became before it was read: 0 mentions and
    a relation."""
    nlp = make_nlp(tiny_bert)
    docs = documents(3)
    for doc in docs:
        doc["mentions"] = []
    examples = jsonl_examples(nlp, tmp_path, docs)
    with pytest.raises(ValueError, match=r"\[E804\].*'CAUSES'.*no gold mention at all.*'T1'"):
        initialize(nlp, examples)


def test_no_relation_in_the_data_is_E803(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert)
    docs = documents(3)
    for doc in docs:
        doc["relations"] = []
    examples = jsonl_examples(nlp, tmp_path, docs)
    with pytest.raises(ValueError, match=r"\[E803\].*no relation at all \(12 gold mentions"):
        initialize(nlp, examples, labels=["CAUSES"])


def test_level_other_than_the_data_is_E805(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert)
    nlp.get_pipe("biobert_relations").add_label("CAUSES", level="concept")
    examples = jsonl_examples(nlp, tmp_path, documents(3))
    with pytest.raises(ValueError, match=r"\[E805\].*'CAUSES' at concept level.*at mention level"):
        initialize(nlp, examples)


def test_reversed_allowed_pairs_is_E807(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert, allowed_pairs=[["AdverseEvent", "Drug"]])
    examples = jsonl_examples(nlp, tmp_path, documents(3))
    with pytest.raises(ValueError, match=r'\[E807\].*\[\["Drug", "AdverseEvent"\]\].*allowed_pairs = '):
        initialize(nlp, examples)


def test_arguments_outside_the_paired_spans_is_E808(tiny_bert, tmp_path):
    """A relation whose head is nested in a longer mention: doc.ents keeps
    the longer one only."""
    nlp = make_nlp(tiny_bert, allowed_pairs=None)
    docs = documents(2)
    for doc in docs:
        drug = doc["mentions"][0]
        doc["mentions"].append({"id": "T9", "start": drug["start"], "end": doc["mentions"][1]["end"],
                                "text": doc["text"][drug["start"]:doc["mentions"][1]["end"]],
                                "type": "Drug"})
    examples = jsonl_examples(nlp, tmp_path, docs)
    with pytest.raises(ValueError, match=r'\[E808\].*doc.ents.*spans_key = "mentions"'):
        initialize(nlp, examples)


def test_max_distance_leaving_out_every_gold_pair_is_E809(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert, max_distance=0)
    examples = jsonl_examples(nlp, tmp_path, documents(3))
    with pytest.raises(ValueError, match=r"\[E809\].*max_distance = 0"):
        initialize(nlp, examples)


# --- warnings: still trains, but says what looks wrong -------------------------------------


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_data_labels_not_in_config_and_config_labels_not_in_data_warn(tiny_bert, tmp_path, caplog):
    nlp = make_nlp(tiny_bert)
    docs = documents(4)
    docs[0]["relations"].append({"level": "mention", "head": "T3", "tail": "T4", "label": "TREATS"})
    examples = jsonl_examples(nlp, tmp_path, docs)
    with caplog.at_level(logging.WARNING, logger="spacy_biobert"):
        initialize(nlp, examples, labels=["CAUSES", "PREVENTS"])
    found = " ".join(warnings_of(caplog))
    assert "[W800]" in found and "'TREATS' (TREATS: 1)" in found
    assert "[W801]" in found and "'PREVENTS'" in found
    assert nlp.get_pipe("biobert_relations").labels == ("CAUSES", "PREVENTS")


def test_some_unresolved_arguments_and_unused_type_pairs_warn(tiny_bert, tmp_path, caplog):
    nlp = make_nlp(tiny_bert, allowed_pairs=PAIRS + [["AdverseEvent", "Drug"], ["Drug", "Dose"]])
    docs = documents(4)
    docs[1]["relations"].append({"level": "mention", "head": "T1", "tail": "T7", "label": "CAUSES"})
    examples = jsonl_examples(nlp, tmp_path, docs)
    with caplog.at_level(logging.WARNING, logger="spacy_biobert"):
        initialize(nlp, examples)
    found = " ".join(warnings_of(caplog))
    assert "[W802] 1 of 5 'CAUSES'" in found and "'T7' (no mention id)" in found
    assert '[W803]' in found and '["AdverseEvent", "Drug"]' in found
    assert "[W804]" in found and "'Dose'" in found


def test_gold_entities_false_warns(tiny_bert, tmp_path, caplog):
    nlp = make_nlp(tiny_bert, gold_entities=False)
    examples = jsonl_examples(nlp, tmp_path, documents(2))
    with caplog.at_level(logging.WARNING, logger="spacy_biobert"):
        initialize(nlp, examples)
    assert any("[W805]" in m for m in warnings_of(caplog))


# --- add_label and extensions ----------------------------------------------------------


def test_add_label_sticks_through_initialize(tiny_bert, tmp_path):
    """spaCy users expect add_label to stick (before: E205 or overwritten)."""
    nlp = make_nlp(tiny_bert)
    rel = nlp.get_pipe("biobert_relations")
    assert rel.add_label("CAUSES") == 1
    docs = documents(3)
    docs[0]["relations"].append({"level": "mention", "head": "T3", "tail": "T4", "label": "TREATS"})
    initialize(nlp, jsonl_examples(nlp, tmp_path, docs))
    assert rel.labels == ("CAUSES", "TREATS") and rel.concept_labels == ()


def test_add_label_without_level_takes_the_data_level(tiny_bert, tmp_path):
    nlp = make_nlp(tiny_bert)
    rel = nlp.get_pipe("biobert_relations")
    rel.add_label("CAUSES")
    rel.add_label("LINKED", level="concept")
    docs = documents(3)
    for doc in docs:
        for m in doc["mentions"]:
            m["kb_id"] = m["text"].upper()
        doc["relations"].append({"level": "concept", "head": doc["mentions"][0]["kb_id"],
                                 "tail": doc["mentions"][1]["kb_id"], "label": "LINKED"})
    initialize(nlp, jsonl_examples(nlp, tmp_path, docs))
    assert rel.labels == ("CAUSES", "LINKED") and rel.concept_labels == ("LINKED",)


def test_import_registers_every_extension():
    code = (
        "import spacy_biobert\n"
        "from spacy.tokens import Doc, Span\n"
        "names = ['doc_id', 'gold_relations', 'relations', 'relation_pairs', 'kb_relations',\n"
        "         'relation_levels', 'abbreviations']\n"
        "assert all(Doc.has_extension(n) for n in names)\n"
        "assert Span.has_extension('long_form')\n"
        "spacy_biobert.install_extensions()  # idempotent\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
