"""`spacy-biobert evaluate-relations` on a PubTator file with CID relations."""
import json
import subprocess
import sys

from spacy.util import registry
from test_relations import CID_PAIRS, make_nlp, train

TEXT = "Cocaine induced seizures in rats. Naloxone was given with lithium."
MENTIONS = [("Cocaine", "Chemical", "D003042"), ("seizures", "Disease", "D012640"),
            ("Naloxone", "Chemical", "D009270"), ("lithium", "Chemical", "D008094")]


def write_pubtator(path):
    title, abstract = TEXT.split(". ", 1)
    title += "."
    lines = [f"7|t|{title}", f"7|a|{abstract}"]
    for mention, label, kb in MENTIONS:
        start = TEXT.index(mention)
        lines.append(f"7\t{start}\t{start + len(mention)}\t{mention}\t{label}\t{kb}")
    lines.append("7\tCID\tD003042\tD012640")
    path.write_text("\n".join(lines) + "\n\n")


def test_evaluate_relations_cli(tiny_bert, tmp_path):
    corpus = tmp_path / "cid.pubtator"
    write_pubtator(corpus)
    nlp = make_nlp(tiny_bert, candidates=CID_PAIRS, gold_entities=True)
    reader = registry.readers.get("spacy-biobert.PubTatorCorpus.v1")(path=str(corpus))
    train(nlp, list(reader(nlp)), steps=40)
    nlp.to_disk(tmp_path / "model")
    out = tmp_path / "scores.json"
    result = subprocess.run(
        [sys.executable, "-m", "spacy_biobert", "evaluate-relations", str(tmp_path / "model"),
         str(corpus), "--thresholds", "0.5", "--output", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = json.loads(out.read_text())
    assert scores["documents"] == 1
    doc_scores = scores["thresholds"]["0.5"]
    # The trained toy model finds the one CID pair and nothing else.
    assert doc_scores["rel_doc_counts"] == {"tp": 1, "fp": 0, "fn": 0}
