import json
from pathlib import Path

import pytest
import spacy

from spacy_biobert.corpora import (
    CorpusFormatError,
    CorpusStats,
    iter_bioc_records,
    iter_chemprot_records,
    iter_pubtator_records,
    read_bioc,
    read_chemprot,
    read_pubtator,
    write_bioc_json,
    write_bioc_xml,
)
from spacy_biobert.corpora.jsonl import iter_jsonl_records, read_jsonl, write_jsonl
from spacy_biobert.extensions import MENTIONS_KEY

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny.pubtator"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def key(records):
    return [
        (
            r.doc_id,
            r.text,
            sorted(
                (m.id, m.start, m.end, m.text, m.type, m.kb_id, m.components)
                for m in r.mentions
            ),
            [dict(x) for x in r.relations],
        )
        for r in records
    ]


@pytest.mark.parametrize(
    "writer,suffix",
    [(write_bioc_xml, ".xml"), (write_bioc_json, ".json"), (write_jsonl, ".jsonl")],
)
def test_pubtator_to_format_and_back(nlp, tmp_path, writer, suffix):
    out = tmp_path / f"tiny{suffix}"
    assert writer(read_pubtator(TINY, nlp), out) == 2
    reader = iter_jsonl_records if suffix == ".jsonl" else iter_bioc_records
    assert key(reader(out)) == key(iter_pubtator_records(TINY))
    read = read_jsonl if suffix == ".jsonl" else read_bioc
    doc = next(read(out, nlp))
    assert doc._.gold_relations == [
        {"level": "concept", "head": "D003042", "tail": "D064420", "label": "CID"}
    ]
    assert [s.kb_id_ for s in doc.spans[MENTIONS_KEY]][2] == "D014786|D006311"
    assert doc.has_annotation("SENT_START")


@pytest.mark.parametrize(
    "writer,suffix",
    [(write_bioc_xml, ".xml"), (write_bioc_json, ".json"), (write_jsonl, ".jsonl")],
)
def test_chemprot_to_format_and_back(nlp, tmp_path, writer, suffix):
    folder = DATA / "chemprot_tiny"
    out = tmp_path / f"cp{suffix}"
    writer(read_chemprot(folder, nlp), out)
    reader = iter_jsonl_records if suffix == ".jsonl" else iter_bioc_records
    assert key(reader(out)) == key(iter_chemprot_records(folder))


def test_bioc_xml_layout(nlp, tmp_path):
    out = tmp_path / "t.xml"
    write_bioc_xml(read_pubtator(TINY, nlp), out)
    xml = out.read_text()
    assert '<infon key="type">title</infon>' in xml
    assert (
        '<infon key="individual_mentions">Ocular toxicity|auditory toxicity</infon>' in xml
    )
    assert '<infon key="level">concept</infon>' in xml


def test_document_without_passages_round_trips(nlp, tmp_path):
    # found by tests/test_fuzz_corpora.py: an empty document gained a "text" passage
    src = tmp_path / "a.xml"
    src.write_text(
        '<?xml version="1.0"?><collection><source/><date/><key/>'
        "<document><id>0</id></document></collection>"
    )
    (record,) = iter_bioc_records(src)
    assert record.passages == []
    write_bioc_xml(read_bioc(src, nlp), tmp_path / "b.xml")
    (again,) = iter_bioc_records(tmp_path / "b.xml")
    assert (again.doc_id, again.text, again.passages) == ("0", "", [])


def test_bc5cdr_bioc_style_relations(nlp, tmp_path):
    """The BioC files of BC5CDR: MESH infons and CID relations as infons."""
    xml = """<?xml version='1.0' encoding='utf-8' standalone='yes'?>
<collection><source>BC5CDR</source><date>2015</date><key>x.key</key>
<document><id>1</id>
<passage><infon key="type">title</infon><offset>0</offset><text>Aspirin ulcers.</text>
<annotation id="0"><infon key="MESH">D001241</infon><infon key="type">Chemical</infon>
<location offset="0" length="7"/><text>Aspirin</text></annotation>
<annotation id="1"><infon key="MESH">D014456</infon><infon key="type">Disease</infon>
<location offset="8" length="6"/><text>ulcers</text></annotation></passage>
<relation id="R0"><infon key="relation">CID</infon><infon key="Chemical">D001241</infon>
<infon key="Disease">D014456</infon></relation>
</document></collection>"""
    path = tmp_path / "cdr.xml"
    path.write_text(xml)
    doc = next(read_bioc(path, nlp))
    assert [(s.text, s.kb_id_, s.id_) for s in doc.spans[MENTIONS_KEY]] == [
        ("Aspirin", "D001241", "0"),
        ("ulcers", "D014456", "1"),
    ]
    assert doc._.gold_relations == [
        {"level": "concept", "head": "D001241", "tail": "D014456", "label": "CID"}
    ]


