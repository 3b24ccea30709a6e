from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_biobert.cli import app
from spacy_biobert.corpora.formats import detect_format, output_format
from spacy_biobert.extensions import MENTIONS_KEY, install_extensions

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny.pubtator"
runner = CliRunner()


def flat(output: str) -> str:
    """CLI output with its line wrapping undone: wasabi wraps messages at 80
    columns, so where a long temporary path breaks a line depends on its length."""
    return " ".join(output.split())


def test_detect_formats(tmp_path):
    assert detect_format(TINY) == "pubtator"
    assert detect_format(DATA / "chemprot_tiny") == "chemprot"
    assert detect_format(DATA / "chemprot_tiny" / "tiny") == "chemprot"
    odd = tmp_path / "x.dat"
    odd.write_text("hello\n")
    with pytest.raises(ValueError, match="E107"):
        detect_format(odd)
    assert output_format("a.spacy") == "spacy" and output_format("a.xml") == "bioc-xml"
    assert output_format("a.json") == "bioc-json" and output_format("out/") == "chemprot"


def test_convert_to_spacy(tmp_path):
    out = tmp_path / "tiny.spacy"
    result = runner.invoke(app, ["convert", str(TINY), str(out)])
    assert result.exit_code == 0, result.output
    assert "Wrote 2 document(s)" in result.output
    install_extensions()
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert [d._.doc_id for d in docs] == ["111", "222"]
    assert [s.id_ for s in docs[0].spans[MENTIONS_KEY]] == ["M1", "M2", "M3", "M4", "M5"]
    assert docs[0].has_annotation("SENT_START")
    # .spacy back to PubTator gives the same file
    back = tmp_path / "back.pubtator"
    assert runner.invoke(app, ["convert", str(out), str(back)]).exit_code == 0
    assert back.read_bytes() == TINY.read_bytes()


@pytest.mark.parametrize("suffix", [".xml", ".json", ".jsonl"])
def test_convert_chain(tmp_path, suffix):
    mid = tmp_path / f"mid{suffix}"
    back = tmp_path / "back.txt"
    assert runner.invoke(app, ["convert", str(TINY), str(mid)]).exit_code == 0
    result = runner.invoke(app, ["convert", str(mid), str(back), "--to", "pubtator"])
    assert result.exit_code == 0, result.output
    assert back.read_bytes() == TINY.read_bytes()


def test_convert_chemprot_folder(tmp_path):
    out = tmp_path / "cp"
    result = runner.invoke(app, ["convert", str(DATA / "chemprot_tiny"), str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "cp_abstracts.tsv",
        "cp_entities.tsv",
        "cp_gold_standard.tsv",
        "cp_relations.tsv",
    ]


def test_convert_bad_input_reports_without_traceback(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1|t|T\n1|a|A b\n1\t0\t9\tT\tChemical\tD1\n1\t0\t1\tT\tChemical\tD1\n\n")
    result = runner.invoke(app, ["convert", str(bad), str(tmp_path / "o.spacy")])
    assert result.exit_code == 1
    assert "bad.txt:3: [E102]" in flat(result.output)
    assert "Traceback" not in result.output
    result = runner.invoke(
        app, ["convert", str(bad), str(tmp_path / "o.spacy"), "--skip-bad"]
    )
    assert result.exit_code == 0, result.output
    assert "bad records skipped" in flat(result.output) and "bad.txt:3" in result.output
    assert "Wrote 1 document(s)" in result.output


def test_convert_missing_and_empty_input(tmp_path):
    result = runner.invoke(
        app, ["convert", str(tmp_path / "nope.txt"), str(tmp_path / "o.spacy")]
    )
    assert result.exit_code == 1 and "E106" in result.output
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    result = runner.invoke(
        app, ["convert", str(empty), str(tmp_path / "o.spacy"), "--format", "pubtator"]
    )
    assert result.exit_code == 1 and "empty.txt: [E105]" in flat(result.output)


def test_convert_label_map(tmp_path):
    out = tmp_path / "t.spacy"
    result = runner.invoke(app, ["convert", str(TINY), str(out), "--label-map", "ncbi"])
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(out).get_docs(spacy.blank("en").vocab))
    assert docs[1].ents[0].label_ == "Disease"
    result = runner.invoke(app, ["convert", str(TINY), str(out), "--label-map", "nonsense"])
    assert result.exit_code == 1


def test_alignment_command():
    result = runner.invoke(
        app, ["alignment", str(TINY), "--tokenizer", "default", "--show", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "'Na' -> 'Na+'" in result.output
    result = runner.invoke(
        app, ["alignment", str(TINY), str(DATA / "chemprot_tiny"), "--by-type"]
    )
    assert result.exit_code == 0, result.output
    assert "total" in result.output


# --- registered readers for BioC and ChemProt -------------------------------


def test_registered_chemprot_reader():
    nlp = spacy.blank("en")
    corpus = spacy.registry.readers.get("spacy-biobert.ChemProtCorpus.v1")(
        path=str(DATA / "chemprot_tiny"), label_map="chemprot-gene"
    )
    examples = list(corpus(nlp))
    assert len(examples) == 2
    ref = examples[0].reference
    assert {e.label_ for e in ref.ents} == {"CHEMICAL", "GENE"}
    assert len(ref.spans[MENTIONS_KEY]) == 10
    assert ref._.gold_relations[0]["label"] == "CPR:4"
    assert examples[0].predicted._.doc_id == "100"


def test_registered_bioc_reader(tmp_path):
    from spacy_biobert.corpora import read_pubtator, write_bioc_xml

    nlp = spacy.blank("en")
    write_bioc_xml(read_pubtator(TINY, nlp), tmp_path / "t.xml")
    corpus = spacy.registry.readers.get("spacy-biobert.BioCCorpus.v1")(
        path=str(tmp_path / "t.xml"), limit=1
    )
    examples = list(corpus(nlp))
    assert len(examples) == 1 and len(examples[0].reference.ents) == 5


@pytest.mark.slow
def test_alignment_figures_bc5cdr(corpora_dir):
    """The README figure: the biomedical tokenizer leaves <= 0.5% of BC5CDR
    train+dev mentions misaligned (spaCy's default English: 1.33%)."""
    from spacy_biobert.corpora.formats import (
        count_misaligned,
        iter_records,
        make_tokenizer_nlp,
    )

    files = [
        corpora_dir / "bc5cdr" / "CDR_TrainingSet.PubTator.txt",
        corpora_dir / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt",
    ]
    for tokenizer, (low, high) in (("default", (1.0, 2.0)), ("biomedical", (0.0, 0.5))):
        nlp = make_tokenizer_nlp(tokenizer)
        reports = [count_misaligned(iter_records(f), nlp.make_doc) for f in files]
        mis = sum(r.misaligned for r in reports)
        total = sum(r.mentions for r in reports)
        assert total == 18976
        assert low <= 100.0 * mis / total <= high, (tokenizer, mis)
