"""bench/gradient_balance.py: each task's gradient on a joint pipeline's one
transformer, measured on a tiny joint BC5CDR pipeline."""
import json
import subprocess
import sys
from pathlib import Path

from tiny_pipelines import JOINT_PUBTATOR, save_tiny_joint_pipeline, write_bc5cdr_corpora

ROOT = Path(__file__).resolve().parents[1]


def test_ner_and_relation_gradients_are_measured_per_batch(tiny_bert, tmp_path):
    model = save_tiny_joint_pipeline(tiny_bert, tmp_path / "joint", steps=1)
    write_bc5cdr_corpora(tmp_path, JOINT_PUBTATOR)
    before = {p.name: p.read_bytes() for p in (Path(model) / "biobert").iterdir() if p.is_file()}
    out = tmp_path / "balance.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gradient_balance.py"), model,
         str(ROOT / "configs" / "bc5cdr.cfg"), "--paths.corpora", str(tmp_path / "corpora"),
         "--docs", "2", "--output", str(out)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    row = report["batches"]["with relation candidates"]
    assert row["documents"] == 2 and row["corpora"] == ["train"]
    # both tasks reach the transformer, each measured alone
    assert row["ner"]["norm"] > 0 and row["relations"]["norm"] > 0
    assert "ner" in row["ner"]["losses"] and "biobert_relations" not in row["ner"]["losses"]
    assert "ner" not in row["relations"]["losses"]
    assert row["ner_over_relations"] == round(row["ner"]["norm"] / row["relations"]["norm"], 2)
    assert report["batches"]["without"] == {"corpora": [], "documents": 0}
    # the pipeline folder is only read
    assert before == {p.name: p.read_bytes() for p in (Path(model) / "biobert").iterdir() if p.is_file()}
