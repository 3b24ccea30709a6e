"""`annotate`, model loading and `render` under hostile input: no document
lost, no traceback. Lone surrogates, pickled weights, memory bounded by the
defaults, `--resume` checking its input, kb-url links, window budgets; one
regression test per defect found, each with its reproduction."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from tiny_pipelines import save_tiny_ner_pipeline
from typer.testing import CliRunner

from spacy_biobert.annotate import OutputPaths, annotate, iter_input
from spacy_biobert.cli import app

ROOT = Path(__file__).resolve().parents[1]
SURROGATE_JSONL = '{"id":"1","text":"cocaine induced hypertension"}\n{"id":"2","text":"A \\ud800 b"}\n'
PATTERNS = [
    {"label": "Chemical", "pattern": [{"LOWER": "cocaine"}]},
    {"label": "Disease", "pattern": [{"LOWER": "hypertension"}]},
]


@pytest.fixture(scope="module")
def ruler_model(tmp_path_factory) -> str:
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    path = tmp_path_factory.mktemp("ruler") / "model"
    nlp.to_disk(path)
    return str(path)


@pytest.fixture(scope="module")
def ner_model(tiny_bert, tmp_path_factory) -> str:
    return save_tiny_ner_pipeline(tiny_bert, tmp_path_factory.mktemp("ner") / "model")


def read_jsonl(path: Path):
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]


class Stop(Exception):
    pass


def stop_after_first_window(stats):
    raise Stop


# --- a lone surrogate ----------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".pubtator", ".xml", ".json"])
def test_lone_surrogate_is_a_reject_in_every_output_format(tmp_path, ner_model, suffix):
    (tmp_path / "s.jsonl").write_text(SURROGATE_JSONL, encoding="ascii")
    out = tmp_path / f"o{suffix}"
    res = CliRunner().invoke(app, ["annotate", ner_model, str(tmp_path / "s.jsonl"), str(out)])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and "1 document(s) rejected (encoding: 1)" in res.output
    (reject,) = read_jsonl(Path(f"{out}.rejects.jsonl"))
    assert (reject["index"], reject["id"], reject["kind"]) == (1, "2", "encoding")
    assert "lone surrogate U+D800" in reject["reason"]
    assert out.read_text(encoding="utf8").count("cocaine induced hypertension") == 1


def test_lone_surrogate_in_an_id_or_a_reason_keeps_the_rejects_file_utf8(tmp_path, ruler_model):
    (tmp_path / "s.jsonl").write_text(
        '{"id":"\\udfff","text":"cocaine"}\n{"id":"ok","text":"hypertension"}\n', encoding="ascii"
    )
    stats = annotate(ruler_model, tmp_path / "s.jsonl", tmp_path / "o.jsonl")
    assert (stats.documents, stats.rejected) == (1, 1)
    (reject,) = read_jsonl(tmp_path / "o.jsonl.rejects.jsonl")
    assert reject["id"] == "\\udfff" and reject["kind"] == "encoding" and "the id" in reject["reason"]


def test_resume_over_a_lone_surrogate(tmp_path, ruler_model):
    lines = [json.dumps({"id": str(i), "text": f"cocaine {i}"}) for i in range(6)]
    lines[4] = '{"id":"4","text":"A \\ud800 b"}'
    (tmp_path / "s.jsonl").write_text("\n".join(lines) + "\n", encoding="ascii")
    out = tmp_path / "o.xml"
    with pytest.raises(Stop):
        annotate(ruler_model, tmp_path / "s.jsonl", out, window=2, on_window=stop_after_first_window)
    res = CliRunner().invoke(
        app, ["annotate", ruler_model, str(tmp_path / "s.jsonl"), str(out), "--window", "2", "--resume"]
    )
    assert res.exit_code == 0, res.output
    assert "resumed after" in res.output
    assert [r["index"] for r in read_jsonl(Path(f"{out}.rejects.jsonl"))] == [4]
    assert out.read_text(encoding="utf8").count("<document>") == 5


# --- pickled code in saved weights ------------------------------------------------


def test_setup_cfg_requires_torch_2_6():
    text = (ROOT / "setup.cfg").read_text(encoding="utf8")
    assert "    torch>=2.6\n" in text and "torch>=2.1" not in text


class _Payload:
    """Pickled as a call of open(MARKER, "w"): creates MARKER if ever unpickled."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_pickle_payload(model: Path, marker: Path) -> None:
    """Replace the biobert weights of a saved pipeline with a pickle that
    calls open(marker, "w") when loaded by an unsafe torch.load."""
    import srsly
    import torch

    path = model / "biobert" / "model"
    msg = srsly.msgpack_loads(path.read_bytes())
    node = next(i for i, shims in enumerate(msg["shims"]) if shims)
    shim = srsly.msgpack_loads(msg["shims"][node][0])
    payload = _Payload()
    payload.marker = str(marker)
    buf = io.BytesIO()
    torch.save({"embeddings.word_embeddings.weight": payload}, buf)
    shim["state"] = buf.getvalue()
    msg["shims"][node][0] = srsly.msgpack_dumps(shim)
    path.write_bytes(srsly.msgpack_dumps(msg))


