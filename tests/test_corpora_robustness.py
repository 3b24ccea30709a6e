"""The corpus readers and writers under hostile input (no document lost, no
traceback): one table-driven test per defect found, with its reproduction. Each failed before
the fix (a raw TypeError/ValueError, a silent change or loss) and passes now."""

import http.server
import json
import logging
import threading
import tracemalloc
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_biobert.annotate.inputs import Record, Reject, iter_input
from spacy_biobert.cli import app
from spacy_biobert.corpora import (
    CorpusFormatError,
    CorpusStats,
    iter_bioc_records,
    iter_chemprot_records,
    iter_pubtator_records,
    read_bioc,
    read_pubtator,
    write_pubtator,
)
from spacy_biobert.corpora.formats import detect_format, iter_records, read_corpus, write_corpus
from spacy_biobert.corpora.jsonl import read_jsonl
from spacy_biobert.corpora.pubtator import format_pubtator

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny.pubtator"
CHEMPROT = DATA / "chemprot_tiny"
runner = CliRunner()
CODED = r"\[E1\d\d\]"


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


# --- malformed BioC JSON values ----------------------------------------------


def _bioc_doc(doc_id, *, offset=0, text="Aspirin helps.", locations=None, rel_infons=None):
    doc = {
        "id": doc_id,
        "infons": {},
        "passages": [
            {
                "offset": offset,
                "infons": {"type": "title"},
                "text": text,
                "sentences": [],
                "annotations": [
                    {
                        "id": "A1",
                        "infons": {"type": "Chemical", "identifier": "D001241"},
                        "text": "Aspirin",
                        "locations": locations or [{"offset": 0, "length": 7}],
                    }
                ],
                "relations": [],
            }
        ],
        "relations": [],
    }
    if rel_infons is not None:
        doc["relations"] = [
            {
                "id": "R1",
                "infons": rel_infons,
                "nodes": [{"refid": "A1", "role": "head"}, {"refid": "A1", "role": "tail"}],
            }
        ]
    return doc


BAD_BIOC_JSON = {
    # name: (bad document 2, code, whole document skipped)
    "passage offset '0'": (_bioc_doc("2", offset="0"), "E114", True),
    "float offset": (_bioc_doc("2", offset=0.5), "E114", True),
    "integer text": (_bioc_doc("2", text=5), "E114", True),
    "string location offsets": (
        _bioc_doc("2", locations=[{"offset": "0", "length": "7"}]),
        "E114",
        True,
    ),
    "score 'high'": (_bioc_doc("2", rel_infons={"type": "CID", "score": "high"}), "E114", False),
}


def _write_bioc_json(path, bad):
    docs = [_bioc_doc("1"), bad, _bioc_doc("3"), _bioc_doc("4")]
    path.write_text(
        json.dumps({"source": "", "date": "", "key": "", "infons": {}, "documents": docs}, indent=1)
    )
    return path


@pytest.mark.parametrize("name", list(BAD_BIOC_JSON))
def test_bioc_json_bad_values_are_coded_and_skippable(nlp, tmp_path, name):
    bad, code, whole = BAD_BIOC_JSON[name]
    path = _write_bioc_json(tmp_path / "c.json", bad)
    with pytest.raises(CorpusFormatError, match=rf"c\.json:\d+: \[{code}\] document 2") as info:
        list(read_bioc(path, nlp))
    assert info.value.record is not None and info.value.record.startswith("2")
    stats = CorpusStats()
    docs = list(read_bioc(path, nlp, on_error="skip", stats=stats))
    assert [d._.doc_id for d in docs] == (["1", "3", "4"] if whole else ["1", "2", "3", "4"])
    assert (stats.skipped, stats.skipped_documents) == (1, 1 if whole else 0)
    if not whole:
        assert docs[1]._.gold_relations == []  # the bad relation, counted above


