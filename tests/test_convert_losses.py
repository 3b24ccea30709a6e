"""`convert` never drops data without a word: a conversion to a format that
cannot hold something is refused with E121 and the counts of what would be
lost, unless --allow-loss (`write_corpus(..., allow_loss=True)`), which
writes the file and reports what was dropped. And a writer never writes a
file the project's own reader rejects."""

import json
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_biobert.cli import app
from spacy_biobert.corpora import (
    CorpusFormatError,
    iter_bioc_records,
    iter_chemprot_records,
    iter_pubtator_records,
    read_bioc,
    write_bioc_json,
    write_bioc_xml,
    write_pubtator,
)
from spacy_biobert.corpora.formats import iter_records, read_corpus, write_corpus
from spacy_biobert.corpora.jsonl import read_jsonl
from spacy_biobert.corpora.losses import LossReport, document_losses

DATA = Path(__file__).parent / "data"
PUBTATOR = DATA / "tiny.pubtator"
CHEMPROT = DATA / "chemprot_tiny"
runner = CliRunner()


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def convert(*args: str):
    res = runner.invoke(app, ["convert", *map(str, args)])
    return res, " ".join(res.output.split())


def test_chemprot_to_pubtator_refuses_to_drop_the_cpr_relations(tmp_path, nlp):
    out = tmp_path / "cp.pubtator"
    with pytest.raises(ValueError, match=r"E121.*to pubtator.*5 mention-level relations .* in 1 document"):
        write_corpus(read_corpus(CHEMPROT, nlp), out)
    assert not out.exists()
    res, text = convert(CHEMPROT, out)
    assert res.exit_code == 1 and "E121" in text and "5 mention-level relations" in text, text
    assert "--allow-loss" in text and not out.exists()
    res, text = convert(CHEMPROT, out, "--allow-loss")
    assert res.exit_code == 0, text
    assert "Not written" in text and "mention-level relations" in text and "Wrote 2 document(s)" in text
    assert [r.relations for r in iter_pubtator_records(out)] == [[], []]


def test_pubtator_to_chemprot_refuses_to_drop_kb_ids_and_cid(tmp_path, nlp):
    out = tmp_path / "cp" / "cp"
    report = LossReport("chemprot")
    with pytest.raises(ValueError, match="E121") as info:
        write_corpus(read_corpus(PUBTATOR, nlp), out, "chemprot", losses=report)
    message = str(info.value)
    assert "5 kb ids in 2 document(s)" in message
    assert "1 document-level relations (such as BC5CDR's CID) in 1 document(s)" in message
    assert "1 individual-mention columns" in message
    assert not list(tmp_path.rglob("*.tsv"))
    report = LossReport("chemprot")
    assert write_corpus(read_corpus(PUBTATOR, nlp), out, "chemprot", allow_loss=True, losses=report) == 2
    assert {name: n for name, n, _ in report.rows()} == {
        "kb ids": 5,
        "document-level relations (such as BC5CDR's CID)": 1,
        "individual-mention columns (BC5CDR's 7th column)": 1,
    }
    records = list(iter_chemprot_records(out))
    assert [len(r.mentions) for r in records] == [5, 1] and all(not r.relations for r in records)


NO_ID_BIOC = """<?xml version="1.0" encoding="UTF-8"?>
<collection><source>x</source><date></date><key></key>
<document><passage><infon key="type">title</infon><offset>0</offset><text>Aspirin title.</text></passage>
<passage><infon key="type">abstract</infon><offset>15</offset><text>Abstract text.</text></passage></document>
</collection>
"""


def test_a_bioc_document_without_an_id_is_not_silently_0_in_pubtator(tmp_path):
    src = tmp_path / "noid.xml"
    src.write_text(NO_ID_BIOC)
    out = tmp_path / "o.pubtator"
    res, text = convert(src, out)
    assert res.exit_code == 1 and "E121" in text and "1 empty document ids (written as '0')" in text
    assert not out.exists()
    res, text = convert(src, out, "--allow-loss")
    assert res.exit_code == 0 and "empty document ids" in text
    assert [r.doc_id for r in iter_pubtator_records(out)] == ["0"]


OVERLAPPING = {
    "id": "1",
    "text": "abcdef ghi",
    "passages": [{"type": "title", "offset": 0, "length": 6}, {"type": "abstract", "offset": 3, "length": 7}],
    "mentions": [{"id": "M1", "start": 7, "end": 10, "type": "Chemical"}],
}


