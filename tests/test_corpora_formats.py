"""Issue 17: one format table (detection, reading from a path, a stream or a
.gz file, writing), one sentence splitter, one plain-text rule, and the
service parsing PubTator in memory."""

import ast
import builtins
import gzip
import io
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest
import spacy

from spacy_biobert.annotate.inputs import INPUT_FORMATS as ANNOTATE_FORMATS
from spacy_biobert.annotate.inputs import Record, Reject, detect_input_format, iter_input
from spacy_biobert.corpora import CorpusFormatError, CorpusStats
from spacy_biobert.corpora.formats import (
    FORMATS,
    INPUT_FORMATS,
    OUTPUT_EXTENSIONS,
    OUTPUT_FORMATS,
    READABLE_FORMATS,
    RECORD_FORMATS,
    STREAM_FORMATS,
    detect_format,
    iter_records,
    output_format,
    read_corpus,
    write_corpus,
)
from spacy_biobert.corpora.readers import READERS
from spacy_biobert.corpora.records import get_make_doc
from spacy_biobert.corpora.sentences import sentence_starts, set_sentences, split_sentences
from spacy_biobert.corpora.text import DEFAULT_TEXT_DOCS, TEXT_DOCS, iter_text
from spacy_biobert.pretraining.data import TEXT_FORMATS, iter_documents

DATA = Path(__file__).parent / "data"
TINY = DATA / "tiny.pubtator"
CHEMPROT = DATA / "chemprot_tiny"
NLP = spacy.blank("en")
PLAIN = "First doc. Second sentence.\nA line of its own\n\n \nSecond doc here.\n"


@pytest.fixture(scope="module")
def corpus_files(tmp_path_factory):
    """The tiny corpus in every format, plain and gzip-compressed."""
    folder = tmp_path_factory.mktemp("formats")
    docs = list(read_corpus(TINY, NLP))
    files = {"pubtator": TINY}
    written = (("bioc-xml", ".xml"), ("bioc-json", ".json"), ("jsonl", ".jsonl"), ("spacy", ".spacy"))
    for name, suffix in written:
        files[name] = folder / f"tiny{suffix}"
        assert write_corpus(docs, files[name]) == 2
    files["text"] = folder / "plain.txt"
    files["text"].write_text(PLAIN, encoding="utf8")
    for name in ("pubtator", "bioc-xml", "bioc-json", "jsonl", "text"):
        gz = folder / f"{files[name].name}.gz"
        gz.write_bytes(gzip.compress(files[name].read_bytes()))
        files[f"{name}.gz"] = gz
    return files


def records(source, fmt=None, **kwargs):
    return [asdict(r) for r in iter_records(source, fmt, **kwargs)]


# --- the table ----------------------------------------------------------------------------


def test_the_table_is_consistent():
    assert INPUT_FORMATS == ("pubtator", "bioc", "chemprot", "brat", "jsonl", "spacy")
    assert set(RECORD_FORMATS) == set(INPUT_FORMATS) - {"spacy"} | {"text"}
    assert set(READABLE_FORMATS) == set(INPUT_FORMATS) | {"text"}
    # annotate reads exactly the formats the table reads from a stream or a .gz file
    assert ANNOTATE_FORMATS == STREAM_FORMATS and set(STREAM_FORMATS) == {"text", "jsonl", "pubtator", "bioc"}
    assert set(OUTPUT_FORMATS) == {"spacy", "pubtator", "bioc-xml", "bioc-json", "jsonl", "chemprot", "brat"}
    for ext, name in OUTPUT_EXTENSIONS.items():
        assert output_format(f"out{ext}") == name and FORMATS[name].write is not None
    # pretrain's --format values are the table's readable formats, plus auto
    assert set(TEXT_FORMATS) == {"auto"} | set(READABLE_FORMATS)
    for name, f in FORMATS.items():
        assert f.name == name and f.description
        assert f.readable or f.write is not None
    # every corpus input has its registered reader (training configs, evaluators)
    assert list(READERS) == list(INPUT_FORMATS)


def test_every_format_is_detected(corpus_files, tmp_path):
    expected = {
        "pubtator": "pubtator", "bioc-xml": "bioc", "bioc-json": "bioc", "jsonl": "jsonl", "spacy": "spacy"
    }
    for name, fmt in expected.items():
        assert detect_format(corpus_files[name]) == fmt
        assert detect_format(corpus_files[name], READABLE_FORMATS) == fmt
        if name != "spacy":
            assert detect_format(corpus_files[f"{name}.gz"]) == fmt
            assert detect_input_format(corpus_files[f"{name}.gz"]) == fmt
    for path in (CHEMPROT, CHEMPROT / "tiny", CHEMPROT / "tiny_entities.tsv"):
        assert detect_format(path) == "chemprot"
    # by the first line when the name says nothing (a .txt, no extension)
    for content, fmt in ((TINY.read_bytes(), "pubtator"), (b"\xef\xbb\xbf\n <collection>", "bioc"),
                         (b'\n{"text": "x"}\n', "jsonl"), (b"7|t|T\r7|a|A\r\r", "pubtator")):
        path = tmp_path / "unnamed"
        path.write_bytes(content)
        assert detect_format(path) == fmt == detect_input_format(path)
    # plain text: only where the command takes it; a corpus command says E107
    plain = corpus_files["text"]
    assert detect_input_format(plain) == "text" == detect_format(plain, READABLE_FORMATS)
    assert detect_input_format(corpus_files["text.gz"]) == "text"
    with pytest.raises(ValueError, match=r"E107.*\.txt/\.pubtator"):
        detect_format(plain)
    # a folder: ChemProt for the corpus commands, text files for annotate
    assert detect_format(tmp_path) == "chemprot" and detect_input_format(tmp_path) == "text"
    assert detect_format(CHEMPROT, READABLE_FORMATS) == "chemprot"
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"\n \n")
    with pytest.raises(CorpusFormatError, match="E105"):
        detect_format(empty)
    assert detect_input_format(empty) == "text"
    with pytest.raises(FileNotFoundError, match="E106"):
        detect_format(tmp_path / "missing.pubtator")


