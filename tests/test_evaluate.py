"""Strict NER evaluation at the corpus's own offsets."""
import json
import subprocess
import sys

import pytest
import spacy

from spacy_biobert.evaluation import evaluate_ner, score_mentions

TEXT = "Cocaine-induced toxicity and 5-HT6 binding in rats."


def ruler_nlp():
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([
        {"label": "Chemical", "pattern": "Cocaine"},
        {"label": "Disease", "pattern": "toxicity"},
        {"label": "Chemical", "pattern": "5-HT6"},
    ])
    return nlp


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


def test_widened_gold_is_reported_but_not_counted():
    # Gold "5-HT" (29-33) is inside the token "5-HT6": a prediction of the
    # whole token only matches the gold widened to token boundaries.
    gold = [("d", TEXT, [(0, 7, "Chemical"), (16, 24, "Disease"), (29, 33, "Chemical")])]
    scores = evaluate_ner(ruler_nlp(), gold)
    result = scores.as_dict()
    assert result["ents_strict"]["tp"] == 2 and result["ents_strict"]["fp"] == 1
    assert result["ents_token_widened"]["tp"] == 3
    assert result["gold_mentions_not_on_token_boundaries"] == 1
    assert result["documents"] == 1 and result["words"] > 0


def test_label_map_and_label_filter():
    gold = [("d", TEXT, [(16, 24, "SpecificDisease")])]
    scores = evaluate_ner(ruler_nlp(), gold, label_map={"SpecificDisease": "Disease"},
                          labels=["Disease"])
    assert (scores.micro.tp, scores.micro.fp, scores.micro.fn) == (1, 0, 0)


def test_evaluate_cli_writes_json(tmp_path):
    nlp = ruler_nlp()
    nlp.to_disk(tmp_path / "model")
    title, abstract = TEXT.split(" and ")[0], "and " + TEXT.split(" and ")[1]
    corpus = tmp_path / "gold.pubtator"
    corpus.write_text(
        f"1|t|{title}\n1|a|{abstract}\n1\t0\t7\tCocaine\tChemical\tD003042\n"
        f"1\t16\t24\ttoxicity\tDisease\tD064420\n1\t29\t33\t5-HT\tChemical\tD012701\n\n"
    )
    out = tmp_path / "scores.json"
    result = subprocess.run(
        [sys.executable, "-m", "spacy_biobert", "evaluate", str(tmp_path / "model"),
         str(corpus), "--output", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(out.read_text())
    assert scores["ents_strict"]["tp"] == 2
    assert scores["ents_per_type_strict"]["Chemical"]["fp"] == 1
    assert "Chemical" in result.stdout


def test_evaluate_cli_bad_corpus_is_a_clear_error(tmp_path):
    ruler_nlp().to_disk(tmp_path / "model")
    bad = tmp_path / "bad.pubtator"
    bad.write_text("1|t|Title\n1|a|Abstract\n1\t0\t99\tTitle\tChemical\tD1\n\n")
    result = subprocess.run(
        [sys.executable, "-m", "spacy_biobert", "evaluate", str(tmp_path / "model"), str(bad)],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "bad.pubtator:3" in result.stdout, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
