from collections import Counter
from pathlib import Path

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_biobert.corpora import (
    SOURCE_KEY,
    CorpusFormatError,
    CorpusStats,
    iter_chemprot_records,
    read_chemprot,
    write_chemprot,
)
from spacy_biobert.corpora.chemprot import find_chemprot_files
from spacy_biobert.extensions import MENTIONS_KEY

DATA = Path(__file__).parent / "data" / "chemprot_tiny"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def sorted_lines(path):
    return sorted(Path(path).read_text(encoding="utf8").splitlines())


def records_key(records):
    return {
        r.doc_id: (
            r.text,
            sorted((m.id, m.start, m.end, m.text, m.type) for m in r.mentions),
            sorted(tuple(sorted(x.items())) for x in r.relations),
        )
        for r in records
    }


def test_find_files_by_folder_or_prefix(tmp_path):
    assert find_chemprot_files(DATA)["relations"] == DATA / "tiny_relations.tsv"
    assert (
        find_chemprot_files(DATA / "tiny")["gold_standard"]
        == DATA / "tiny_gold_standard.tsv"
    )
    assert (
        find_chemprot_files(DATA / "tiny_entities.tsv")["abstracts"]
        == DATA / "tiny_abstracts.tsv"
    )
    with pytest.raises(FileNotFoundError, match="E106"):
        find_chemprot_files(tmp_path)


def test_read_tiny(nlp):
    stats = CorpusStats()
    docs = list(read_chemprot(DATA, nlp, stats=stats))
    doc = docs[0]
    assert doc._.doc_id == "100"
    assert doc.text.startswith("Aspirin inhibits COX-2 kinase. Acyl-CoA")  # TAB -> space
    assert doc.user_data[SOURCE_KEY]["separator"] == "\t"
    mentions = {s.id_: s for s in doc.spans[MENTIONS_KEY]}
    assert len(mentions) == 10 and mentions["T6"].text == "β-estradiol"
    # Flat entities: the longest of overlapping mentions, earlier first.
    assert [(e.text, e.label_, e.id_) for e in doc.ents] == [
        ("Aspirin", "CHEMICAL", "T1"),
        ("COX-2 kinase", "GENE-N", "T3"),
        ("Acyl-CoA synthetase", "GENE-N", "T5"),
        ("β-estradiol", "CHEMICAL", "T6"),
        ("KATP channels", "GENE-Y", "T7"),
        ("aspirin", "CHEMICAL", "T9"),
    ]
    assert stats.not_flat == 4
    rels = doc._.gold_relations
    assert rels[0] == {
        "level": "mention",
        "head": "T1",
        "tail": "T2",
        "label": "CPR:4",
        "relation": "INHIBITOR",
        "eval": "Y",
        "gold": True,
    }
    assert [r["gold"] for r in rels] == [True, True, True, False, True]
    assert docs[1]._.gold_relations == []
    assert stats.documents == 2 and stats.mentions == 11 and stats.relations == 5
    assert all(d.has_annotation("SENT_START") for d in docs)


def test_label_map_preset(nlp):
    doc = next(read_chemprot(DATA, nlp, label_map="chemprot-gene"))
    assert {e.label_ for e in doc.ents} == {"CHEMICAL", "GENE"}


def test_round_trip_tiny(nlp, tmp_path):
    docs = list(read_chemprot(DATA, nlp))
    db = DocBin(store_user_data=True, docs=docs)
    docs = list(DocBin().from_bytes(db.to_bytes()).get_docs(nlp.vocab))
    assert write_chemprot(docs, f"{tmp_path / 'out'}/") == 2
    for suffix in ("abstracts", "entities", "relations", "gold_standard"):
        assert sorted_lines(tmp_path / "out" / f"out_{suffix}.tsv") == sorted_lines(
            DATA / f"tiny_{suffix}.tsv"
        ), suffix


def test_predicted_relations_written(nlp, tmp_path):
    doc = nlp.make_doc("Aspirin inhibits COX-2 here.")
    doc._.doc_id = "7"
    doc.ents = [
        doc.char_span(0, 7, label="CHEMICAL"),
        doc.char_span(17, 22, label="GENE-Y"),
    ]
    doc._.relations = {(0, 2): {"CPR:4": 0.9, "CPR:3": 0.1}}
    write_chemprot([doc], tmp_path / "pred")
    assert (
        tmp_path / "pred_gold_standard.tsv"
    ).read_text() == "7\tCPR:4\tArg1:T1\tArg2:T2\n"
    assert (tmp_path / "pred_entities.tsv").read_text().splitlines()[
        1
    ] == "7\tT2\tGENE-Y\t17\t22\tCOX-2"