def test_every_format_reads_from_a_path_a_stream_and_gzip(corpus_files):
    for name, fmt in (("pubtator", "pubtator"), ("bioc-xml", "bioc"), ("bioc-json", "bioc"),
                      ("jsonl", "jsonl"), ("text", "text")):
        path = corpus_files[name]
        from_path = records(path, fmt)
        assert from_path and from_path == records(corpus_files[f"{name}.gz"], fmt)
        with open(path, "rb") as fp:
            assert records(fp, fmt) == from_path
        with open(path, encoding="utf8", newline="") as fp:
            assert records(fp, fmt) == from_path
        assert records(io.BytesIO(path.read_bytes()), fmt) == from_path
        # a stream is detected by its name, else (seekable) by its first line
        named = io.BytesIO(path.read_bytes())
        named.name = path.name
        if name != "text":
            assert records(named) == from_path
        if name not in ("text", "bioc-json"):  # BioC JSON's first line is JSON: named only
            assert records(io.BytesIO(path.read_bytes())) == from_path
    # .spacy: Docs, from a path or a stream
    docs = [d.text for d in read_corpus(corpus_files["spacy"], NLP)]
    with open(corpus_files["spacy"], "rb") as fp:
        assert [d.text for d in read_corpus(fp, NLP, format="spacy")] == docs == [
            d.text for d in read_corpus(TINY, NLP)
        ]


def test_stream_errors_name_the_stream():
    stream = io.BytesIO(b"1|t|Title\ngarbage\n")
    stream.name = "upload.pubtator"
    with pytest.raises(CorpusFormatError, match=r"^upload\.pubtator:2: \[E101\]"):
        list(iter_records(stream, "pubtator"))
    stats = CorpusStats()
    bad = io.StringIO("1|t|T\n1|a|A \udcff\n\n")  # a text stream: a lone surrogate does not decode
    assert list(iter_records(bad, "pubtator", on_error="skip", stats=stats)) == []
    assert stats.skipped_documents == 1 and stats.path == "<stream>" and "E104" in str(stats.errors[0])
    with pytest.raises(ValueError, match="E118"):
        list(iter_records(io.BytesIO(b"x"), "chemprot"))
    with pytest.raises(ValueError, match="E107"):  # a stream that cannot be read back needs its format
        detect_format(_Unseekable(b"1|t|T\n"))


class _Unseekable(io.RawIOBase):
    def __init__(self, data):
        self.data = data

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, b):
        n = min(len(b), len(self.data))
        b[:n], self.data = self.data[:n], self.data[n:]
        return n


def test_readers_leave_a_given_stream_open(corpus_files):
    with open(corpus_files["jsonl"], "rb") as fp:
        assert len(records(fp, "jsonl")) == 2
        assert not fp.closed


# --- one sentence splitter ------------------------------------------------------------------


def test_one_sentence_splitter_for_docs_and_pretraining():
    text = (
        "Lithium (e.g. in rats) induced injury vs. controls.  Fig. 2 shows it. J. Smith et al. found 3 cases!"
    )
    assert split_sentences(text) == [
        "Lithium (e.g. in rats) induced injury vs. controls.",
        "Fig. 2 shows it.",
        "J. Smith et al. found 3 cases!",
    ]
    doc = get_make_doc(None)(text)
    set_sentences(doc, [0], [])
    assert [s.start_char for s in doc.sents] == [0, *sentence_starts(text)]


def test_no_private_names_imported_across_modules():
    """The corpus, plain-text and pretraining-data modules share only public
    names (the splitter's regexes were imported privately before)."""
    package = Path(__file__).parent.parent / "spacy_biobert"
    files = [*package.glob("corpora/*.py"), package / "pretraining" / "data.py"]
    files.append(package / "annotate" / "inputs.py")
    found = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                found += [f"{file.name}: {a.name}" for a in node.names if a.name.startswith("_")]
    assert found == []


# --- one plain-text rule --------------------------------------------------------------------


