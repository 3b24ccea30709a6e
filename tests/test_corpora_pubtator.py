from collections import Counter
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_biobert.corpora import (
    SOURCE_KEY,
    CorpusFormatError,
    CorpusStats,
    iter_pubtator_records,
    mention_ids,
    read_pubtator,
    write_pubtator,
)
from spacy_biobert.extensions import MENTIONS_KEY, install_extensions

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny.pubtator"


@pytest.fixture(scope="module")
def nlp():
    install_extensions()
    return spacy.blank("en")


def records_key(records):
    return [
        (
            r.doc_id,
            r.text,
            [
                (m.id, m.start, m.end, m.text, m.type, m.kb_id, m.components)
                for m in r.mentions
            ],
            r.relations,
        )
        for r in records
    ]


def test_read_tiny(nlp):
    stats = CorpusStats()
    docs = list(read_pubtator(TINY, nlp, stats=stats))
    assert [d._.doc_id for d in docs] == ["111", "222"]
    doc = docs[0]
    assert doc.text.startswith("Cocaine-induced toxicity. Ocular")
    mentions = list(doc.spans[MENTIONS_KEY])
    assert [m.id_ for m in mentions] == ["M1", "M2", "M3", "M4", "M5"]
    assert mentions[2].kb_id_ == "D014786|D006311"
    assert mention_ids(mentions[2]) == ["D014786", "D006311"]
    assert mentions[3].kb_id_ == "-1" and mention_ids(mentions[3]) == []
    assert doc.user_data[SOURCE_KEY]["mentions"]["M3"]["components"] == (
        "Ocular toxicity|auditory toxicity"
    )
    assert doc.user_data[SOURCE_KEY]["mentions"]["M2"]["components"] == ""
    assert [(e.text, e.label_, e.kb_id_) for e in doc.ents][:2] == [
        ("Cocaine", "Chemical", "D003042"),
        ("toxicity", "Disease", "D064420"),
    ]
    assert doc._.gold_relations == [
        {"level": "concept", "head": "D003042", "tail": "D064420", "label": "CID"}
    ]
    assert doc.has_annotation("SENT_START")
    assert [s.text for s in doc.sents][0] == "Cocaine-induced toxicity."
    # NCBI quirks: stray whitespace in the id, trailing spaces in the mention.
    m = docs[1].spans[MENTIONS_KEY][0]
    assert m.kb_id_ == "D004829+D004827" and m.text == "generalized epilepsy"
    assert mention_ids(m) == ["D004829", "D004827"]
    assert stats.documents == 2 and stats.mentions == 6 and stats.relations == 1


def test_default_tokenizer_expands_misaligned(nlp):
    stats = CorpusStats()
    doc = next(read_pubtator(TINY, nlp, stats=stats))
    # "Na" in "Na+" and "[3H]-naloxone" do not fall on default English tokens.
    assert stats.misaligned >= 1
    spans = {s.id_: s for s in doc.spans[MENTIONS_KEY]}
    assert spans["M5"].text == "Na+"  # expanded, not dropped
    assert doc.user_data[SOURCE_KEY]["mentions"]["M5"]["start"] == 79
    bio = CorpusStats()
    list(read_pubtator(TINY, None, stats=bio))  # biomedical tokenizer
    assert bio.misaligned == 0


def test_label_map_only_renames_ents(nlp):
    docs = list(read_pubtator(TINY, nlp, label_map={"SpecificDisease": "Disease"}))
    assert docs[1].ents[0].label_ == "Disease"
    assert docs[1].spans[MENTIONS_KEY][0].label_ == "SpecificDisease"


def test_round_trip_tiny_bytes(nlp, tmp_path):
    out = tmp_path / "out.pubtator"
    assert write_pubtator(read_pubtator(TINY, nlp), out) == 2
    assert out.read_bytes() == TINY.read_bytes()


def test_docbin_keeps_contract(nlp, tmp_path):
    docs = list(read_pubtator(TINY, nlp))
    db = DocBin(store_user_data=True, docs=docs)
    docs2 = list(DocBin().from_bytes(db.to_bytes()).get_docs(nlp.vocab))
    for a, b in zip(docs, docs2):
        assert b._.doc_id == a._.doc_id
        assert [
            (s.id_, s.kb_id_, s.label_, s.start, s.end) for s in b.spans[MENTIONS_KEY]
        ] == [(s.id_, s.kb_id_, s.label_, s.start, s.end) for s in a.spans[MENTIONS_KEY]]
        assert [(e.kb_id_, e.id_) for e in b.ents] == [(e.kb_id_, e.id_) for e in a.ents]
        # msgpack gives tuples back for lists
        assert list(b._.gold_relations) == a._.gold_relations
        assert b.has_annotation("SENT_START")
    out = tmp_path / "again.pubtator"
    write_pubtator(docs2, out)
    assert out.read_bytes() == TINY.read_bytes()


