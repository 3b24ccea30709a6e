"""brat standoff, one row of the format table: read (entities with
discontinuous spans, normalisations, relations, equivalences; events,
attributes and notes counted, not dropped silently), written back byte for
byte, converted, read by the registered training reader, and written by
annotate."""
import filecmp
import json
import logging
import shutil
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.util import registry
from typer.testing import CliRunner

import spacy_biobert  # noqa: F401
from spacy_biobert.cli import app
from spacy_biobert.corpora import CorpusStats, read_corpus, write_corpus
from spacy_biobert.corpora.formats import detect_format, get_format, iter_records, output_format
from spacy_biobert.extensions import MENTIONS_KEY

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "brat_sample"
runner = CliRunner()


def files_of(folder: Path):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.suffix in (".txt", ".ann"))


def same_tree(a: Path, b: Path):
    assert files_of(a) == files_of(b)
    for name in files_of(a):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_real_shaped_sample_reads_discontinuous_spans_normalisations_relations(caplog):
    stats = CorpusStats()
    with caplog.at_level(logging.WARNING, logger="spacy_biobert"):
        docs = {d._.doc_id: d for d in read_corpus(SAMPLE, stats=stats)}
    assert list(docs) == ["aspirin", "sub/cisplatin"]
    doc = docs["aspirin"]
    mentions = {s.id_: s for s in doc.spans[MENTIONS_KEY]}
    # discontinuous "gastric ... ulcers": its extent (a Span is contiguous)
    assert mentions["T2"].text == "gastric and duodenal ulcers" and mentions["T2"].label_ == "AdverseEvent"
    assert mentions["T1"].kb_id_ == "MeSH:D001241" and mentions["T3"].kb_id_ == "ICD10:K26.9"
    assert doc._.gold_relations == [
        {"level": "mention", "head": "T1", "tail": "T2", "label": "CAUSES", "id": "R1"},
        {"level": "mention", "head": "T1", "tail": "T3", "label": "CAUSES", "id": "R2"},
    ]
    cis = docs["sub/cisplatin"]
    assert cis._.gold_relations[0]["roles"] == ["Cause", "Effect"]
    assert {s.id_: s.kb_id_ for s in cis.spans[MENTIONS_KEY]}["T4"] == "MeSH:D058186|UMLS:C2609414"
    assert [e.text for e in cis.ents] == ["Cisplatin", "nephrotoxicity", "cisplatin", "acute kidney injury"]
    # events, attributes and notes: counted and reported, not dropped silently
    assert stats.skipped_annotations == {"event": 1, "attribute": 1, "note": 1}
    assert any("[W807]" in r.getMessage() and "1 event(s)" in r.getMessage() for r in caplog.records)


def test_round_trip_is_byte_identical(tmp_path):
    """LF and CRLF files, a file without a final newline, every line kind,
    line order as written."""
    docs = list(read_corpus(SAMPLE))
    assert write_corpus(docs, tmp_path / "out", format="brat") == 2
    same_tree(SAMPLE, tmp_path / "out")


def test_round_trip_through_jsonl_and_spacy_is_byte_identical(tmp_path):
    for ext in (".jsonl", ".spacy"):
        middle = tmp_path / f"middle{ext}"
        write_corpus(read_corpus(SAMPLE), middle)
        write_corpus(read_corpus(middle), tmp_path / ext[1:], format="brat")
        same_tree(SAMPLE, tmp_path / ext[1:])


def test_a_brat_folder_is_detected_as_brat_not_chemprot(tmp_path):
    assert detect_format(SAMPLE) == "brat"
    assert detect_format(SAMPLE / "aspirin.ann") == "brat"
    assert output_format(SAMPLE) == "brat"
    with pytest.raises(ValueError, match=r"\[E810\] unknown format 'brt'.*brat"):
        get_format("brt", SAMPLE)