def test_plain_text_has_one_option_with_one_default(tmp_path):
    assert TEXT_DOCS == ("line", "blank-line") and DEFAULT_TEXT_DOCS == "line"
    path = tmp_path / "notes.txt"
    path.write_text(PLAIN, encoding="utf8")
    by_line = ["First doc. Second sentence.", "A line of its own", "", " ", "Second doc here."]
    by_blank = ["First doc. Second sentence.\nA line of its own", "Second doc here."]
    # the same documents for the table's reader, annotate and pretrain, by default and when asked
    for text_docs, texts in ((None, by_line), ("line", by_line), ("blank-line", by_blank)):
        option = {} if text_docs is None else {"text_docs": text_docs}
        assert [i.text for i in iter_text(path, **option)] == texts
        assert [r["text"] for r in records(path, "text", **option)] == [t for t in texts if t.strip()]
        items = list(iter_input(path, **option))
        kept = [t if t.strip() else "" for t in texts]
        assert [i.text if isinstance(i, Record) else "" for i in items] == kept
        assert [i.kind for i in items if isinstance(i, Reject)] == ["empty"] * kept.count("")
        docs = list(iter_documents([path], **option))
        assert [" ".join(d.sentences) for d in docs] == [" ".join(t.split()) for t in texts if t.strip()]
    # ids: the (first) line number; each line a passage (so pretrain splits each line)
    blank = list(iter_text(path, text_docs="blank-line"))
    assert [(i.doc_id, i.passages) for i in blank] == [
        ("1", [("text", 0, "First doc. Second sentence."), ("text", 28, "A line of its own")]),
        ("5", [("text", 0, "Second doc here.")]),
    ]
    assert [d.sentences for d in iter_documents([path], text_docs="blank-line")] == [
        ["First doc.", "Second sentence.", "A line of its own"], ["Second doc here."]
    ]
    for bad in (lambda: list(iter_text(path, text_docs="paragraph")),
                lambda: list(iter_input(path, text_docs="paragraph")),
                lambda: list(iter_documents([path], text_docs="paragraph"))):
        with pytest.raises(ValueError, match="E119"):
            bad()


def test_blank_line_documents_keep_the_bounds(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(
        b"short one\n\n" + b"x" * 30 + b"\n" + b"y" * 30 + b"\n\nbad \xff byte\nok\n\n" + b"z" * 200 + b"\n"
    )
    items = list(iter_input(path, max_chars=40, text_docs="blank-line"))
    assert [(i.index, i.id, type(i).__name__, getattr(i, "kind", "")) for i in items] == [
        (0, "1", "Record", ""), (1, "3", "Reject", "too-long"), (2, "6", "Reject", "encoding"),
        (3, "9", "Reject", "too-long"),
    ]
    assert items[1].reason == "text of 61 characters is over --max-chars 40"
    assert items[2].reason.startswith("line 6 is not valid UTF-8")
    assert items[3].reason.startswith("line 9 is 201 bytes, too long to hold a text of --max-chars 40")
    stats = CorpusStats()
    assert [r["doc_id"] for r in records(path, "text", max_chars=40, text_docs="blank-line",
                                          on_error="skip", stats=stats)] == ["1"]
    assert stats.skipped_documents == 3
    assert ["E113", "E104", "E113"] == [str(e).split("[")[1][:4] for e in stats.errors]


def test_convert_reads_plain_text(tmp_path):
    from typer.testing import CliRunner

    from spacy_biobert.cli import app

    path = tmp_path / "notes.txt"
    path.write_text(PLAIN, encoding="utf8")
    out = tmp_path / "notes.jsonl"
    result = CliRunner().invoke(
        app, ["convert", str(path), str(out), "--format", "text", "--text-docs", "blank-line"]
    )
    assert result.exit_code == 0, result.output
    texts = [r["text"] for r in records(out)]
    assert texts == ["First doc. Second sentence.\nA line of its own", "Second doc here."]


# --- the service parses PubTator in memory --------------------------------------------------


def test_service_parses_pubtator_without_touching_disk(monkeypatch):
    from spacy_biobert.serve import Annotator, RequestError

    annotator = Annotator(NLP)
    body = TINY.read_bytes()
    expected = [(r.doc_id, r.text) for r in iter_records(TINY)]
    assert [(r.id, r.text) for r in annotator.records(body, "text/x-pubtator")] == expected

    def no_disk(*args, **kwargs):
        raise AssertionError("the service touched the disk")

    for name in ("mkstemp", "mkdtemp", "NamedTemporaryFile", "TemporaryFile", "TemporaryDirectory",
                 "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_disk)
    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            no_disk()
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only_open)
    assert [(r.id, r.text) for r in annotator.records(body, "text/x-pubtator")] == expected
    gz_like = body.replace(b"\n", b"\r\n")  # CRLF bodies parse the same
    assert [(r.id, r.text) for r in annotator.records(gz_like, "text/x-pubtator")] == expected
    # errors still say "line N", never a file name
    with pytest.raises(RequestError) as err:
        annotator.records(b"101|t|t\ngarbage\n", "text/x-pubtator")
    assert err.value.status == 422
    assert "line 2: [E101] malformed line: document 101" in err.value.detail
    assert "<request body>" not in err.value.detail