@pytest.mark.parametrize("name", list(BAD_BIOC_JSON))
def test_bioc_json_bad_values_in_convert(tmp_path, name):
    bad, code, whole = BAD_BIOC_JSON[name]
    path = _write_bioc_json(tmp_path / "c.json", bad)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["convert", str(path), str(out)])
    assert result.exit_code == 1 and f"[{code}]" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not out.exists()
    result = runner.invoke(app, ["convert", str(path), str(out), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert f"Wrote {3 if whole else 4} document(s)" in result.output
    assert len(out.read_text().splitlines()) == (3 if whole else 4)


@pytest.mark.parametrize("name", list(BAD_BIOC_JSON))
def test_bioc_json_bad_values_in_annotate_inputs(tmp_path, name):
    """annotate reads corpora with on_error="skip": a bad document is a
    Reject in its place, and the good ones all stay."""
    bad, code, whole = BAD_BIOC_JSON[name]
    path = _write_bioc_json(tmp_path / "c.json", bad)
    items = list(iter_input(path, "bioc"))
    assert [i.index for i in items] == [0, 1, 2, 3]
    assert [type(i) for i in items] == ([Record, Reject, Record, Record] if whole else [Record] * 4)
    if whole:
        assert f"[{code}]" in items[1].reason


# --- document ids in PubTator output ----------------------------------------

BAD_IDS = ["5\n6|t|fake title", "7|t|x", "a\tb", "c\rd", "e|f"]


@pytest.mark.parametrize("doc_id", BAD_IDS)
def test_pubtator_refuses_ids_it_cannot_write(nlp, tmp_path, doc_id):
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": "1", "text": "Good title"})
        + "\n"
        + json.dumps({"id": doc_id, "text": "Aspirin title"})
        + "\n"
    )
    docs = list(read_jsonl(src, nlp))
    assert docs[1]._.doc_id == doc_id
    format_pubtator(docs[0])
    with pytest.raises(ValueError, match=r"\[E110\] cannot write PubTator: document id"):
        format_pubtator(docs[1])
    out = tmp_path / "out.pubtator"
    with pytest.raises(ValueError, match=r"\[E110\]"):
        write_pubtator(docs, out)
    assert not out.exists()  # no partial file with fake documents
    # BioC and JSONL take any id
    for suffix in (".json", ".jsonl"):
        assert write_corpus(docs, tmp_path / f"ok{suffix}") == 2
        back = list(read_corpus(tmp_path / f"ok{suffix}", nlp))
        assert [d._.doc_id for d in back] == ["1", doc_id]


def test_pubtator_ids_of_24_hostile_documents(nlp, tmp_path):
    """24 documents, one id with a newline and '|t|': 23 written, never 31."""
    lines = [json.dumps({"id": str(i), "text": f"Title {i}"}) for i in range(23)]
    lines.insert(5, json.dumps({"id": "99\n100|t|fake\n101|t|fake", "text": "Bad"}))
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    written = []
    for doc in read_jsonl(src, nlp):
        try:
            written.append(format_pubtator(doc))
        except ValueError as err:
            assert "[E110]" in str(err)
    out = tmp_path / "out.pubtator"
    out.write_text("".join(written))
    assert out.read_text().count("|t|") == 23
    assert len(list(iter_pubtator_records(out))) == 23


# --- lines the readers should not accept -------------------------------------

PUBTATOR_HEAD = "1|t|Aspirin and ulcer\n1|a|Aspirin causes ulcer.\n"
BAD_PUBTATOR_LINES = {
    "mention cut to 4 columns": "1\t0\t7\t34",
    "relation with empty ids": "1\tfoo\t\t",
    "relation with empty label": "1\t\tD1\tD2",
}


@pytest.mark.parametrize("name", list(BAD_PUBTATOR_LINES))
def test_pubtator_rejects_non_relation_lines(tmp_path, name):
    path = tmp_path / "c.pubtator"
    path.write_text(PUBTATOR_HEAD + BAD_PUBTATOR_LINES[name] + "\n1\tCID\tD1\tD2\n\n")
    with pytest.raises(CorpusFormatError, match=r"c\.pubtator:3: \[E101\]"):
        list(iter_pubtator_records(path))
    stats = CorpusStats()
    (rec,) = iter_pubtator_records(path, on_error="skip", stats=stats)
    assert rec.relations == [{"level": "concept", "head": "D1", "tail": "D2", "label": "CID"}]
    assert stats.skipped == 1


def _chemprot_copy(tmp_path, edit=None, drop=()):
    folder = tmp_path / "cp"
    folder.mkdir(parents=True)
    for f in CHEMPROT.iterdir():
        suffix = f.name[len("tiny_") : -len(".tsv")]
        if suffix in drop:
            continue
        text = f.read_text(encoding="utf8")
        if edit is not None and suffix == edit[0]:
            text = edit[1](text)
        (folder / f"cp_{suffix}.tsv").write_text(text, encoding="utf8")
    return folder


@pytest.mark.parametrize("missing", ["entities", "relations", "gold_standard"])
def test_chemprot_missing_file_is_counted_and_warned(tmp_path, caplog, missing):
    folder = _chemprot_copy(tmp_path, drop=(missing,))
    stats = CorpusStats()
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.corpora"):
        # without entities, the relations name no entity: those are bad records
        docs = list(read_corpus(folder, stats=stats, on_error="skip"))
    assert len(docs) == 2
    assert stats.skipped == (8 if missing == "entities" else 0)
    assert stats.missing_files == [str(folder / f"cp_{missing}.tsv")]
    assert "[W106]" in caplog.text and f"cp_{missing}.tsv" in caplog.text


def test_chemprot_duplicate_t_id_is_an_error(tmp_path):
    def dup(text):  # a second, different entity with the id T10 of document 100
        return text + "100\tT10\tCHEMICAL\t0\t7\tAspirin\n"

    folder = _chemprot_copy(tmp_path, edit=("entities", dup))
    with pytest.raises(CorpusFormatError, match=r"cp_entities\.tsv:12: \[E116\] entity id T10"):
        list(iter_chemprot_records(folder))
    stats = CorpusStats()
    recs = list(iter_chemprot_records(folder, on_error="skip", stats=stats))
    ids = [m.id for m in recs[0].mentions]
    assert ids.count("T10") == 1 and "T10_" not in ids
    assert stats.skipped == 1


@pytest.mark.parametrize("suffix", ["entities", "relations", "gold_standard"])
def test_chemprot_repeated_lines_are_dropped_and_counted(tmp_path, caplog, suffix):
    def repeat_first(text):
        return text + text.splitlines(keepends=True)[0]

    clean = [(r.doc_id, r.mentions, r.relations) for r in iter_chemprot_records(CHEMPROT)]
    folder = _chemprot_copy(tmp_path, edit=(suffix, repeat_first))
    stats = CorpusStats()
    with caplog.at_level(logging.WARNING, logger="spacy_biobert.corpora"):
        docs = list(read_corpus(folder, stats=stats))
    recs = list(iter_chemprot_records(folder))
    assert [(r.doc_id, r.mentions, r.relations) for r in recs] == clean
    assert len(docs) == 2 and stats.duplicate_lines == 1
    assert "[W105]" in caplog.text


def test_chemprot_duplicate_pmid(tmp_path):
    def repeat(text):
        return text + text.splitlines(keepends=True)[0]

    folder = _chemprot_copy(tmp_path, edit=("abstracts", repeat))
    stats = CorpusStats()
    assert [r.doc_id for r in iter_chemprot_records(folder, stats=stats)] == ["100", "200"]
    assert stats.duplicates == 1 and stats.duplicate_ids == ["100"]

    def conflict(text):
        return text + "100\tAnother title\tAnother abstract.\n"

    folder2 = _chemprot_copy(tmp_path / "b", edit=("abstracts", conflict))
    with pytest.raises(CorpusFormatError, match=r"cp_abstracts\.tsv:3: \[E111\] document 100"):
        list(iter_chemprot_records(folder2))


# --- XML entities are never resolved, nothing is fetched ---------------------


class _Server:
    """A local HTTP server counting requests (it serves text and a DTD)."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                body = b'<!ENTITY pe "FROMHTTP">' if self.path.endswith(".dtd") else b"FROMHTTP"
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _entity_files(tmp_path, url):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    (tmp_path / "p.dtd").write_text('<!ENTITY pe "TOPSECRET">')
    (tmp_path / "broken.dtd").write_text("<!ENTITY broken")
    body = (
        "<collection><source>s</source><date></date><key></key>\n"
        "<document><id>1</id><passage><offset>0</offset><text>Aspirin {ref} end</text>"
        "</passage></document>\n"
        "<document><id>2</id><passage><offset>0</offset><text>Good doc</text></passage>"
        "</document>\n</collection>\n"
    )
    dtds = {
        "external file": ('<!ENTITY xxe SYSTEM "{}">'.format(secret.as_uri()), "&xxe;"),
        "parameter entity": (
            '<!ENTITY % p SYSTEM "{}"> %p; <!ENTITY % b SYSTEM "{}"> %b;'.format(
                (tmp_path / "p.dtd").as_uri(), (tmp_path / "broken.dtd").as_uri()
            ),
            "&pe;",
        ),
        "http entity": (
            f'<!ENTITY h SYSTEM "{url}/x.txt"><!ENTITY % q SYSTEM "{url}/q.dtd"> %q;',
            "&h;",
        ),
    }
    out = {}
    for name, (dtd, ref) in dtds.items():
        path = tmp_path / f"{name.replace(' ', '_')}.xml"
        path.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE collection [{dtd}]>\n' + body.format(ref=ref))
        out[name] = path
    return out


def test_bioc_xml_never_resolves_entities(tmp_path):
    server = _Server()
    try:
        files = _entity_files(tmp_path, server.url)
        for name, path in files.items():
            with pytest.raises(CorpusFormatError, match=r":4: \[E115\] document 1 uses"):
                list(iter_bioc_records(path))
            stats = CorpusStats()
            recs = list(iter_bioc_records(path, on_error="skip", stats=stats))
            assert [(r.doc_id, r.text) for r in recs] == [("2", "Good doc")], name
            assert stats.skipped_documents == 1
            assert "TOPSECRET" not in str(stats.errors) and "FROMHTTP" not in str(stats.errors)
    finally:
        server.close()
    assert server.hits == []


def test_iterparse_settings_are_explicit(tmp_path, monkeypatch):
    from lxml import etree

    seen = []
    original = etree.iterparse

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(etree, "iterparse", spy)
    path = tmp_path / "ok.xml"
    path.write_text(
        "<collection><document><id>1</id><passage><offset>0</offset><text>A</text>"
        "</passage></document></collection>"
    )
    assert [r.doc_id for r in iter_bioc_records(path)] == ["1"]
    assert seen and seen[0]["resolve_entities"] is False and seen[0]["no_network"] is True
    assert seen[0]["load_dtd"] is False


# --- size limits ----------------------------------------------------------


def test_long_abstract_is_a_coded_skippable_error(tmp_path):
    path = tmp_path / "big.pubtator"
    path.write_text("1|t|Short\n1|a|Fine.\n\n9|t|T\n9|a|" + "word " * 420_000 + "\n\n2|t|Also\n2|a|fine.\n\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["convert", str(path), str(out)])
    assert result.exit_code == 1, result.output
    assert "big.pubtator:4: [E113] document 9 is 2100002 characters long" in " ".join(result.output.split())
    assert "E088" not in result.output and not out.exists()
    result = runner.invoke(app, ["convert", str(path), str(out), "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "Wrote 2 document(s)" in result.output
    # the bound follows the pipeline's max_length
    nlp = spacy.blank("en")
    nlp.max_length = 3_000_000
    assert len(list(read_pubtator(path, nlp))) == 3


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_absurd_offset_is_rejected_in_bounded_memory(tmp_path, fmt):
    path = tmp_path / f"c.{fmt}"
    if fmt == "json":
        path.write_text(
            json.dumps(
                {
                    "source": "",
                    "date": "",
                    "key": "",
                    "infons": {},
                    "documents": [_bioc_doc("1", offset=300_000_000, text="Aspirin"), _bioc_doc("2")],
                }
            )
        )
    else:
        path.write_text(
            "<collection><source></source><date></date><key></key><document><id>1</id>"
            "<passage><offset>300000000</offset><text>Aspirin</text></passage></document>"
            "<document><id>2</id><passage><offset>0</offset><text>Good</text></passage>"
            "</document></collection>"
        )
    assert path.stat().st_size < 2000
    tracemalloc.start()
    try:
        stats = CorpusStats()
        recs = list(iter_bioc_records(path, on_error="skip", stats=stats))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r.doc_id for r in recs] == ["2"]
    assert "[E113] document 1 is 300000007 characters long" in str(stats.errors[0])
    assert peak < 20_000_000  # the 300M-character text was never built


# --- small ones -----------------------------------------------------------------


def test_convert_leaves_no_partial_output(tmp_path):
    path = tmp_path / "c.pubtator"
    path.write_text(TINY.read_text() + "\n333|t|Bad\n333|a|doc\n333\tx\t1\tB\tChemical\tD1\n\n")
    for name in ("out.jsonl", "out.pubtator", "out.xml", "out.json", "out.spacy", "cp"):
        out = tmp_path / name
        result = runner.invoke(app, ["convert", str(path), str(out)])
        assert result.exit_code == 1 and "[E101]" in result.output, result.output
        assert not out.exists() or (out.is_dir() and not any(out.iterdir())), name
    # an existing output is left as it was
    out = tmp_path / "keep.jsonl"
    out.write_text("old\n")
    assert runner.invoke(app, ["convert", str(path), str(out)]).exit_code == 1
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_empty_pubtator_file_says_it_is_empty(tmp_path):
    path = tmp_path / "empty.pubtator"
    path.write_text("")
    assert detect_format(path) == "pubtator"
    result = runner.invoke(app, ["convert", str(path), str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "[E105] the file is empty" in text and "known extension" not in text
    blank = tmp_path / "blank.txt"
    blank.write_text("\n \n")
    with pytest.raises(CorpusFormatError, match=r"\[E105\]"):
        detect_format(blank)


@pytest.mark.parametrize("eol", ["\r", "\r\n", "\n"])
def test_line_endings(tmp_path, eol):
    path = tmp_path / "c.pubtator"
    text = "".join(
        f"{i}|t|Title {i}{eol}{i}|a|Abstract {i}.{eol}{i}\t0\t5\tTitle\tChemical\tD{i}{eol}{eol}"
        for i in (1, 2, 3)
    )
    path.write_bytes(text.encode())
    assert detect_format(path) == "pubtator"
    recs = list(iter_pubtator_records(path))
    assert [(r.doc_id, r.text, len(r.mentions)) for r in recs] == [
        (str(i), f"Title {i} Abstract {i}.", 1) for i in (1, 2, 3)
    ]
    result = runner.invoke(app, ["convert", str(path), str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0 and "Wrote 3 document(s)" in result.output, result.output


# --- found by the fuzz suite (tests/test_fuzz_corpora.py) --------------------------


def test_fuzz_found_chemprot_unusual_id_is_not_a_blank_line(nlp, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "\u2028", "text": " "}) + "\n")
    # one passage, not a title and an abstract: written with a space added (allowed)
    write_corpus(read_jsonl(src, nlp), tmp_path / "cp" / "cp", "chemprot", allow_loss=True)
    assert [r.doc_id for r in iter_chemprot_records(tmp_path / "cp" / "cp")] == ["\u2028"]


def test_fuzz_found_mention_ending_in_whitespace_keeps_its_offsets(nlp, tmp_path):
    doc = {
        "id": "1",
        "infons": {},
        "relations": [],
        "passages": [
            {
                "offset": 0,
                "infons": {},
                "text": "0000 ",
                "sentences": [],
                "relations": [],
                "annotations": [
                    {
                        "id": "A1",
                        "infons": {"type": "Chemical"},
                        "text": "0 000 ",
                        "locations": [{"offset": 0, "length": 1}, {"offset": 1, "length": 4}],
                    }
                ],
            },
        ],
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"source": "", "date": "", "key": "", "infons": {}, "documents": [doc]}))
    write_corpus(read_bioc(path, nlp), tmp_path / "c.jsonl")
    (m,) = next(iter_records(tmp_path / "c.jsonl")).mentions
    assert (m.start, m.end, m.text) == (0, 5, "0000 ")


def test_fuzz_found_bioc_json_document_level_relations_are_checked(tmp_path):
    doc = _bioc_doc("1")
    doc["relations"] = [{"id": "R1", "infons": {"type": -5}, "nodes": []}, "x"]
    path = _write_bioc_json(tmp_path / "c.json", doc)
    with pytest.raises(CorpusFormatError, match=r"\[E114\] document 1 .*document relation #1 infon 'type'"):
        list(iter_bioc_records(path))


def test_fuzz_found_undecodable_title_line_loses_no_other_document(tmp_path):
    path = tmp_path / "c.pubtator"
    path.write_bytes(b"1|t|One\n1|a|Fine.\n2|t|Tw\xffo\n2|a|Bad title.\n\n3|t|Three\n3|a|Fine.\n\n")
    stats = CorpusStats()
    recs = list(iter_pubtator_records(path, on_error="skip", stats=stats))
    assert [r.doc_id for r in recs] == ["1", "3"]
    assert stats.skipped_documents == 1 and "c.pubtator:3: [E104]" in str(stats.errors[0])


def test_fuzz_found_empty_bioc_identifier_round_trips(nlp, tmp_path):
    path = tmp_path / "c.pubtator"
    path.write_text("1|t|Aspirin\n1|a|x\n1\t0\t7\tAspirin\tChemical\t\n\n")
    write_corpus(read_pubtator(path, nlp), tmp_path / "c.xml")
    write_corpus(read_bioc(tmp_path / "c.xml", nlp), tmp_path / "back.pubtator")
    assert (tmp_path / "back.pubtator").read_text() == path.read_text()


@pytest.mark.parametrize("fmt", ["pubtator", "chemprot"])
def test_fuzz_found_id_with_leading_bom_is_refused(nlp, tmp_path, fmt):
    """The first line's U+FEFF is dropped as a byte order mark on reading."""
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "\ufeff7", "text": "Title"}) + "\n")
    with pytest.raises(ValueError, match=r"\[E110\].*U\+FEFF"):  # allowed to add the separator
        write_corpus(read_jsonl(src, nlp), tmp_path / "out" / "o", fmt, allow_loss=True)