def test_convert_reads_and_writes_brat(tmp_path):
    out = tmp_path / "sample.jsonl"
    result = runner.invoke(app, ["convert", str(SAMPLE), str(out)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["aspirin", "sub/cisplatin"]
    back = tmp_path / "back"
    result = runner.invoke(app, ["convert", str(out), str(back), "--to", "brat"])
    assert result.exit_code == 0, result.output
    same_tree(SAMPLE, back)
    result = runner.invoke(app, ["convert", str(SAMPLE), str(tmp_path / "again.jsonl"), "--format", "brat"])
    assert result.exit_code == 0, result.output


def test_pubtator_to_brat_renumbers_ids_and_writes_normalisations(tmp_path):
    # brat holds neither BC5CDR's CID nor the title/abstract passages
    write_corpus(read_corpus(DATA / "tiny.pubtator"), tmp_path / "b", format="brat", allow_loss=True)
    ann = (tmp_path / "b" / "111.ann").read_text()
    assert ann.startswith("T1\tChemical ") and "\nN1\tReference T1 " in ann
    again = list(read_corpus(tmp_path / "b"))
    assert [d._.doc_id for d in again] == ["111", "222"]


def test_training_reader_gives_examples_with_relations():
    nlp = spacy.blank("en")
    corpus = registry.readers.get("spacy-biobert.BratCorpus.v1")(path=str(SAMPLE))
    examples = list(corpus(nlp))
    assert len(examples) == 2
    assert examples[0].reference._.gold_relations[0]["label"] == "CAUSES"
    assert [e.label_ for e in examples[1].reference.ents] == ["Drug", "AdverseEvent", "Drug", "AdverseEvent"]


def test_predicted_docs_write_entities_kb_ids_and_relations(tmp_path):
    nlp = spacy.blank("en")
    doc = nlp("Aspirin caused nausea.")
    doc.ents = [Span(doc, 0, 1, "Drug", kb_id="MeSH:D001241"), Span(doc, 2, 3, "AdverseEvent")]
    doc._.doc_id = "p1"
    doc._.relation_pairs = [((0, 1, "Drug", "MeSH:D001241"), (2, 3, "AdverseEvent", ""), {"CAUSES": 0.9})]
    write_corpus([doc], tmp_path / "p", format="brat")
    assert (tmp_path / "p" / "p1.txt").read_text() == "Aspirin caused nausea."
    assert (tmp_path / "p" / "p1.ann").read_text() == (
        "T1\tDrug 0 7\tAspirin\nT2\tAdverseEvent 15 21\tnausea\n"
        "R1\tCAUSES Arg1:T1 Arg2:T2\nN1\tReference T1 MeSH:D001241\tAspirin\n"
    )


@pytest.mark.parametrize("ann,match", [
    ("T1\tDrug 0 99\tAspirin\n", r"aspirin.ann:1: \[E102\]"),
    ("T1\tDrug 0 7\tAspirine\n", r"aspirin.ann:1: \[E142\] the text of T1, 'Aspirine'"),
    ("T1\tDrug 0;7\tAspirin\n", r"aspirin.ann:1: \[E101\] .*offsets of T1"),
    ("T1\tDrug 0 7\tAspirin\nR1\tCAUSES Arg1:T1 Arg2:T9\n", r"aspirin.ann:2: \[E108\] .*'T9'"),
    ("T1\tDrug 0 7\tAspirin\nT1\tDrug 0 7\tAspirin\n", r"aspirin.ann:2: \[E116\]"),
    ("X1\tfoo\n", r"aspirin.ann:1: \[E101\] malformed line: not a brat annotation line"),
])
def test_bad_lines_are_coded_errors_with_file_and_line(tmp_path, ann, match):
    shutil.copy(SAMPLE / "aspirin.txt", tmp_path / "aspirin.txt")
    (tmp_path / "aspirin.ann").write_text(ann)
    with pytest.raises(ValueError, match=match):
        list(iter_records(tmp_path, "brat"))
    stats = CorpusStats()
    list(iter_records(tmp_path, "brat", on_error="skip", stats=stats))
    assert stats.skipped == 1


def test_ann_without_its_text_is_E141(tmp_path):
    (tmp_path / "lonely.ann").write_text("T1\tDrug 0 7\tAspirin\n")
    with pytest.raises(ValueError, match=r"\[E141\].*lonely.txt"):
        list(iter_records(tmp_path, "brat"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"\[E140\] brat standoff: no .ann file"):
        list(iter_records(tmp_path / "empty", "brat"))


def test_writing_brat_over_a_file_is_E110(tmp_path):
    (tmp_path / "f").write_text("x")
    doc = Doc(spacy.blank("en").vocab, words=["a"])
    with pytest.raises(ValueError, match=r"\[E110\] cannot write brat standoff"):
        write_corpus([doc], tmp_path / "f", format="brat")


def test_unchanged_tree_after_reading(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(SAMPLE, copy)
    list(read_corpus(copy))
    assert not filecmp.dircmp(SAMPLE, copy).diff_files


def test_annotate_writes_a_brat_folder(tmp_path):
    """annotate's output as brat: a folder of .txt + .ann, one pair per
    input document; no rejects file when nothing was rejected."""
    from spacy_biobert.annotate import annotate

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "Drug", "pattern": [{"LOWER": "aspirin"}]}])
    (tmp_path / "in.jsonl").write_text(
        '{"id": "a", "text": "Aspirin caused nausea."}\n{"id": "b", "text": "No drug here."}\n'
    )
    out = tmp_path / "out"
    stats = annotate(nlp, tmp_path / "in.jsonl", out, output_format="brat")
    assert stats.documents == 2 and stats.rejected == 0
    assert files_of(out) == ["a.ann", "a.txt", "b.ann", "b.txt"]
    assert (out / "a.ann").read_text() == "T1\tDrug 0 7\tAspirin\n" and (out / "b.ann").read_text() == ""
    assert not Path(f"{out}.rejects.jsonl").exists() and not Path(f"{out}.partial").exists()
    # and it reads back as brat
    assert [d.ents[0].text for d in read_corpus(out) if d.ents] == ["Aspirin"]