def _copy(tmp_path, **replace):
    out = tmp_path / "bad"
    out.mkdir()
    for f in DATA.iterdir():
        text = f.read_text(encoding="utf8")
        for old, new in replace.get(f.name, []):
            text = text.replace(old, new)
        (out / f.name).write_text(text, encoding="utf8")
    return out


@pytest.mark.parametrize(
    "file,old,new,line,code",
    [
        (
            "tiny_entities.tsv",
            "100\tT2\tGENE-Y\t17\t22",
            "100\tT2\tGENE-Y\t17\t22\textra",
            2,
            "E101",
        ),
        ("tiny_entities.tsv", "\t17\t22\t", "\t17\t999\t", 2, "E102"),
        ("tiny_entities.tsv", "\t17\t22\t", "\t16\t21\t", 2, "E103"),
        ("tiny_relations.tsv", "Arg2:T3", "Arg2:T99", 2, "E108"),
        ("tiny_abstracts.tsv", "200\tSecond", "200 Second", 2, "E101"),
    ],
)
def test_bad_input(nlp, tmp_path, file, old, new, line, code):
    folder = _copy(tmp_path, **{file: [(old, new)]})
    with pytest.raises(CorpusFormatError, match=rf"{file}:{line}: \[{code}\]"):
        list(iter_chemprot_records(folder))
    stats = CorpusStats()
    records = list(iter_chemprot_records(folder, on_error="skip", stats=stats))
    assert stats.skipped >= 1
    assert "100" in [r.doc_id for r in records]


def test_entities_of_unknown_document(tmp_path):
    folder = _copy(
        tmp_path,
        **{
            "tiny_abstracts.tsv": [
                ("200\tSecond doc without relations.\tCaffeine is here.\n", "")
            ]
        },
    )
    with pytest.raises(
        CorpusFormatError, match=r"tiny_entities.tsv:11: \[E101\].*200 is not in"
    ):
        list(iter_chemprot_records(folder))


def test_empty_abstracts(tmp_path):
    folder = _copy(tmp_path)
    (folder / "tiny_abstracts.tsv").write_text("")
    with pytest.raises(CorpusFormatError, match=r"tiny_abstracts.tsv: \[E105\]"):
        list(iter_chemprot_records(folder))


CHEMPROT_COUNTS = {
    "chemprot_training": dict(
        docs=1020,
        mentions=25752,
        types={"CHEMICAL": 13017, "GENE-Y": 8348, "GENE-N": 4387},
        relations=6437,
        gold=4157,
        gold_groups={"CPR:3": 768, "CPR:4": 2254, "CPR:5": 173, "CPR:6": 235, "CPR:9": 727},
        docs_with_relations=767,
    ),
    "chemprot_development": dict(
        docs=612,
        mentions=15567,
        types={"CHEMICAL": 8004, "GENE-Y": 5151, "GENE-N": 2412},
        relations=3558,
        gold=2416,
        gold_groups={"CPR:3": 550, "CPR:4": 1094, "CPR:5": 116, "CPR:6": 199, "CPR:9": 457},
        docs_with_relations=443,
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("split", sorted(CHEMPROT_COUNTS))
def test_real_counts(corpora_dir, split):
    expected = CHEMPROT_COUNTS[split]
    records = list(iter_chemprot_records(corpora_dir / "chemprot" / split))
    mentions = [m for r in records for m in r.mentions]
    assert len(records) == expected["docs"]
    assert len(mentions) == expected["mentions"]
    assert Counter(m.type for m in mentions) == expected["types"]
    assert sum(len(r.relations) for r in records) == expected["relations"]
    gold = {
        (r.doc_id, x["label"], x["head"], x["tail"])
        for r in records
        for x in r.relations
        if x["gold"]
    }
    assert len(gold) == expected["gold"]
    assert Counter(g[1] for g in gold) == expected["gold_groups"]
    # gold_standard.tsv == the eval "Y" relations (duplicates apart)
    assert gold == {
        (r.doc_id, x["label"], x["head"], x["tail"])
        for r in records
        for x in r.relations
        if x["eval"] == "Y"
    }
    assert sum(bool(r.relations) for r in records) == expected["docs_with_relations"]


@pytest.mark.slow
@pytest.mark.parametrize("split", sorted(CHEMPROT_COUNTS))
def test_real_round_trip(corpora_dir, tmp_path, split):
    folder = corpora_dir / "chemprot" / split
    docs = list(read_chemprot(folder))
    write_chemprot(docs, f"{tmp_path / split}/")
    for suffix in ("abstracts", "entities", "relations", "gold_standard"):
        assert sorted_lines(tmp_path / split / f"{split}_{suffix}.tsv") == sorted_lines(
            folder / f"{split}_{suffix}.tsv"
        ), suffix
    assert records_key(iter_chemprot_records(tmp_path / split)) == records_key(
        iter_chemprot_records(folder)
    )
