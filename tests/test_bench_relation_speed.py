"""bench/relation_speed.py: the relation pass's seconds beside the `biobert`
pass's, reusing its states and not, on the tiny BERT."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import write_tiny_bert
from relation_toys import MARKER_CHARACTERS
from tiny_pipelines import one_pair_pubtator, write_bc5cdr_corpora

ROOT = Path(__file__).resolve().parents[1]
PUBTATOR = one_pair_pubtator(cid=True)


def test_both_relation_passes_are_timed_against_the_biobert_pass(tmp_path):
    bert = write_tiny_bert(tmp_path / "bert", MARKER_CHARACTERS)
    out = tmp_path / "speed.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "relation_speed.py"),
         str(ROOT / "configs" / "cid_levitated.cfg"),
         "--repeats", "2", "--batch-size", "1", "--output", str(out),
         "--paths.corpora", str(write_bc5cdr_corpora(tmp_path, PUBTATOR)), "--paths.base_model", str(bert)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert (report["documents"], report["candidate_pairs"], report["words"]) == (2, 1, 9)
    assert report["pairs_from_biobert_states"] == 1
    assert set(report["seconds"]) == {"biobert", "relations_reusing", "relations_separate"}
    assert all(len(v) == 2 and min(v) > 0 for v in report["seconds_all"].values())
    for name in ("relations_reusing", "relations_separate"):
        share = report[name]["biobert_share"]
        assert 0 < share < 1
        seconds = report["seconds"]
        assert abs(share - seconds["biobert"] / (seconds["biobert"] + seconds[name])) < 0.01