@pytest.fixture(scope="module")
def pickled_model(tiny_bert, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pickled")
    model = Path(save_tiny_ner_pipeline(tiny_bert, folder / "model"))
    marker = folder / "PAYLOAD-RAN"
    _write_pickle_payload(model, marker)
    return model, marker


def test_pickled_weights_are_one_coded_error(pickled_model, tmp_path):
    model, marker = pickled_model
    with pytest.raises(OSError, match=r"E005.*biobert.*Unsupported global"):
        spacy.load(model)
    assert not marker.exists()
    (tmp_path / "in.txt").write_text("cocaine\n")
    args = ["annotate", str(model), str(tmp_path / "in.txt"), str(tmp_path / "o.jsonl")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1 and "E005" in res.output and "Traceback" not in res.output
    assert not marker.exists()


def test_torch_older_than_2_6_is_refused(monkeypatch, ner_model):
    import torch

    from spacy_biobert.models.base_models import load_pipeline

    monkeypatch.setattr(torch, "__version__", "2.5.1+cpu")
    with pytest.raises(OSError, match=r"E006.*torch 2.5.1"):
        load_pipeline(ner_model)


# --- memory is bounded by the defaults ----------------------------------------------


def test_defaults_reject_the_958k_character_document(tmp_path, ruler_model):
    text = ("cocaine induced hypertension in rats " * 30_000)[:958_000]
    lines = [json.dumps({"id": "big", "text": text}), '{"text": "cocaine"}']
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    stats = annotate(ruler_model, tmp_path / "big.jsonl", tmp_path / "o.jsonl")
    assert (stats.documents, stats.rejected) == (1, 1)
    (reject,) = read_jsonl(tmp_path / "o.jsonl.rejects.jsonl")
    assert reject["kind"] == "too-long" and "over --max-chars 100000" in reject["reason"]


def test_lines_too_long_for_max_chars_are_not_read(tmp_path):
    (tmp_path / "in.txt").write_bytes(b"x" * 450 + b"\nshort\n")
    long_line = b'{"text": "' + b"y" * (12 * 100 + (1 << 20)) + b'"}\n'
    (tmp_path / "in.jsonl").write_bytes(long_line + b'{"text": "z"}\n')
    items = list(iter_input(tmp_path / "in.txt", max_chars=100))
    assert [type(i).__name__ for i in items] == ["Reject", "Record"]
    assert items[0].kind == "too-long" and "not read" in items[0].reason
    items = list(iter_input(tmp_path / "in.jsonl", max_chars=100))
    assert [type(i).__name__ for i in items] == ["Reject", "Record"] and items[1].index == 1


def test_cli_help_states_the_memory_bound():
    res = CliRunner().invoke(app, ["annotate", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "4 GB" in " ".join(res.output.split()) and "100000" in res.output


def test_encoder_sees_at_most_max_batch_items(ner_model):
    """A long document goes through the encoder in slices (same output)."""
    import numpy
    from spacy_transformers import Transformer

    nlp = spacy.load(ner_model)
    trf = nlp.get_pipe("biobert")
    doc = nlp.make_doc("cocaine induced hypertension in rats. " * 200)
    whole = Transformer.predict(trf, [doc])  # spacy-transformers: every window at once
    encoder = trf.model.layers[0]
    seen = []
    original = encoder._func

    def spy(model, X, is_train):
        seen.append(X.input_ids.size)
        return original(model, X, is_train)

    encoder._func = spy
    trf.cfg["max_batch_items"] = 512
    try:
        sliced = trf.predict([doc])
    finally:
        encoder._func = original
    assert len(seen) > 1 and max(seen) <= 512
    assert sum(seen) == whole.wordpieces.input_ids.size
    assert numpy.allclose(
        whole.model_output.last_hidden_state.numpy(), sliced.model_output.last_hidden_state.numpy(), atol=1e-5
    )


def peak_rss_of_largest_default_document(base_model: str, tmp_path: Path) -> dict:
    """bench/annotate_memory.py: peak RSS of `annotate` (defaults) on the
    largest document they admit, with `biobert` (base_model) + `ner`."""
    out = tmp_path / "memory.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "annotate_memory.py"), base_model, "--output", str(out)],
        capture_output=True, text=True, timeout=1800, env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(out.read_text())
    assert (result["documents"], result["chars"]) == (1, result["default_max_chars"])
    return result


# The bound the README ("Reliability") and `annotate --help` state.
MEMORY_BOUND_MB = 4096


@pytest.mark.slow
def test_largest_default_document_stays_under_the_bound_tiny_model(tiny_bert, tmp_path):
    result = peak_rss_of_largest_default_document(tiny_bert, tmp_path)
    assert result["peak_mb"] < MEMORY_BOUND_MB, result


@pytest.mark.slow
def test_largest_default_document_stays_under_the_bound_offline_model(offline_model, tmp_path):
    result = peak_rss_of_largest_default_document(offline_model, tmp_path)
    assert result["peak_mb"] < MEMORY_BOUND_MB, result


def test_memory_zone_keeps_the_vocab_flat_over_windows(tmp_path, ruler_model):
    nlp = spacy.load(ruler_model)
    for n in (1, 2):
        lines = [json.dumps({"text": f"cocaine w{n}x{i} z{n}y{i}"}) for i in range(300)]
        (tmp_path / f"in{n}.jsonl").write_text("\n".join(lines) + "\n")
    annotate(nlp, tmp_path / "in1.jsonl", tmp_path / "o1.jsonl", window=50)
    before = len(nlp.vocab.strings)
    annotate(nlp, tmp_path / "in2.jsonl", tmp_path / "o2.jsonl", window=50)
    assert len(nlp.vocab.strings) == before
    assert read_jsonl(tmp_path / "o2.jsonl")[5]["text"] == "cocaine w2x5 z2y5"


# --- --resume checks the input --------------------------------------------------------


def _interrupted_run(model, src: Path, out: Path, n: int = 100):
    src.write_text("\n".join(f"old document {i} with cocaine" for i in range(n)) + "\n")
    with pytest.raises(Stop):
        annotate(model, src, out, window=40, on_window=stop_after_first_window)
    assert OutputPaths.for_output(out).partial.exists()


def test_resume_refuses_a_changed_input(tmp_path, ruler_model):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    _interrupted_run(ruler_model, src, out)
    # the issue: 40 old documents done, then the input replaced by 100 new ones
    src.write_text("\n".join(f"new document {i} with cocaine" for i in range(100)) + "\n")
    with pytest.raises(ValueError, match=r"E313.*changed since the interrupted run.*sha256"):
        annotate(ruler_model, src, out, window=40, resume=True)
    res = CliRunner().invoke(app, ["annotate", ruler_model, str(src), str(out), "--window", "40", "--resume"])
    assert res.exit_code == 1 and "E313" in res.output and not out.exists()
    # same size, same first and last MiB, other modification time: refused too
    src.write_text("\n".join(f"old document {i} with cocaine" for i in range(100)) + "\n")
    with pytest.raises(ValueError, match=r"E313.*mtime_ns"):
        annotate(ruler_model, src, out, window=40, resume=True)


def test_resume_of_an_unchanged_input_still_works(tmp_path, ruler_model):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    _interrupted_run(ruler_model, src, out)
    stats = annotate(ruler_model, src, out, window=40, resume=True)
    assert stats.resumed_from == 40 and stats.documents == 100
    assert [d["id"] for d in read_jsonl(out)] == [str(i + 1) for i in range(100)]


@pytest.mark.parametrize(
    "damage,match",
    [
        ("delete", r"E312.*no progress file.*deleted"),
        ("garbage", r"E312.*progress file .* is corrupt"),
        ("not-an-object", r"E312.*corrupt \(not a JSON object\)"),
        ("bad-count", r"E312.*corrupt \(done = -3\)"),
        ("old-version", r"E312.*format version 1"),
    ],
)
def test_resume_with_a_missing_or_corrupt_progress_file_says_so(tmp_path, ruler_model, damage, match):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    _interrupted_run(ruler_model, src, out)
    progress = OutputPaths.for_output(out).progress
    state = json.loads(progress.read_text())
    if damage == "delete":
        progress.unlink()
    elif damage == "garbage":
        progress.write_bytes(b'{"version": 2, "done": 4')
    elif damage == "not-an-object":
        progress.write_text("[]")
    elif damage == "bad-count":
        progress.write_text(json.dumps(dict(state, done=-3)))
    else:
        progress.write_text(json.dumps(dict(state, version=1)))
    with pytest.raises(ValueError, match=match):
        annotate(ruler_model, src, out, window=40, resume=True)
    res = CliRunner().invoke(app, ["annotate", ruler_model, str(src), str(out), "--window", "40", "--resume"])
    assert res.exit_code == 1 and "E312" in res.output and "--overwrite" in res.output
    assert OutputPaths.for_output(out).partial.exists()  # nothing silently removed


# --- render: kb-url links ------------------------------------------------------------


def test_kb_url_links_percent_encode_the_id():
    from spacy.tokens import Span

    from spacy_biobert.visualize import render

    nlp = spacy.blank("en")
    doc = nlp("cocaine and lithium")
    doc.ents = [
        Span(doc, 0, 1, "Chemical", kb_id="D001|D002"),
        Span(doc, 2, 3, "Chemical", kb_id="a b&c/d?e#f"),
    ]
    page = render(doc, kb_url_template="https://meshb.nlm.nih.gov/record/ui?ui={}")
    assert 'href="https://meshb.nlm.nih.gov/record/ui?ui=D001%7CD002"' in page
    assert 'href="https://meshb.nlm.nih.gov/record/ui?ui=a%20b%26c%2Fd%3Fe%23f"' in page


def test_render_cli_refuses_a_bad_kb_url_template(tmp_path, ruler_model):
    (tmp_path / "in.txt").write_text("cocaine\n")
    res = CliRunner().invoke(
        app, ["render", ruler_model, str(tmp_path / "in.txt"), "-o", str(tmp_path / "p.html"),
              "--kb-url", "https://x.org/{id}"]
    )
    assert res.exit_code == 1 and "--kb-url" in res.output and "Traceback" not in res.output


def test_windows_end_at_a_character_budget():
    """A window's texts and output are in memory together: a window ends at
    `window` items or WINDOW_CHARS characters, the same cut from any boundary."""
    from spacy_biobert.annotate import Record, Reject
    from spacy_biobert.annotate.window import WINDOW_CHARS, windows

    items = [Record(i, str(i), "x" * n) for i, n in enumerate([40, 40, 40, 100, 5, 5])]
    items.append(Reject(6, "6", "empty text", "empty"))
    cut = [[it.index for it in w] for w in windows(items, 10, max_chars=90)]
    assert cut == [[0, 1], [2], [3], [4, 5, 6]]
    assert [[it.index for it in w] for w in windows(items[2:], 10, max_chars=90)] == cut[1:]
    assert [len(w) for w in windows(items, 3, max_chars=1000)] == [3, 3, 1]
    assert 1_000 * 1_500 < WINDOW_CHARS  # a window of abstracts is not cut


def test_ray_windows_are_the_local_windows(tmp_path, monkeypatch):
    """Cut by characters too, the Ray backend checkpoints at the local
    backend's window boundaries, from any of them, so a run still resumes on
    the other backend."""
    from spacy_biobert.annotate import AnnotateOptions, Record, window
    from spacy_biobert.annotate.ray_backend import RayBackend, Workers

    class FakeRay(RayBackend):
        def available_workers(self):
            return 2

        def start_workers(self, model, count):
            def submit(worker, batch):
                return tuple(("doc", i, doc_id, "", 0, 0) for i, doc_id, _, _ in batch)

            return Workers(count, None, submit, lambda handles: (handles[0], list(handles[0])), lambda: None)

    monkeypatch.setattr(window, "WINDOW_CHARS", 90)
    items = [Record(i, str(i), "x" * n) for i, n in enumerate([40, 40, 40, 100, 5, 5])]
    opts = AnnotateOptions(window=10, output_format="jsonl")
    for done, cut in ((0, [2, 1, 1, 2]), (3, [1, 2]), (4, [2])):
        written: list = []
        FakeRay(tmp_path, opts, tmp_path / "work").run(iter(items), done, lambda n, r, w=written: w.append(n))
        assert written == cut
