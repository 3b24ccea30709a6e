"""Prodigy / spaCy span JSONL ("spans", relations with head/child) is read by
the JSONL reader, or refused with what to convert: before, such a file became
0 mentions and relations naming nothing, and trained nothing."""
import json
import logging

import pytest
import spacy
from spacy.util import registry

import spacy_biobert  # noqa: F401
from spacy_biobert.corpora import CorpusStats, read_corpus
from spacy_biobert.corpora.formats import iter_records
from spacy_biobert.extensions import MENTIONS_KEY
from spacy_biobert.models import EntityPairs
from spacy_biobert.training.data_checks import check_relation_data

TEXT = "Aspirin caused nausea in the patient."
TOKENS = [{"text": t, "start": TEXT.index(t), "end": TEXT.index(t) + len(t), "id": i}
          for i, t in enumerate(["Aspirin", "caused", "nausea", "in", "the", "patient", "."])]
SPANS = [
    {"start": 0, "end": 7, "token_start": 0, "token_end": 0, "label": "Drug"},
    {"start": 15, "end": 21, "token_start": 2, "token_end": 2, "label": "AdverseEvent"},
]


def rel_manual(**changes):
    """A line as `prodigy db-out` writes a rel.manual task."""
    line = {
        "text": TEXT, "tokens": TOKENS, "spans": SPANS,
        "relations": [{"head": 0, "child": 2, "label": "CAUSES",
                       "head_span": dict(SPANS[0]), "child_span": dict(SPANS[1])}],
        "answer": "accept", "_input_hash": 1, "_task_hash": 2,
    }
    line.update(changes)
    return line


def write(tmp_path, *lines):
    path = tmp_path / "prodigy.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_rel_manual_spans_and_relations_are_read(tmp_path):
    (doc,) = read_corpus(write(tmp_path, rel_manual()))
    assert [(s.text, s.label_, s.id_) for s in doc.spans[MENTIONS_KEY]] == [
        ("Aspirin", "Drug", "M1"), ("nausea", "AdverseEvent", "M2")
    ]
    assert [e.label_ for e in doc.ents] == ["Drug", "AdverseEvent"]
    assert doc._.gold_relations == [{"level": "mention", "head": "M1", "tail": "M2", "label": "CAUSES"}]


def test_token_indices_alone_find_the_spans(tmp_path):
    line = rel_manual(relations=[{"head": 0, "child": 2, "label": "CAUSES"}])
    (rec,) = iter_records(write(tmp_path, line), "jsonl")
    assert rec.relations == [{"level": "mention", "head": "M1", "tail": "M2", "label": "CAUSES"}]


def test_prodigy_data_trains_relations(tmp_path):
    """The training reader's examples give the relation component positives."""
    nlp = spacy.blank("en")
    corpus = registry.readers.get("spacy-biobert.JSONLCorpus.v1")(path=str(write(tmp_path, rel_manual())))
    report = check_relation_data(corpus(nlp), EntityPairs([["Drug", "AdverseEvent"]]), labels=["CAUSES"])
    assert report.positives("CAUSES") == 1 and not report.problems()


def test_rejected_and_ignored_answers_are_left_out_and_counted(tmp_path, caplog):
    stats = CorpusStats()
    path = write(tmp_path, rel_manual(), rel_manual(answer="reject"), rel_manual(answer="ignore"))
    with caplog.at_level(logging.WARNING, logger="spacy_biobert"):
        docs = list(read_corpus(path, stats=stats))
    assert len(docs) == 1
    assert stats.skipped_annotations == {
        "Prodigy document answered 'reject'": 1, "Prodigy document answered 'ignore'": 1
    }
    assert any("[W807]" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("line,match", [
    ({"text": TEXT, "entities": [[0, 7, "Drug"]]}, r"\[E811\].*'entities' \(spaCy v2.*\"mentions\""),
    ({"text": TEXT, "relations": [{"head": 0, "child": 2, "label": "CAUSES"}]},
     r"\[E811\].*Prodigy relations \(head/child\) but no \"spans\""),
    (rel_manual(relations=[{"head": 4, "child": 2, "label": "CAUSES"}]),
     r"\[E114\].*relation #1 'head' must be the token index of one of its \"spans\""),
])
def test_shapes_it_cannot_read_are_refused_with_what_to_convert(tmp_path, line, match):
    with pytest.raises(ValueError, match=match):
        list(iter_records(write(tmp_path, line), "jsonl"))
