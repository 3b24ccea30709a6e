"""`spacy-biobert annotate`: formats, order, rejects, atomic output, resume."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.language import Language

from spacy_biobert.annotate import (
    OutputPaths,
    Record,
    Reject,
    annotate,
    annotate_window,
    detect_input_format,
    iter_input,
)

PATTERNS = [
    {"label": "Chemical", "pattern": [{"LOWER": "cocaine"}]},
    {"label": "Chemical", "pattern": [{"LOWER": "lithium"}]},
    {"label": "Disease", "pattern": [{"LOWER": "hypertension"}]},
]
WORDS = "cocaine induced hypertension in rats lithium was given to patients with acute pain".split()


def ruler_nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    return nlp


@pytest.fixture(scope="module")
def ruler_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("ruler") / "model"
    ruler_nlp().to_disk(path)
    return str(path)


def texts(n: int):
    """Documents of varied lengths (so sorting by length reorders them)."""
    out = []
    for i in range(n):
        k = 3 + (i * 7) % 23
        out.append(f"Doc{i} " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(k)) + ".")
    return out


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


def test_detect_input_format(tmp_path):
    (tmp_path / "a.txt").write_text("Some text\n")
    (tmp_path / "b.txt").write_text("123|t|Title\n123|a|Abstract\n")
    with gzip.open(tmp_path / "c.gz", "wt") as fp:
        fp.write('{"text": "x"}\n')
    assert detect_input_format(tmp_path / "a.txt") == "text"
    assert detect_input_format(tmp_path / "b.txt") == "pubtator"
    assert detect_input_format(tmp_path / "c.gz") == "jsonl"
    assert detect_input_format(tmp_path) == "text"


def test_text_input_order_and_rejects(tmp_path, ruler_model):
    lines = texts(40)
    lines[3] = ""
    lines[10] = "   "
    lines[20] = "x" * 500
    raw = "\n".join(lines).encode("utf8") + b"\n"
    raw = raw.replace(b"Doc30 ", b"Doc30 \xff\xfe ")
    (tmp_path / "in.txt").write_bytes(raw)
    stats = annotate(ruler_model, tmp_path / "in.txt", tmp_path / "out.jsonl", max_chars=400, window=7,
                     batch_size=3)
    out = read_jsonl(tmp_path / "out.jsonl")
    rejects = read_jsonl(tmp_path / "out.jsonl.rejects.jsonl")
    assert [r["index"] for r in rejects] == [3, 10, 20, 30]
    assert [r["kind"] for r in rejects] == ["empty", "empty", "too-long", "encoding"]
    assert "over --max-chars 400" in rejects[2]["reason"]
    # every input line exactly once, in input order
    assert [d["id"] for d in out] == [str(i + 1) for i in range(40) if i not in (3, 10, 20, 30)]
    assert all(d["text"] == lines[int(d["id"]) - 1] for d in out)
    assert stats.documents == 36 and stats.rejected == 4
    assert stats.entities == sum(len(d["mentions"]) for d in out) > 0
    assert {m["type"] for d in out for m in d["mentions"]} == {"Chemical", "Disease"}
    paths = OutputPaths.for_output(tmp_path / "out.jsonl")
    assert not paths.partial.exists() and not paths.progress.exists()
    assert not paths.rejects_partial.exists()


def test_annotate_window_is_a_plain_function_keeping_input_order():
    nlp = ruler_nlp()
    items = [Record(i, str(i), t, [("text", 0, t)]) for i, t in enumerate(texts(9))]
    items.insert(4, Reject(99, "r", "empty text", "empty"))
    results = annotate_window(nlp, items, output_format="jsonl", batch_size=2)
    assert [r.index for r in results] == [it.index for it in items]
    assert isinstance(results[4], Reject)
    assert json.loads(results[0].chunk)["text"] == items[0].text


def test_jsonl_gz_and_folder_inputs(tmp_path, ruler_model):
    with gzip.open(tmp_path / "in.jsonl.gz", "wt", encoding="utf8") as fp:
        fp.write(json.dumps({"id": "a", "text": "Cocaine and lithium."}) + "\n")
        fp.write("not json\n")
        fp.write(json.dumps({"id": "b"}) + "\n")
        fp.write(json.dumps({"text": "Hypertension."}) + "\n")
    annotate(ruler_model, tmp_path / "in.jsonl.gz", tmp_path / "out.jsonl")
    out = read_jsonl(tmp_path / "out.jsonl")
    assert [d["id"] for d in out] == ["a", "4"]
    assert [len(d["mentions"]) for d in out] == [2, 1]
    assert [(r["index"], r["kind"]) for r in read_jsonl(tmp_path / "out.jsonl.rejects.jsonl")] == [
        (1, "json"),
        (2, "json"),
    ]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "b.txt").write_text("Lithium.\nSecond line with cocaine.")
    with gzip.open(folder / "a.txt.gz", "wt") as fp:
        fp.write("Hypertension.")
    (folder / "ignored.md").write_text("not a document")
    (folder / "c.txt").write_text("x" * 200)
    (folder / "d.txt").write_text("y" * 20)
    annotate(ruler_model, folder, tmp_path / "folder.jsonl", max_chars=40)
    out = read_jsonl(tmp_path / "folder.jsonl")
    assert [d["id"] for d in out] == ["a", "b", "d"]
    assert [len(d["mentions"]) for d in out] == [1, 2, 0]
    (reject,) = read_jsonl(tmp_path / "folder.jsonl.rejects.jsonl")
    assert (reject["index"], reject["id"], reject["kind"]) == (2, "c", "too-long")


def test_pubtator_and_bioc_in_and_out(tmp_path, ruler_model):
    from spacy_biobert.corpora.formats import iter_records

    (tmp_path / "in.pubtator").write_text(
        "1|t|Cocaine and hypertension.\n1|a|Lithium too.\n1\t0\t7\tCocaine\tChemical\tD003042\n\n"
        "2|t|Bad document without abstract\n\n"
        "3|t|Nothing here.\n3|a|At all.\n\n"
    )
    stats = annotate(ruler_model, tmp_path / "in.pubtator", tmp_path / "out.pubtator")
    assert (stats.documents, stats.rejected) == (2, 1)
    recs = list(iter_records(tmp_path / "out.pubtator"))
    assert [r.doc_id for r in recs] == ["1", "3"]
    assert recs[0].passages[0][2] == "Cocaine and hypertension."
    assert [(m.text, m.type) for m in recs[0].mentions] == [
        ("Cocaine", "Chemical"),
        ("hypertension", "Disease"),
        ("Lithium", "Chemical"),
    ]
    (reject,) = read_jsonl(tmp_path / "out.pubtator.rejects.jsonl")
    assert reject["index"] == 1 and "abstract" in reject["reason"]
    # PubTator -> BioC XML (gzip input) -> BioC JSON: the same documents
    with open(tmp_path / "out.pubtator", "rb") as src, gzip.open(tmp_path / "in.pubtator.gz", "wb") as dst:
        dst.write(src.read())
    annotate(ruler_model, tmp_path / "in.pubtator.gz", tmp_path / "out.xml")
    annotate(ruler_model, tmp_path / "out.xml", tmp_path / "out.json")
    for path in ("out.xml", "out.json"):
        again = list(iter_records(tmp_path / path))
        assert [r.doc_id for r in again] == ["1", "3"]
        assert [(m.start, m.end, m.type) for m in again[0].mentions] == [
            (m.start, m.end, m.type) for m in recs[0].mentions
        ]


def test_pubtator_output_rejects_what_it_cannot_write(tmp_path, ruler_model):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Title\nline two\nline three with cocaine")
    (folder / "b.txt").write_text("Title\nlithium")
    stats = annotate(ruler_model, folder, tmp_path / "out.pubtator")
    assert (stats.documents, stats.rejected) == (1, 1)
    (reject,) = read_jsonl(tmp_path / "out.pubtator.rejects.jsonl")
    assert reject["id"] == "a" and reject["kind"] == "unwritable" and "E110" in reject["reason"]


@Language.component("test_annotate_fake_relations")
def fake_relations(doc):
    """Scores every ordered pair of entities: 0.9 CID for Chemical -> Disease, else 0.1."""
    ents = list(doc.ents)
    doc._.relations = {
        (h.start, t.start): {"CID": 0.9 if (h.label_, t.label_) == ("Chemical", "Disease") else 0.1}
        for h in ents
        for t in ents
        if h is not t
    }
    return doc


def test_relations_are_written_with_scores(tmp_path):
    from spacy_biobert.extensions import install_extensions

    install_extensions()
    nlp = ruler_nlp()
    nlp.add_pipe("test_annotate_fake_relations")
    (tmp_path / "in.txt").write_text("Cocaine induced hypertension.\nLithium.\n")
    stats = annotate(nlp, tmp_path / "in.txt", tmp_path / "out.jsonl")
    first, second = read_jsonl(tmp_path / "out.jsonl")
    assert first["predicted_relations"] == [
        {"level": "mention", "head": "M1", "tail": "M2", "head_span": [0, 7], "tail_span": [16, 28],
         "label": "CID", "score": 0.9}
    ]
    assert "predicted_relations" not in second
    assert (stats.documents, stats.entities, stats.relations) == (2, 3, 1)


def test_killed_between_the_final_renames_resumes(tmp_path, ruler_model):
    (tmp_path / "in.txt").write_text("\n".join(texts(20)) + "\n\n")
    clean = tmp_path / "clean.jsonl"
    annotate(ruler_model, tmp_path / "in.txt", clean, window=6)
    out = tmp_path / "out.jsonl"
    paths = OutputPaths.for_output(out)
    progress = []

    def keep(stats):
        progress.append((paths.progress.read_bytes(), paths.partial.read_bytes(),
                         paths.rejects_partial.read_bytes()))

    annotate(ruler_model, tmp_path / "in.txt", out, window=6, on_window=keep)
    # as if killed after the rejects were renamed, before the output was
    prog, partial, _ = progress[-1]
    out.unlink()
    paths.progress.write_bytes(prog)
    paths.partial.write_bytes(partial)
    annotate(ruler_model, tmp_path / "in.txt", out, window=6, resume=True)
    assert out.read_bytes() == clean.read_bytes()
    assert paths.rejects.read_bytes() == OutputPaths.for_output(clean).rejects.read_bytes()
    assert paths.rejects.read_bytes().count(b"\n") == 1


def test_leftovers_need_resume_or_overwrite(tmp_path, ruler_model):
    (tmp_path / "in.txt").write_text("\n".join(texts(10)) + "\n")
    out = tmp_path / "out.jsonl"
    annotate(ruler_model, tmp_path / "in.txt", out)
    with pytest.raises(FileExistsError, match="E302"):
        annotate(ruler_model, tmp_path / "in.txt", out)
    first = out.read_bytes()
    Path(f"{out}.partial").write_text("half")
    with pytest.raises(FileExistsError, match="E302"):
        annotate(ruler_model, tmp_path / "in.txt", out, resume=True)
    out.unlink()
    with pytest.raises(FileExistsError, match=r"E301.*--resume"):
        annotate(ruler_model, tmp_path / "in.txt", out)
    annotate(ruler_model, tmp_path / "in.txt", out, overwrite=True)
    assert out.read_bytes() == first


class Stop(Exception):
    pass


@pytest.mark.parametrize("suffix", [".jsonl", ".xml", ".json", ".pubtator"])
def test_resume_gives_the_same_bytes(tmp_path, ruler_model, suffix):
    lines = texts(50)
    lines[12] = ""
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    clean = tmp_path / f"clean{suffix}"
    annotate(ruler_model, tmp_path / "in.txt", clean, window=6)
    out = tmp_path / f"out{suffix}"

    def stop_after_3(stats):
        if stats.processed >= 18:
            raise Stop

    with pytest.raises(Stop):
        annotate(ruler_model, tmp_path / "in.txt", out, window=6, on_window=stop_after_3)
    paths = OutputPaths.for_output(out)
    assert not out.exists() and paths.partial.exists()
    # a crash after the checkpoint leaves half-written bytes: resume cuts them
    with open(paths.partial, "ab") as fp:
        fp.write(b'{"id": "half-writ')
    with open(paths.rejects_partial, "ab") as fp:
        fp.write(b'{"ind')
    with pytest.raises(ValueError, match="E303.*window"):
        annotate(ruler_model, tmp_path / "in.txt", out, window=5, resume=True)
    stats = annotate(ruler_model, tmp_path / "in.txt", out, window=6, resume=True)
    assert stats.resumed_from == 18 and stats.processed == 32
    assert (stats.documents, stats.rejected) == (49, 1)
    assert out.read_bytes() == clean.read_bytes()
    assert paths.rejects.read_bytes() == OutputPaths.for_output(clean).rejects.read_bytes()
    assert not paths.progress.exists() and not paths.partial.exists()


def test_resume_without_leftovers_starts_afresh(tmp_path, ruler_model):
    (tmp_path / "in.txt").write_text("Cocaine.\n")
    stats = annotate(ruler_model, tmp_path / "in.txt", tmp_path / "o.jsonl", resume=True)
    assert stats.documents == 1 and stats.resumed_from == 0


def test_bad_options(tmp_path, ruler_model):
    (tmp_path / "in.txt").write_text("Cocaine.\n")
    with pytest.raises(ValueError, match="E304"):
        annotate(ruler_model, tmp_path / "in.txt", tmp_path / "o.spacy")
    with pytest.raises(ValueError, match="E306"):
        annotate(ruler_model, tmp_path / "in.txt", tmp_path / "o.jsonl", max_chars=0)
    with pytest.raises(ValueError, match="E304"):
        list(iter_input(tmp_path / "in.txt", "docx"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="E307"):
        list(iter_input(tmp_path / "empty"))


def test_cli_in_process(tmp_path, ruler_model):
    from typer.testing import CliRunner

    from spacy_biobert.cli import app

    runner = CliRunner()
    (tmp_path / "in.txt").write_text("Cocaine induced hypertension.\n\n" + "x" * 30 + "\n")
    out = tmp_path / "out.jsonl"
    args = ["annotate", ruler_model, str(tmp_path / "in.txt"), str(out)]
    res = runner.invoke(app, args + ["--max-chars", "29"])
    assert res.exit_code == 0, res.output
    assert "documents/s" in res.output and "2 document(s) rejected" in res.output
    assert len(read_jsonl(out)) == 1
    res = runner.invoke(app, args + ["--max-chars", "none", "--overwrite"])
    assert res.exit_code == 0 and len(read_jsonl(out)) == 2
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "--overwrite" in res.output
    res = runner.invoke(app, args + ["--max-chars", "0"])
    assert res.exit_code == 1 and "'none'" in res.output
    res = runner.invoke(app, args + ["--resume", "--overwrite"])
    assert res.exit_code == 1 and "exclude each other" in res.output
    res = runner.invoke(app, ["annotate", str(tmp_path / "no-model"), str(tmp_path / "in.txt"), str(out)])
    assert res.exit_code == 1 and "Cannot load the pipeline" in res.output


def _cli(*args):
    return [sys.executable, "-m", "spacy_biobert", "annotate", *map(str, args)]


@pytest.fixture(scope="module")
def biobert_ruler_model(tiny_bert, tmp_path_factory) -> str:
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    ruler = nlp.add_pipe("entity_ruler")
    nlp.initialize()  # loads the transformer weights (and empties the ruler)
    ruler.add_patterns(PATTERNS)
    path = tmp_path_factory.mktemp("biobert-ruler") / "model"
    nlp.to_disk(path)
    return str(path)


def test_cli_killed_and_resumed_gives_the_same_output(tmp_path, biobert_ruler_model):
    lines = texts(400)
    lines[7] = ""
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    paths = OutputPaths.for_output(out)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        _cli(biobert_ruler_model, tmp_path / "in.txt", out, "--window", "10", "--batch-size", "4"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    done = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = json.loads(paths.progress.read_text())["done"]
        except (FileNotFoundError, json.JSONDecodeError):
            done = 0
        if done >= 10:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not out.exists() and paths.partial.exists() and 10 <= done < 400
    # without --resume: a clear error
    res = subprocess.run(_cli(biobert_ruler_model, tmp_path / "in.txt", out), env=env,
                         capture_output=True, text=True)
    assert res.returncode == 1 and "--resume" in res.stdout + res.stderr
    res = subprocess.run(
        _cli(biobert_ruler_model, tmp_path / "in.txt", out, "--window", "10", "--batch-size", "4",
             "--resume"),
        env=env, capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "documents/s" in res.stdout and "resumed after" in res.stdout
    clean = tmp_path / "clean.jsonl"
    annotate(biobert_ruler_model, tmp_path / "in.txt", clean, window=10, batch_size=4)
    assert out.read_bytes() == clean.read_bytes()
    assert paths.rejects.read_bytes() == OutputPaths.for_output(clean).rejects.read_bytes()
    docs = read_jsonl(out)
    assert len(docs) == 399 and sum(len(d["mentions"]) for d in docs) > 399


@pytest.mark.slow
def test_bc5cdr_dev_every_document_in_order(tmp_path, ruler_model, corpora_dir):
    from spacy_biobert.corpora.formats import iter_records

    src = corpora_dir / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt"
    gold = list(iter_records(src))
    stats = annotate(ruler_model, src, tmp_path / "dev.pubtator", window=64)
    out = list(iter_records(tmp_path / "dev.pubtator"))
    assert (stats.documents, stats.rejected) == (len(gold), 0)
    assert [r.doc_id for r in out] == [r.doc_id for r in gold]
    assert [r.text for r in out] == [r.text for r in gold]
    assert stats.entities == sum(len(r.mentions) for r in out) > 0


_MEMORY_SCRIPT = """
import json, resource, sys
from spacy_biobert.annotate import annotate
stats = annotate(sys.argv[1], sys.argv[2], sys.argv[3], window=500)
print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "documents": stats.documents}))
"""


def _peak_rss(model, n, tmp_path):
    lines = texts(n)
    src = tmp_path / f"in{n}.jsonl"
    with open(src, "w", encoding="utf8") as fp:
        for i, t in enumerate(lines):
            # abstract-sized (~1,000 characters), words from a fixed vocabulary
            text = " ".join([t.split(" ", 1)[1]] * 8)
            fp.write(json.dumps({"id": f"PMID{i}", "text": text}) + "\n")
    res = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, model, str(src), str(tmp_path / f"out{n}.jsonl")],
        capture_output=True, text=True, check=True,
    )
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["documents"] == n
    return result["peak_kb"] / 1024


@pytest.mark.slow
def test_memory_stays_flat_on_20000_documents(tmp_path, ruler_model):
    small = _peak_rss(ruler_model, 2_000, tmp_path)
    large = _peak_rss(ruler_model, 20_000, tmp_path)
    # 10x the documents (about 20 MB of input, 70 MB of output): peak RSS grows by a few MB at most
    assert large - small < 25, (small, large)


def test_text_docs_blank_line_through_annotate_cli_and_render(tmp_path, ruler_model):
    from typer.testing import CliRunner

    from spacy_biobert.cli import app

    runner = CliRunner()
    src = tmp_path / "in.txt"
    src.write_text("Cocaine induced\nhypertension.\n\n\nLithium.\n")
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["annotate", ruler_model, str(src), str(out), "--text-docs", "blank-line"])
    assert res.exit_code == 0, res.output
    docs = read_jsonl(out)
    assert [d["text"] for d in docs] == ["Cocaine induced\nhypertension.", "Lithium."]
    # The default reads one document per line; a resume must use the same rule.
    progress = OutputPaths.for_output(tmp_path / "o2.jsonl").progress
    with pytest.raises(ValueError, match="E119"):
        annotate(ruler_model, src, tmp_path / "o2.jsonl", text_docs="paragraph")
    assert not progress.exists()
    by_line = annotate(ruler_model, src, tmp_path / "o3.jsonl")
    assert by_line.documents == 3 and by_line.rejected == 2  # two blank lines
    page = tmp_path / "page.html"
    res = runner.invoke(app, ["render", ruler_model, str(src), "-o", str(page), "--text-docs", "blank-line"])
    assert res.exit_code == 0, res.output
    assert ": 2 document(s)" in " ".join(res.output.split())
    res = runner.invoke(app, ["annotate", ruler_model, str(src), str(out), "--overwrite", "--text-docs", "x"])
    assert res.exit_code == 1 and "E119" in res.output
