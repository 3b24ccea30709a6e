"""bench/training_data.py: what a config feeds its run, and what a per-pair
relation model's marked candidates add to the encoder's work, on the tiny BERT."""
import json
import subprocess
import sys
from pathlib import Path

from relation_toys import tiny_marker_bert
from tiny_pipelines import one_pair_pubtator, write_bc5cdr_corpora

ROOT = Path(__file__).resolve().parents[1]

PUBTATOR = one_pair_pubtator(cid=False)


def run_bench(config: str, tmp_path: Path, tiny_bert: str, *overrides: str) -> dict:
    out = tmp_path / "data.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "training_data.py"), str(ROOT / "configs" / config),
         "--output", str(out), "--paths.corpora", str(write_bc5cdr_corpora(tmp_path, PUBTATOR)),
         "--paths.base_model", tiny_bert, *overrides],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def test_marked_pairs_are_counted_in_wordpieces_against_the_text(tiny_bert, tmp_path):
    report = run_bench("cid_pair_marked.cfg", tmp_path, tiny_bert)
    assert report["documents"] == {"train": 2} and report["candidates_per_document"] == {"train": 0.5}
    # [CLS] cocaine induced seizures . [SEP]: 6; [CLS] aspirin was the drug . [SEP]: 7.
    # The pair, marked: [CLS] @ * chemical * cocaine @ induced # ^ disease ^ seizures # . [SEP]: 16.
    assert report["relation_encoder_cost"]["train"] == {
        "text_wordpieces_per_document": 6.5,
        "marked_pair_wordpieces_per_document": 8.0,
        "marked_per_text_wordpiece": round(16 / 13, 3),
    }


def test_no_cost_is_reported_for_a_model_without_a_pass_per_pair(tiny_bert, tmp_path):
    report = run_bench("cid.cfg", tmp_path, tiny_bert)
    assert "candidates_per_document" in report and "relation_encoder_cost" not in report


def test_levitated_sequences_are_counted_with_the_text_they_repeat(tmp_path):
    bert = tiny_marker_bert(tmp_path / "bert")
    report = run_bench("cid_levitated.cfg", tmp_path, bert)
    # One pair: its sequence is the text, 6 wordpieces, and 4 markers; the
    # other document has no pair and no sequence. 10 of 13 text wordpieces.
    assert report["relation_encoder_cost"]["train"] == {
        "text_wordpieces_per_document": 6.5,
        "sequence_wordpieces_per_document": 5.0,
        "sequences_per_document": 0.5,
        "sequence_per_text_wordpiece": round(10 / 13, 3),
    }