@pytest.mark.parametrize("suffix", [".xml", ".json"])
def test_jsonl_with_overlapping_passages_is_never_bioc_the_reader_rejects(tmp_path, nlp, suffix):
    src = tmp_path / "ov.jsonl"
    src.write_text(json.dumps(OVERLAPPING) + "\n")
    out = tmp_path / f"ov{suffix}"
    writer = write_bioc_xml if suffix == ".xml" else write_bioc_json
    with pytest.raises(ValueError, match=r"E110.*overlaps"):  # the writer itself
        writer(read_jsonl(src, nlp), out)
    res, text = convert(src, out)
    assert res.exit_code == 1 and "E121" in text and "passage layouts BioC cannot hold" in text, text
    assert not out.exists()
    res, text = convert(src, out, "--allow-loss")
    assert res.exit_code == 0, text
    (rec,) = iter_bioc_records(out)  # read back: the whole text, one passage, the mention
    assert rec.text == "abcdef ghi" and rec.passages == [("text", 0, "abcdef ghi")]
    assert [(m.start, m.end, m.text) for m in rec.mentions] == [(7, 10, "ghi")]


def test_text_outside_the_passages_is_not_dropped_by_bioc(tmp_path, nlp):
    src = tmp_path / "gap.jsonl"
    passages = [{"offset": 0, "length": 3}, {"offset": 4, "length": 3}]
    doc = {"id": "1", "text": "abc\ndef tail", "passages": passages}
    src.write_text(json.dumps(doc) + "\n")
    with pytest.raises(ValueError, match=r"E110.*outside its passages"):
        write_bioc_xml(read_jsonl(src, nlp), tmp_path / "gap.xml")
    report = LossReport("bioc-xml")
    write_corpus(read_jsonl(src, nlp), tmp_path / "gap.xml", allow_loss=True, losses=report)
    assert report.items and [r.text for r in iter_bioc_records(tmp_path / "gap.xml")] == ["abc\ndef tail"]


def test_line_breaks_between_passages_are_reported_for_bioc(tmp_path, nlp):
    src = tmp_path / "lines.jsonl"
    passages = [{"type": "title", "offset": 0, "length": 5}, {"type": "abstract", "offset": 6, "length": 5}]
    src.write_text(json.dumps({"id": "1", "text": "Title\nAbstr\n", "passages": passages}) + "\n")
    with pytest.raises(ValueError, match=r"E121.*1 texts with whitespace other than spaces"):
        write_corpus(read_jsonl(src, nlp), tmp_path / "o.xml")
    write_corpus(read_jsonl(src, nlp), tmp_path / "o.xml", allow_loss=True)
    (rec,) = iter_bioc_records(tmp_path / "o.xml")  # the offsets are the same
    assert rec.text == "Title Abstr" and rec.passages == [("title", 0, "Title"), ("abstract", 6, "Abstr")]


def test_annotate_writes_blank_line_text_as_bioc(tmp_path):
    """annotate's documents of several lines are passages with line breaks
    between them: BioC writes them (the offsets hold), it does not refuse."""
    from spacy_biobert.annotate import annotate

    src = tmp_path / "in.txt"
    src.write_text("cocaine and\nlithium\n\nnaloxone\n")
    for out in (tmp_path / "o.xml", tmp_path / "o.json"):
        stats = annotate(spacy.blank("en"), src, out, text_docs="blank-line")
        assert stats.documents == 2 and stats.rejected == 0
        assert [r.text for r in iter_bioc_records(out)] == ["cocaine and lithium", "naloxone"]


@pytest.mark.parametrize("target", ["o.xml", "o.json", "o.jsonl", "o.spacy"])
@pytest.mark.parametrize("source", [PUBTATOR, CHEMPROT])
def test_conversions_that_keep_everything_need_no_flag(tmp_path, source, target):
    res, text = convert(source, tmp_path / target)
    assert res.exit_code == 0 and "Not written" not in text, text


@pytest.mark.parametrize("source,target", [(PUBTATOR, "o.pubtator"), (CHEMPROT, "cp/")])
def test_a_format_written_as_itself_loses_nothing(tmp_path, nlp, source, target):
    out = tmp_path / target
    fmt = "chemprot" if target.endswith("/") else None
    assert all(not document_losses(d, fmt or "pubtator") for d in read_corpus(source, nlp))
    res, text = convert(source, out)
    assert res.exit_code == 0 and "Not written" not in text, text


