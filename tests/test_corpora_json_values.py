"""JSON values the readers cannot take get a coded message, the same in
`convert` and `annotate`: an integer of more than 4,300 digits (Python's
int limit; it used to surface as an uncoded ValueError) in JSONL and BioC
JSON, and a document id that is neither a string nor an integer (E114: annotate
used to write str(["x"]) as the id)."""

import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_biobert.annotate import annotate, iter_input
from spacy_biobert.annotate.inputs import Record, Reject
from spacy_biobert.cli import app
from spacy_biobert.corpora import CorpusFormatError, CorpusStats
from spacy_biobert.corpora.formats import iter_records

HUGE = "9" * 5000


def bioc_json(offset: str) -> str:
    return (
        '{"source": "", "date": "", "key": "", "infons": {}, "documents": [{"id": "1", '
        '"infons": {}, "relations": [], "passages": [{"offset": ' + offset + ', "infons": {}, '
        '"text": "cocaine", "sentences": [], "annotations": [], "relations": []}]}]}'
    )


@pytest.mark.parametrize(
    "name,content",
    [
        ("in.jsonl", '{"id": "1", "text": "cocaine", "n": ' + HUGE + "}\n"),
        ("in.json", bioc_json(HUGE)),
    ],
)
def test_a_5000_digit_integer_is_a_coded_error(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CorpusFormatError, match=r"\[E101\] .*integer of more than 4,300 digits"):
        list(iter_records(path))
    res = CliRunner().invoke(app, ["convert", str(path), str(tmp_path / "out.spacy")])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "E101" in text and "4,300 digits" in text
    assert isinstance(res.exception, SystemExit)


def test_a_5000_digit_integer_in_a_jsonl_line_skips_that_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": "1", "text": "a", "n": ' + HUGE + '}\n{"id": "2", "text": "b"}\n')
    stats = CorpusStats()
    assert [r.doc_id for r in iter_records(path, on_error="skip", stats=stats)] == ["2"]
    assert stats.skipped_documents == 1


IDS = [({"x": 1}, "{'x': 1} (dict)"), (["x"], "['x'] (list)"), (True, "True (bool)"), (1.5, "1.5 (float)")]


@pytest.mark.parametrize("value,shown", IDS)
def test_a_non_string_id_is_refused_by_convert_and_annotate_alike(tmp_path, value, shown):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": value, "text": "cocaine"}) + "\n" + '{"id": 7, "text": "lithium"}\n')
    with pytest.raises(CorpusFormatError, match=r"E114.*'id' must be a string or an integer") as info:
        list(iter_records(path))
    assert shown in str(info.value)
    first, second = iter_input(path)
    assert isinstance(first, Reject) and first.kind == "json"
    assert "E114" in first.reason and shown in first.reason and first.id == "1"
    assert isinstance(second, Record) and second.id == "7"
    stats = annotate(spacy.blank("en"), path, tmp_path / "out.jsonl")
    assert stats.documents == 1 and stats.rejected == 1
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [d["id"] for d in written] == ["7"]