def test_predicted_doc_jsonl(nlp, tmp_path):
    doc = nlp.make_doc("Aspirin causes ulcers.")
    doc._.doc_id = "9"
    doc.ents = [
        doc.char_span(0, 7, label="Chemical", kb_id="D001241"),
        doc.char_span(15, 21, label="Disease"),
    ]
    doc._.relations = {(0, 2): {"CID": 0.8}}
    out = tmp_path / "p.jsonl"
    write_jsonl([doc], out)
    obj = json.loads(out.read_text())
    assert obj["mentions"][1] == {
        "id": "M2",
        "start": 15,
        "end": 21,
        "text": "ulcers",
        "type": "Disease",
        "kb_id": "",
    }
    assert (
        obj["predicted_relations"][0]["head"] == "M1"
        and obj["predicted_relations"][0]["score"] == 0.8
    )
    write_bioc_xml([doc], tmp_path / "p.xml")
    assert '<infon key="score">0.8</infon>' in (tmp_path / "p.xml").read_text()


def test_plain_text_jsonl(nlp, tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_text('{"text": "Aspirin causes ulcers."}\n{"id": "x", "text": "More."}\n')
    docs = list(read_jsonl(path, nlp))
    assert [d._.doc_id for d in docs] == ["", "x"] and len(docs[0].spans[MENTIONS_KEY]) == 0


@pytest.mark.parametrize(
    "content,line,code",
    [
        ("<collection><document><id>1</id><passage><offset>0</offset>", 1, "E101"),
        (
            "<collection><document><id>1</id>\n<passage><offset>0</offset><text>Ab</text>\n"
            '<annotation id="a"><location offset="0" '
            'length="9"/><text>Ab</text></annotation>'
            "</passage></document></collection>",
            1,
            "E102",
        ),
        (
            "<collection><document><id>1</id>\n<passage><offset>0</offset><text>Ab</text>\n"
            '<annotation id="a"><location offset="0" '
            'length="1"/><text>X</text></annotation>'
            "</passage></document></collection>",
            1,
            "E103",
        ),
    ],
)
def test_bad_bioc_xml(nlp, tmp_path, content, line, code):
    path = tmp_path / "bad.xml"
    path.write_text(content)
    with pytest.raises(CorpusFormatError, match=rf"bad.xml:{line}: \[{code}\]"):
        list(read_bioc(path, nlp))


def test_bad_bioc_skip_keeps_document(nlp, tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(
        "<collection><document><id>1</id>\n<passage><offset>0</offset><text>Ab cd</text>\n"
        '<annotation id="a"><location offset="0" length="1"/><text>X</text></annotation>'
        '<annotation id="b"><location offset="3" length="2"/><text>cd</text></annotation>'
        "</passage></document></collection>"
    )
    stats = CorpusStats()
    docs = list(read_bioc(path, nlp, on_error="skip", stats=stats))
    assert len(docs) == 1 and [s.id_ for s in docs[0].spans[MENTIONS_KEY]] == ["b"]
    assert stats.skipped == 1


def test_bad_bioc_json(nlp, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        '{"source": "", "date": "", "key": "", "infons": {},\n'
        ' "documents": [\n {"id": "1",}]}'
    )
    with pytest.raises(
        CorpusFormatError, match=r"bad.json:3: \[E101\] malformed line: not valid JSON"
    ):
        list(read_bioc(path, nlp))
    path.write_bytes(b'{"documents": [{"id": "caf\xe9"}]}')
    with pytest.raises(CorpusFormatError, match=r"bad.json:1: \[E104\]"):
        list(read_bioc(path, nlp))
    path.write_text("")
    with pytest.raises(CorpusFormatError, match=r"bad.json: \[E105\]"):
        list(read_bioc(path, nlp))
    path.write_text(
        '{"source": "", "date": "", "key": "", "infons": {}, "documents": [{"id": "1"}]}'
    )
    with pytest.raises(
        CorpusFormatError, match=r"bad.json:1: \[E114\] document 1 \(#1 in the file\): .*infons"
    ):
        list(read_bioc(path, nlp))


def test_bad_jsonl(nlp, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"text": "ok"}\n{"text": \n{"id": 3}\n'
        '{"text": "Ab", "mentions": [{"start": 0, "end": 5}]}\n'
    )
    with pytest.raises(CorpusFormatError, match=r"bad.jsonl:2: \[E101\]"):
        list(read_jsonl(path, nlp))
    stats = CorpusStats()
    docs = list(read_jsonl(path, nlp, on_error="skip", stats=stats))
    assert len(docs) == 2 and stats.skipped == 3 and stats.skipped_documents == 2


BIOC_FILES = [
    "bc5cdr/CDR_TrainingSet.PubTator.txt",
    "bc5cdr/CDR_DevelopmentSet.PubTator.txt",
    "ncbi-disease/NCBItrainset_corpus.txt",
    "ncbi-disease/NCBIdevelopset_corpus.txt",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", BIOC_FILES)
def test_real_pubtator_via_bioc(corpora_dir, tmp_path, name):
    path = corpora_dir / name
    docs = list(read_pubtator(path))
    expected = key(iter_pubtator_records(path))
    write_bioc_xml(docs, tmp_path / "c.xml")
    assert key(iter_bioc_records(tmp_path / "c.xml")) == expected
    write_bioc_json(docs, tmp_path / "c.json")
    assert key(iter_bioc_records(tmp_path / "c.json")) == expected
    write_jsonl(docs, tmp_path / "c.jsonl")
    assert key(iter_jsonl_records(tmp_path / "c.jsonl")) == expected


@pytest.mark.slow
@pytest.mark.parametrize("split", ["chemprot_training", "chemprot_development"])
def test_real_chemprot_via_bioc(corpora_dir, tmp_path, split):
    folder = corpora_dir / "chemprot" / split
    docs = list(read_chemprot(folder))
    expected = key(iter_chemprot_records(folder))
    write_bioc_xml(docs, tmp_path / "c.xml")
    assert key(iter_bioc_records(tmp_path / "c.xml")) == expected
    write_bioc_json(docs, tmp_path / "c.json")
    assert key(iter_bioc_records(tmp_path / "c.json")) == expected


# --- the whole text of a passage: comments, processing instructions, markup ---------------

MARKUP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<collection><source>x</source><date></date><key></key>
<document><id>1</id>
<passage><infon key="type">ti<!-- c -->tle</infon><offset>0</offset>
<text>Aspirin causes headache<!-- n -->. Naloxone <?pi x?>reverses {inner} fast.</text>
<annotation id="A1"><infon key="type">Chemical</infon><location offset="25" length="8"/>
<text>Nal<!-- c -->oxone</text></annotation>
</passage></document></collection>
"""
WHOLE_TEXT = "Aspirin causes headache. Naloxone reverses it fast."


def test_comments_and_processing_instructions_in_bioc_text_keep_the_whole_text(tmp_path):
    path = tmp_path / "c.xml"
    path.write_text(MARKUP_XML.format(inner="it"), encoding="utf8")
    stats = CorpusStats()
    (rec,) = iter_bioc_records(path, stats=stats)
    assert rec.text == WHOLE_TEXT
    assert rec.passages == [("title", 0, WHOLE_TEXT)]
    assert [(m.start, m.end, m.text) for m in rec.mentions] == [(25, 33, "Naloxone")]
    assert stats.markup == 0  # legal XML, nothing to say


def test_markup_in_bioc_text_keeps_its_text_and_is_counted(tmp_path, caplog):
    path = tmp_path / "m.xml"
    path.write_text(MARKUP_XML.format(inner="<i>i<b>t</b></i>"), encoding="utf8")
    stats = CorpusStats()
    (doc,) = read_bioc(path, stats=stats)
    assert doc.text == WHOLE_TEXT and stats.markup == 1
    assert "W107" in caplog.text and "<b>, <i>" in caplog.text


def test_bioc_text_with_a_comment_through_convert_and_annotate(tmp_path):
    from typer.testing import CliRunner

    from spacy_biobert.annotate import annotate
    from spacy_biobert.cli import app

    src = tmp_path / "c.xml"
    src.write_text(MARKUP_XML.format(inner="it"), encoding="utf8")
    res = CliRunner().invoke(app, ["convert", str(src), str(tmp_path / "c.jsonl")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "c.jsonl").read_text())["text"] == WHOLE_TEXT
    nlp = spacy.blank("en")
    annotate(nlp, src, tmp_path / "a.jsonl")
    assert json.loads((tmp_path / "a.jsonl").read_text())["text"] == WHOLE_TEXT