MENTION_RELATION_BIOC = """<?xml version="1.0" encoding="UTF-8"?>
<collection><source>x</source><date></date><key></key>
<document><id>9</id>
<passage><infon key="type">title</infon><offset>0</offset><text>Aspirin inhibits COX.</text>
<annotation id="T2"><infon key="type">CHEMICAL</infon>
<location offset="0" length="7"/><text>Aspirin</text></annotation>
<annotation id="A1"><infon key="type">GENE-Y</infon>
<location offset="17" length="3"/><text>COX</text></annotation>
</passage>
<passage><infon key="type">abstract</infon><offset>22</offset><text>Nothing.</text></passage>
<relation id="R1"><infon key="type">CPR:4</infon>
<node refid="T2" role="head"/><node refid="A1" role="tail"/></relation>
<relation id="R2"><infon key="type">CPR:9</infon>
<node refid="T2" role="head"/><node refid="X9" role="tail"/></relation>
</document></collection>
"""


def test_chemprot_ids_and_relation_arguments_stay_readable(tmp_path, nlp):
    """BioC ids that are not ChemProt's T<n> are renamed without clashing
    (A1 must not become T2, Aspirin's id), the relations follow the new ids,
    and a relation whose tail is no mention is not written (the reader would
    reject the line) but counted."""
    src = tmp_path / "rel.xml"
    src.write_text(MENTION_RELATION_BIOC)
    report = LossReport("chemprot")
    write_corpus(read_bioc(src, nlp), tmp_path / "cp" / "cp", "chemprot", allow_loss=True, losses=report)
    assert [(name, n) for name, n, _ in report.rows()] == [
        ("mention-level relations whose head or tail is no mention of the document", 1)
    ]
    (rec,) = iter_chemprot_records(tmp_path / "cp" / "cp")
    assert sorted((m.id, m.text) for m in rec.mentions) == [("T1", "COX"), ("T2", "Aspirin")]
    assert [(r["label"], r["head"], r["tail"]) for r in rec.relations] == [("CPR:4", "T2", "T1")]


@pytest.mark.parametrize(
    "relation,match",
    [
        ({"level": "concept", "head": "D1", "tail": "D2", "label": "3"}, "needs a LABEL"),
        ({"level": "concept", "head": "D1", "tail": "D2", "label": "C\tID"}, "tab or line break"),
    ],
)
def test_pubtator_refuses_relations_its_reader_would_reject(tmp_path, nlp, relation, match):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "1", "text": "Title here", "relations": [relation],
                               "passages": [{"type": "title", "offset": 0, "length": 5},
                                            {"type": "abstract", "offset": 6, "length": 4}]}) + "\n")
    with pytest.raises(ValueError, match=rf"E110.*{match}"):
        write_pubtator(read_jsonl(src, nlp), tmp_path / "o.pubtator")
    assert not (tmp_path / "o.pubtator").exists()


@pytest.mark.parametrize(
    "relation,what",
    [
        ({}, "'head' must be a string"),
        ({"head": "M1", "tail": "M1"}, "'label' must be a string"),
        ({"head": "M1", "tail": 3, "label": "x"}, "'tail' must be a string"),
        ({"level": "doc", "head": "a", "tail": "b", "label": "x"}, "'level' must be 'concept' or 'mention'"),
        ({"level": "concept", "head": "", "tail": "b", "label": "x"}, "'head' must be a non-empty id"),
    ],
)
def test_jsonl_relations_every_writer_can_take(tmp_path, relation, what):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "1", "text": "cocaine", "relations": [relation]}) + "\n")
    with pytest.raises(CorpusFormatError, match=rf"E114.*relation #1 {what}"):
        list(iter_records(src))
    res, text = convert(src, tmp_path / "o.xml")  # used to be a KeyError traceback
    assert res.exit_code == 1 and "E114" in text and isinstance(res.exception, SystemExit)


BRAT = DATA / "brat_sample"


def test_brat_written_as_itself_loses_nothing(tmp_path, nlp):
    assert all(not document_losses(d, "brat") for d in read_corpus(BRAT, nlp))
    res, text = convert(BRAT, tmp_path / "out", "--to", "brat")
    assert res.exit_code == 0 and "Not written" not in text, text


def test_pubtator_to_brat_refuses_to_drop_cid_and_passages(tmp_path, nlp):
    """brat keeps kb ids (N lines) and the text, not BC5CDR's document-level
    relations or the title/abstract passages."""
    with pytest.raises(ValueError, match=r"E121.*to brat.*document-level relations"):
        write_corpus(read_corpus(PUBTATOR, nlp), tmp_path / "o", "brat")
    res, text = convert(PUBTATOR, tmp_path / "o", "--to", "brat", "--allow-loss")
    assert res.exit_code == 0 and "Not written" in text and "passage layouts" in text, text
    assert "kb ids" not in text