def test_predicted_doc_written(nlp, tmp_path):
    install_extensions()
    doc = nlp.make_doc("Aspirin causes ulcers.")
    doc._.doc_id = "9"
    doc.ents = [doc.char_span(0, 7, label="Chemical", kb_id="D001241")]
    doc.ents[0]  # noqa: B018
    out = tmp_path / "pred.pubtator"
    write_pubtator([doc], out)
    assert (
        out.read_text()
        == "9|t|Aspirin causes ulcers.\n9|a|\n9\t0\t7\tAspirin\tChemical\tD001241\n\n"
    )


def test_registered_reader(nlp):
    reader = spacy.registry.readers.get("spacy-biobert.PubTatorCorpus.v1")
    corpus = reader(path=str(TINY), limit=1, label_map=None)
    examples = list(corpus(nlp))
    assert len(examples) == 1
    eg = examples[0]
    assert [t.text for t in eg.predicted] == [t.text for t in eg.reference]
    assert eg.predicted._.doc_id == "111"
    assert len(eg.reference.ents) == 5
    assert corpus.stats.misaligned >= 1


def test_registered_reader_from_config(nlp):
    from thinc.api import Config

    cfg = Config().from_str(
        f"""
        [corpus]
        @readers = "spacy-biobert.PubTatorCorpus.v1"
        path = "{TINY}"
        limit = null
        label_map = {{"SpecificDisease": "Disease"}}
        """
    )
    corpus = spacy.registry.resolve(cfg)["corpus"]
    examples = list(corpus(nlp))
    assert [e.label_ for e in examples[1].reference.ents] == ["Disease"]


# --- bad input ---------------------------------------------------------------

GOOD = "1|t|Title one.\n1|a|Abstract text.\n1\t0\t5\tTitle\tChemical\tD1\n\n"


def _write(tmp_path, text, name="bad.txt", encoding="utf8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return p


@pytest.mark.parametrize(
    "text,line,code",
    [
        (GOOD + "2|t|T\n2|a|A b\n2\t0\t1\tT\tChemical\n\n", 7, "E101"),
        (GOOD + "2|t|T\n2|a|A b\n2\tx\t1\tT\tChemical\tD1\n\n", 7, "E101"),
        (GOOD + "2|t|T\n2|a|A b\n2\t0\t99\tT\tChemical\tD1\n\n", 7, "E102"),
        (GOOD + "2|t|T\n2|a|A b\n2\t0\t1\tX\tChemical\tD1\n\n", 7, "E103"),
        (GOOD + "2|t|T\n2\t0\t1\tT\tChemical\tD1\n\n", 6, "E101"),
        (GOOD + "3\t0\t1\tT\tChemical\tD1\n\n", 5, "E101"),
    ],
)
def test_bad_input_raises_with_file_and_line(nlp, tmp_path, text, line, code):
    path = _write(tmp_path, text)
    with pytest.raises(CorpusFormatError, match=rf"bad.txt:{line}: \[{code}\]") as info:
        list(read_pubtator(path, nlp))
    assert info.value.line == line and info.value.path == str(path)
    assert isinstance(info.value, ValueError)
    # skip mode: the bad record is counted, every good document is kept
    stats = CorpusStats()
    docs = list(read_pubtator(path, nlp, on_error="skip", stats=stats))
    assert stats.skipped == 1
    assert "1" in [d._.doc_id for d in docs]
    assert stats.documents + stats.skipped_documents == 2 or code in (
        "E102",
        "E103",
        "E101",
    )


def test_skip_keeps_document_when_only_a_mention_is_bad(nlp, tmp_path):
    path = _write(tmp_path, GOOD + "2|t|T\n2|a|A b\n2\t0\t99\tT\tChemical\tD1\n\n")
    stats = CorpusStats()
    docs = list(read_pubtator(path, nlp, on_error="skip", stats=stats))
    assert [d._.doc_id for d in docs] == ["1", "2"]
    assert stats.skipped == 1 and stats.skipped_documents == 0
    assert "bad.txt:7" in str(stats.errors[0])


def test_wrong_encoding(nlp, tmp_path):
    path = _write(tmp_path, "1|t|Title\n1|a|Caf\xe9 text\n\n", encoding="latin-1")
    with pytest.raises(
        CorpusFormatError, match=r"bad.txt:2: \[E104\] the file is not valid UTF8"
    ):
        list(read_pubtator(path, nlp))
    stats = CorpusStats()
    assert list(read_pubtator(path, nlp, on_error="skip", stats=stats)) == []
    assert stats.skipped_documents == 1


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(nlp, tmp_path, content):
    path = _write(tmp_path, content)
    with pytest.raises(CorpusFormatError, match=r"bad.txt: \[E105\] the file is empty"):
        list(read_pubtator(path, nlp))


def test_on_error_value_checked(tmp_path):
    with pytest.raises(ValueError, match="E109"):
        list(iter_pubtator_records(TINY, on_error="ignore"))


def test_missing_file_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="E106"):
        list(iter_pubtator_records(tmp_path / "nope.txt"))


