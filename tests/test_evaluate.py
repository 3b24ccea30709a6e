"""The evaluation package: one P/R/F type, strict NER at the corpus's own
offsets on the corpus's own label set, gold corpora of any format through the
registered readers, the registered relation scorer, and the evaluate command."""
import json
import subprocess
import sys

import pytest
import spacy
from spacy.util import registry

from spacy_biobert.corpora.formats import read_corpus, write_corpus
from spacy_biobert.corpora.readers import READERS, gold_corpus
from spacy_biobert.evaluation import (
    PRF,
    evaluate_ner,
    percent,
    score_mentions,
    score_tuples,
)
from spacy_biobert.evaluation.relations import make_relations_scorer, relations_score

TEXT = "Cocaine-induced toxicity and 5-HT6 binding in rats."
TITLE, ABSTRACT = TEXT.split(" and ")[0], "and " + TEXT.split(" and ")[1]
GOLD = (
    f"1|t|{TITLE}\n1|a|{ABSTRACT}\n1\t0\t7\tCocaine\tChemical\tD003042\n"
    f"1\t16\t24\ttoxicity\tDisease\tD064420\n1\t29\t33\t5-HT\tChemical\tD012701\n\n"
)


def ruler_nlp(gene: bool = False):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([
        {"label": "Chemical", "pattern": "Cocaine"},
        {"label": "Disease", "pattern": "toxicity"},
        {"label": "Chemical", "pattern": "5-HT6"},
    ])
    if gene:
        ruler.add_patterns([{"label": "Gene", "pattern": "binding"}])
    return nlp


@pytest.fixture
def gold_file(tmp_path):
    path = tmp_path / "gold.pubtator"
    path.write_text(GOLD, encoding="utf8")
    return path


def examples_of(path, nlp, **kwargs):
    return list(gold_corpus(path, **kwargs)(nlp))


# --- the one P/R/F type ---------------------------------------------------------------


def test_prf_is_fractions_and_percent_is_for_display():
    prf = PRF(tp=1, fp=1, fn=2)
    assert (prf.precision, prf.recall) == (0.5, 1 / 3)
    assert prf.f1 == pytest.approx(0.4)
    assert PRF().as_dict() == {"p": 0.0, "r": 0.0, "f": 0.0, "tp": 0, "fp": 0, "fn": 0}
    assert prf + PRF(1, 0, 0) == PRF(2, 1, 2)
    shown = percent(prf.as_dict(), 2)
    assert shown["p"] == 50.0 and shown["r"] == 33.33 and shown["tp"] == 1
    assert percent(prf.as_dict())["r"] == 100 * (1 / 3)


def test_score_tuples_micro_and_per_label():
    gold = {("d", 1, "A"), ("d", 2, "B")}
    pred = {("d", 1, "A"), ("d", 3, "A")}
    micro, per_label = score_tuples(gold, pred, labels=["C"])
    assert micro == PRF(1, 1, 1)
    assert per_label == {"A": PRF(1, 1, 0), "B": PRF(0, 0, 1), "C": PRF()}
    assert list(per_label) == ["A", "B", "C"]


# --- strict NER -----------------------------------------------------------------------


def test_score_mentions_is_strict_and_per_type():
    gold = [("d", 0, 7, "Chemical"), ("d", 16, 24, "Disease"), ("d", 29, 33, "Chemical")]
    pred = [("d", 0, 7, "Chemical"), ("d", 16, 24, "Chemical"), ("d", 29, 34, "Chemical")]
    scores = score_mentions(gold, pred)
    assert (scores.micro.tp, scores.micro.fp, scores.micro.fn) == (1, 2, 2)
    assert scores.per_type["Disease"].fn == 1 and scores.per_type["Disease"].fp == 0
    assert scores.per_type["Chemical"].tp == 1
    assert scores.micro.f1 == pytest.approx(2 * (1 / 3) * (1 / 3) / (2 / 3))


def test_no_predictions_and_no_gold():
    scores = score_mentions([], [])
    assert scores.micro.f1 == 0.0 and scores.as_dict()["ents_strict"]["f"] == 0.0


def test_labels_the_gold_does_not_annotate_are_not_scored():
    gold = [("d", 0, 7, "Chemical")]
    pred = [("d", 0, 7, "Chemical"), ("d", 8, 12, "Gene"), ("d", 20, 24, "Gene")]
    scores = score_mentions(gold, pred)
    assert scores.micro == PRF(1, 0, 0) and "Gene" not in scores.per_type
    assert scores.unscored == {"Gene": 2} and scores.labels == ["Chemical"]
    result = scores.as_dict()
    assert result["ents_unscored"] == {"Gene": 2} and result["labels_scored"] == ["Chemical"]
    # The label set can be given: then a Gene prediction is a false positive.
    scores = score_mentions(gold, pred, labels=["Chemical", "Gene"])
    assert scores.micro == PRF(1, 2, 0) and scores.unscored == {}


def test_widened_gold_is_reported_but_not_counted(gold_file):
    # Gold "5-HT" (29-33) is inside the token "5-HT6": a prediction of the
    # whole token only matches the gold widened to token boundaries.
    nlp = ruler_nlp()
    examples = examples_of(gold_file, nlp)
    result = evaluate_ner(nlp, examples).as_dict()
    assert result["ents_strict"]["tp"] == 2 and result["ents_strict"]["fp"] == 1
    assert result["ents_token_widened"]["tp"] == 3
    assert result["gold_mentions_not_on_token_boundaries"] == 1
    assert result["documents"] == 1 and result["words"] > 0
    # the examples are not modified
    assert not examples[0].predicted.ents


