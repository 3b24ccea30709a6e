"""Truncated or damaged gzip input: one coded error naming the file (E120),
never a zlib/EOF traceback or a bare "Aborted.", in every reader that reads
".gz" (the corpus readers through `convert` and `annotate`, annotate's folder
input, the vocabulary readers of build-kb)."""

import gzip
import json
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_biobert.annotate import annotate, iter_input
from spacy_biobert.cli import app
from spacy_biobert.corpora import CorpusFormatError
from spacy_biobert.corpora.formats import iter_records

runner = CliRunner()

PUBTATOR = "".join(f"{i}|t|Cocaine title {i}\n{i}|a|Abstract {i} on hypertension.\n\n" for i in range(1, 400))
JSONL = "".join(json.dumps({"id": str(i), "text": f"cocaine document {i}"}) + "\n" for i in range(1, 2000))
BIOC_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<collection><source>x</source><date></date><key></key>\n'
    + "".join(
        f"<document><id>{i}</id><passage><offset>0</offset><text>Cocaine text {i}.</text>"
        "</passage></document>\n"
        for i in range(1, 800)
    )
    + "</collection>\n"
)
BIOC_JSON = json.dumps(
    {
        "source": "",
        "date": "",
        "key": "",
        "infons": {},
        "documents": [
            {"id": str(i), "infons": {}, "relations": [], "passages": [
                {"offset": 0, "infons": {}, "text": f"Cocaine {i}.", "sentences": [],
                 "annotations": [], "relations": []}]}
            for i in range(1, 800)
        ],
    }
)
CONTENT = {".pubtator": PUBTATOR, ".jsonl": JSONL, ".xml": BIOC_XML, ".json": BIOC_JSON}


def damaged(content: str, damage: str) -> bytes:
    data = gzip.compress(content.encode("utf8"), mtime=0)
    if damage == "truncated":
        return data[: len(data) // 2]
    if damage == "corrupt":  # deflate data overwritten in the middle
        mid = len(data) // 2
        return data[:mid] + b"\xff" * 64 + data[mid + 64 :]
    if damage == "no-trailer":  # all the data, the CRC and size missing
        return data[:-8]
    if damage == "empty":  # gzip itself reads a 0-byte file as empty content
        return b""
    return content.encode("utf8")[:200]  # "not-gzip": a plain file named .gz


DAMAGES = ("truncated", "corrupt", "no-trailer", "not-gzip", "empty")


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("suffix", sorted(CONTENT))
def test_readers_raise_e120_naming_the_file(tmp_path, suffix, damage):
    path = tmp_path / f"in{suffix}.gz"
    path.write_bytes(damaged(CONTENT[suffix], damage))
    # Damaged deflate data may decompress to garbage before the decompressor
    # (or the CRC at the end) notices: read strictly, a garbled record can be
    # the first problem seen; skipping bad records, the damage always is E120.
    first = r"\[E120\] .*gzip" if damage != "corrupt" else r"\[E1\d\d\]"
    with pytest.raises(CorpusFormatError, match=first):
        list(iter_records(path))
    with pytest.raises(CorpusFormatError, match=r"in\.\w+\.gz: \[E120\] .*gzip") as info:
        list(iter_records(path, on_error="skip"))
    assert info.value.path == str(path)


@pytest.mark.parametrize("damage", ("truncated", "corrupt"))
@pytest.mark.parametrize("suffix", sorted(CONTENT))
def test_convert_of_a_damaged_gzip_is_one_coded_error(tmp_path, suffix, damage):
    path = tmp_path / f"in{suffix}.gz"
    path.write_bytes(damaged(CONTENT[suffix], damage))
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["convert", str(path), str(out), "--skip-bad"])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "E120" in text and str(path) in text, res.output
    assert "Traceback" not in text and "Aborted" not in text
    assert isinstance(res.exception, SystemExit)
    assert not out.exists()


@pytest.mark.parametrize("damage", ("truncated", "corrupt"))
@pytest.mark.parametrize("suffix", (".jsonl", ".pubtator", ".xml"))
def test_annotate_of_a_damaged_gzip_is_one_coded_error(tmp_path, suffix, damage):
    model = tmp_path / "model"
    spacy.blank("en").to_disk(model)
    path = tmp_path / f"in{suffix}.gz"
    path.write_bytes(damaged(CONTENT[suffix], damage))
    with pytest.raises(CorpusFormatError, match="E120"):
        annotate(spacy.blank("en"), path, tmp_path / "lib.jsonl", window=50)
    res = runner.invoke(app, ["annotate", str(model), str(path), str(tmp_path / "o.jsonl"), "--window", "50"])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "E120" in text and str(path) in text, res.output
    assert "Aborted" not in text and isinstance(res.exception, SystemExit)
    assert not (tmp_path / "o.jsonl").exists()


def test_a_damaged_txt_gz_in_an_input_folder_is_one_reject(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("cocaine")
    (folder / "b.txt.gz").write_bytes(damaged("lithium " * 5000, "truncated"))
    (folder / "c.txt.gz").write_bytes(gzip.compress(b"naloxone"))
    items = list(iter_input(folder))
    assert [(type(i).__name__, i.id) for i in items] == [("Record", "a"), ("Reject", "b"), ("Record", "c")]
    assert items[1].kind == "damaged" and "E120" in items[1].reason and "b.txt.gz" in items[1].reason
    stats = annotate(spacy.blank("en"), folder, tmp_path / "o.jsonl")
    assert stats.documents == 2 and stats.rejected == 1 and stats.reject_reasons == {"damaged": 1}


@pytest.mark.parametrize("damage", ("truncated", "corrupt"))
def test_vocabulary_readers_of_build_kb_give_e120(tmp_path, damage):
    from spacy_biobert.linking.sources import iter_lines

    header = "# Fields:\n# DiseaseName\tDiseaseID\tAltDiseaseIDs\tDefinition\n"
    rows = "".join(f"Disease {i}\tMESH:D{i:06d}\t\t\n" for i in range(5000))
    path = tmp_path / "CTD_diseases.tsv.gz"
    path.write_bytes(damaged(header + rows, damage))
    if damage == "truncated":
        with pytest.raises(ValueError, match=r"CTD_diseases\.tsv\.gz: \[E120\]"):
            list(iter_lines(path))
    args = ["build-kb", "--ctd-diseases", str(path), "--skip-bad", "-o", str(tmp_path / "kb")]
    res = runner.invoke(app, args)
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "E120" in text and "Traceback" not in text, res.output


def test_an_intact_gzip_still_reads(tmp_path):
    path = tmp_path / "ok.pubtator.gz"
    path.write_bytes(gzip.compress(PUBTATOR.encode()))
    assert len(list(iter_records(path))) == 399
    assert Path(path).exists()