def test_dedupe(tmp_path):
    path = _write(tmp_path, GOOD + GOOD)
    assert len(list(iter_pubtator_records(path))) == 2
    stats = CorpusStats()
    assert len(list(iter_pubtator_records(path, dedupe=True, stats=stats))) == 1
    assert stats.duplicates == 1 and stats.duplicate_ids == ["1"]
    changed = _write(tmp_path, GOOD + GOOD.replace("Abstract", "Changed "), name="c.txt")
    with pytest.raises(CorpusFormatError, match=r"c.txt:5: \[E111\]"):
        list(iter_pubtator_records(changed, dedupe=True))


# --- the real corpora -------------------------------------------------------

PUBTATOR_COUNTS = {
    "bc5cdr/CDR_TrainingSet.PubTator.txt": dict(
        docs=500,
        mentions=9385,
        types={"Chemical": 5203, "Disease": 4182},
        relations=1038,
        minus_one=76,
        composite=89,
        multi=98,
    ),
    "bc5cdr/CDR_DevelopmentSet.PubTator.txt": dict(
        docs=500,
        mentions=9591,
        types={"Chemical": 5347, "Disease": 4244},
        relations=1012,
        minus_one=60,
        composite=89,
        multi=100,
    ),
    "ncbi-disease/NCBItrainset_corpus.txt": dict(
        docs=593,
        mentions=5145,
        types={
            "SpecificDisease": 2972,
            "DiseaseClass": 769,
            "Modifier": 1289,
            "CompositeMention": 115,
        },
        relations=0,
        multi=93,
        unique=592,
    ),
    "ncbi-disease/NCBIdevelopset_corpus.txt": dict(
        docs=100,
        mentions=787,
        types={
            "SpecificDisease": 412,
            "DiseaseClass": 126,
            "Modifier": 214,
            "CompositeMention": 35,
        },
        relations=0,
        multi=20,
        unique=100,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBTATOR_COUNTS))
def test_real_counts(corpora_dir, name):
    expected = PUBTATOR_COUNTS[name]
    records = list(iter_pubtator_records(corpora_dir / name))
    mentions = [m for r in records for m in r.mentions]
    assert len(records) == expected["docs"]
    assert len(mentions) == expected["mentions"]
    assert Counter(m.type for m in mentions) == expected["types"]
    assert sum(len(r.relations) for r in records) == expected["relations"]
    # the README counts "|"-joined ids as multi-ID ("+" conjunctions apart)
    assert sum("|" in m.kb_id for m in mentions) == expected["multi"]
    if "minus_one" in expected:
        # dev has one "D002544|-1"
        assert sum("-1" in m.kb_id.split("|") for m in mentions) == expected["minus_one"]
        assert sum(bool(m.components) for m in mentions) == expected["composite"]
        # every CID argument is a mention id of its document
        for r in records:
            ids = {i for m in r.mentions for i in mention_ids(m.kb_id)}
            assert all(rel["head"] in ids and rel["tail"] in ids for rel in r.relations)
    if "unique" in expected:
        stats = CorpusStats()
        assert (
            len(list(iter_pubtator_records(corpora_dir / name, dedupe=True, stats=stats)))
            == (expected["unique"])
        )
        assert stats.duplicates == expected["docs"] - expected["unique"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBTATOR_COUNTS))
def test_real_round_trip(corpora_dir, tmp_path, name):
    path = corpora_dir / name
    docs = list(read_pubtator(path))  # biomedical tokenizer
    out = tmp_path / "out.txt"
    write_pubtator(docs, out)
    assert records_key(iter_pubtator_records(out)) == records_key(
        iter_pubtator_records(path)
    )
    # byte-identical, but for NCBI's leading empty line and missing final one
    assert out.read_bytes().strip(b"\n") == path.read_bytes().strip(b"\n")
