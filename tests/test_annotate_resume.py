"""`annotate --resume` refuses a progress file that does not belong to its
input: an edit anywhere in the input, even one that keeps the size and
restores the modification time (E313, from a SHA-256 of all the input), and
a progress file that records more documents done than the input holds
(E314), which must never "finish" with part of the output."""

import json
import os
from pathlib import Path

import pytest
import spacy
from typer.testing import CliRunner

from spacy_biobert.annotate import OutputPaths, annotate
from spacy_biobert.annotate.checkpoint import input_fingerprint
from spacy_biobert.cli import app

PATTERNS = [{"label": "Chemical", "pattern": [{"LOWER": "cocaine"}]}]


@pytest.fixture(scope="module")
def ruler_model(tmp_path_factory) -> str:
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    path = tmp_path_factory.mktemp("ruler") / "model"
    nlp.to_disk(path)
    return str(path)


class Stop(Exception):
    pass


def stop_after_first_window(stats):
    raise Stop


def interrupted(model: str, src: Path, out: Path, lines) -> None:
    src.write_text("".join(f"{line}\n" for line in lines), encoding="utf8")
    with pytest.raises(Stop):
        annotate(model, src, out, window=40, on_window=stop_after_first_window)
    assert OutputPaths.for_output(out).partial.exists()


def test_a_same_size_edit_with_the_old_mtime_is_refused(tmp_path, ruler_model):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    # a file over 2 MiB: the edit is in the middle, beyond its first and last MiB
    lines = [f"document {i:06d} with cocaine and some filler text" for i in range(60_000)]
    interrupted(ruler_model, src, out, lines)
    st = src.stat()
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 7] = data[middle : middle + 7].upper()  # same size
    src.write_bytes(bytes(data))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old modification time
    assert src.stat().st_size == st.st_size and src.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(ValueError, match=r"E313.*changed since the interrupted run.*sha256"):
        annotate(ruler_model, src, out, window=40, resume=True)
    res = CliRunner().invoke(app, ["annotate", ruler_model, str(src), str(out), "--window", "40", "--resume"])
    assert res.exit_code == 1 and "E313" in res.output and not out.exists()
    assert OutputPaths.for_output(out).partial.exists()  # nothing removed


def test_a_same_size_edit_in_a_folder_input_is_refused(tmp_path, ruler_model):
    folder, out = tmp_path / "docs", tmp_path / "out.jsonl"
    folder.mkdir()
    for i in range(60):
        (folder / f"{i:03d}.txt").write_text(f"document {i} with cocaine")
    with pytest.raises(Stop):
        annotate(ruler_model, folder, out, window=40, on_window=stop_after_first_window)
    edited = folder / "050.txt"
    st = edited.stat()
    edited.write_text("DOCUMENT 50 with cocaine")
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(ValueError, match=r"E313"):
        annotate(ruler_model, folder, out, window=40, resume=True)


def test_the_fingerprint_hashes_every_byte(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"a" * (3 << 20))
    before = input_fingerprint(path)
    data = bytearray(b"a" * (3 << 20))
    data[len(data) // 2] = ord("b")  # the middle: neither the first nor the last MiB
    path.write_bytes(bytes(data))
    assert input_fingerprint(path)["sha256"] != before["sha256"]
    assert set(before) == {"size", "mtime_ns", "sha256"}


def test_a_progress_file_past_the_end_of_the_input_is_refused(tmp_path, ruler_model):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    interrupted(ruler_model, src, out, [f"document {i} with cocaine" for i in range(100)])
    progress = OutputPaths.for_output(out).progress
    state = json.loads(progress.read_text())
    assert state["done"] == 40
    progress.write_text(json.dumps(dict(state, done=150)))  # more than the 100 documents
    with pytest.raises(ValueError, match=r"E314.*records 150 input document\(s\) done.*holds only 100"):
        annotate(ruler_model, src, out, window=40, resume=True)
    assert not out.exists() and OutputPaths.for_output(out).partial.exists()
    res = CliRunner().invoke(app, ["annotate", ruler_model, str(src), str(out), "--window", "40", "--resume"])
    assert res.exit_code == 1 and "E314" in res.output and "--overwrite" in res.output
    assert not out.exists()


def test_a_progress_file_at_the_end_of_the_input_still_finishes(tmp_path, ruler_model):
    src, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    src.write_text("".join(f"document {i} with cocaine\n" for i in range(40)))
    with pytest.raises(Stop):  # killed after its last window, before the final renames
        annotate(ruler_model, src, out, window=40, on_window=stop_after_first_window)
    stats = annotate(ruler_model, src, out, window=40, resume=True)
    assert stats.resumed_from == 40 and stats.documents == 40 and out.exists()
