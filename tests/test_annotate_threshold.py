"""`annotate --threshold` takes what `serve` and `render` take: a number in
[0, 1]; 2, -0.1 and nan are refused with E207 before anything is loaded or
written (nan would write every relation)."""

import pytest
import spacy
from typer.testing import CliRunner

from spacy_biobert.annotate import annotate
from spacy_biobert.cli import app


@pytest.mark.parametrize("value", ["2", "-0.1", "nan", "inf"])
def test_annotate_cli_refuses_a_threshold_outside_0_1(tmp_path, value):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text("cocaine\n")
    res = CliRunner().invoke(
        app, ["annotate", str(tmp_path / "no-such-model"), str(src), str(out), "--threshold", value]
    )
    assert res.exit_code == 1 and "E207" in res.output and "Traceback" not in res.output
    assert "no-such-model" not in res.output  # refused before the pipeline is loaded
    assert not out.exists() and not list(tmp_path.glob("out.jsonl*"))


@pytest.mark.parametrize("value", [2, -0.1, float("nan"), True, "0.5"])
def test_annotate_refuses_a_threshold_outside_0_1(tmp_path, value):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text("cocaine\n")
    with pytest.raises(ValueError, match="E207"):
        annotate(spacy.blank("en"), src, out, threshold=value)
    assert not list(tmp_path.glob("out.jsonl*"))


@pytest.mark.parametrize("value", [0, 1, 0.5])
def test_annotate_takes_thresholds_in_0_1(tmp_path, value):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text("cocaine\n")
    assert annotate(spacy.blank("en"), src, out, threshold=value).documents == 1