def test_evaluate_ner_keeps_the_corpus_label_set(gold_file):
    nlp = ruler_nlp(gene=True)
    examples = examples_of(gold_file, nlp)
    scores = evaluate_ner(nlp, examples)
    assert scores.unscored == {"Gene": 1}
    assert (scores.micro.tp, scores.micro.fp) == (2, 1)  # the Gene is no false positive
    assert scores.labels == ["Chemical", "Disease"]
    scores = evaluate_ner(nlp, examples, labels=["Chemical", "Disease", "Gene"])
    assert scores.micro.fp == 2 and scores.per_type["Gene"].fp == 1


def test_label_map_and_label_filter(tmp_path):
    path = tmp_path / "ncbi.pubtator"
    path.write_text(f"1|t|{TITLE}\n1|a|{ABSTRACT}\n1\t16\t24\ttoxicity\tSpecificDisease\tD1\n\n")
    nlp = ruler_nlp()
    scores = evaluate_ner(
        nlp, examples_of(path, nlp), label_map={"SpecificDisease": "Disease"}, labels=["Disease"]
    )
    assert (scores.micro.tp, scores.micro.fp, scores.micro.fn) == (1, 0, 0)
    assert scores.unscored == {"Chemical": 2}


@pytest.mark.parametrize("suffix", [".xml", ".json", ".jsonl", ".spacy"])
def test_any_gold_format_scores_the_same(gold_file, tmp_path, suffix):
    """The same gold written as BioC XML/JSON, JSONL or a DocBin reads through
    the registered readers and gives the same strict scores (the original
    offsets survive every format)."""
    nlp = ruler_nlp(gene=True)
    other = tmp_path / f"gold{suffix}"
    write_corpus(read_corpus(gold_file, nlp), other)
    expected = evaluate_ner(nlp, examples_of(gold_file, nlp)).as_dict()
    got = evaluate_ner(nlp, examples_of(other, nlp)).as_dict()
    for key in ("ents_strict", "ents_per_type_strict", "ents_token_widened", "ents_unscored"):
        assert got[key] == expected[key], key


def test_gold_corpus_uses_the_registered_readers(gold_file):
    for name in READERS.values():
        assert registry.readers.get(name)
    nlp = spacy.blank("en")
    (eg,) = examples_of(gold_file, nlp, format="pubtator", limit=1)
    assert eg.reference._.doc_id == "1" and len(eg.reference.ents) == 3
    with pytest.raises(ValueError, match="E810.*nonsense"):
        gold_corpus(gold_file, format="nonsense")


# --- relation scorer ------------------------------------------------------------------


def test_relation_scorer_is_registered_like_spancat_scorer():
    scorer = registry.scorers.get("spacy-biobert.relations_scorer.v1")()
    assert scorer is relations_score and make_relations_scorer() is relations_score
    # No examples, no labels at either level: both levels score None.
    assert scorer([], labels=(), concept_labels=()) == {
        f"rel_{level}_{k}": None for level in ("micro", "doc") for k in "prf"
    }
    # A mention-level label is scored, the concept level stays None.
    scores = scorer([], threshold=0.5, labels=("CPR:3",), concept_labels=())
    assert scores["rel_micro_f"] == 0.0 and scores["rel_doc_f"] is None
    assert scores["rel_micro_per_type"]["CPR:3"] == PRF().as_dict()


# --- command line ---------------------------------------------------------------------


def run_evaluate(*args):
    return subprocess.run(
        [sys.executable, "-m", "spacy_biobert", "evaluate", *map(str, args)],
        capture_output=True, text=True,
    )


def test_evaluate_cli_writes_json_in_percent(tmp_path, gold_file):
    ruler_nlp(gene=True).to_disk(tmp_path / "model")
    out = tmp_path / "scores.json"
    result = run_evaluate(tmp_path / "model", gold_file, "--output", out)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(out.read_text())
    assert scores["ents_strict"]["tp"] == 2 and scores["ents_strict"]["p"] == 66.67
    assert scores["ents_per_type_strict"]["Chemical"]["fp"] == 1
    assert scores["ents_unscored"] == {"Gene": 1}
    assert "Chemical" in result.stdout
    printed = " ".join(result.stdout.split())  # wasabi wraps long lines
    assert "1 predictions of labels this corpus does not annotate (Gene 1) not scored" in printed
    # --labels overrides the gold's label set; a BioC copy of the gold scores the same
    bioc = tmp_path / "gold.xml"
    write_corpus(read_corpus(gold_file, spacy.blank("en")), bioc)
    result = run_evaluate(tmp_path / "model", bioc, "--labels", "Chemical,Disease,Gene", "-o", out)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(out.read_text())
    assert scores["ents_strict"]["fp"] == 2 and scores["ents_unscored"] == {}


def test_evaluate_cli_bad_corpus_is_a_clear_error(tmp_path):
    ruler_nlp().to_disk(tmp_path / "model")
    bad = tmp_path / "bad.pubtator"
    bad.write_text("1|t|Title\n1|a|Abstract\n1\t0\t99\tTitle\tChemical\tD1\n\n")
    result = run_evaluate(tmp_path / "model", bad)
    assert result.returncode == 1
    assert "bad.pubtator:3" in result.stdout, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_old_module_paths_still_import():
    """spacy_biobert.scoring and spacy_biobert.linking.evaluate re-export the
    moved functions for one release."""
    from spacy_biobert import scoring
    from spacy_biobert.evaluation import linking, relations
    from spacy_biobert.linking import evaluate

    assert scoring.score_cid is relations.score_cid
    assert scoring.evaluate_relations is relations.evaluate_relations
    assert evaluate.evaluate_linking is linking.evaluate_linking
    assert evaluate.score_concepts is linking.score_concepts
