"""Fuzz suite for `annotate` and the service ("No document lost, no
traceback"), with Hypothesis.

Inputs are hostile but fair JSONL records: lone surrogate escapes in texts and
ids, control characters, line and paragraph separators, empty and
whitespace-only texts, ids of every JSON type (5,000-digit integers, NaN,
10,000-character strings, ids holding newlines and "|t|"), JSON nested
100,000 deep, lines that are not JSON or not UTF-8, texts over --max-chars.
Properties:

- `annotate`, in all four output formats: no exception; every input document
  exactly once, in the output (in input order, id and text unchanged) or in the
  rejects (with a known kind); output and rejects valid UTF-8 in their format;
- interrupted after any window and resumed (in-process, and by SIGKILL of the
  CLI): the same bytes as an uninterrupted run: none lost, none duplicated;
- the service: never a 500, only the documented statuses; a 200 answers every
  document sent.

Fast by default (a few examples each); the `slow` tests run the same
properties with many more. The counts are printed at the end of the module
("fuzz annotate/serve: ...").
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import spacy
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tiny_pipelines import tiny_relation_pipeline

from spacy_biobert.annotate import OutputPaths, annotate

FORMATS = {"jsonl": ".jsonl", "pubtator": ".pubtator", "bioc-xml": ".xml", "bioc-json": ".json"}
REJECT_KINDS = {"empty", "too-long", "encoding", "json", "unparsable", "unwritable", "damaged"}
MAX_CHARS = 300
FAST = settings(
    max_examples=6,
    deadline=None,
    # CI runs a fixed sample (a red run must be reproducible); FUZZ_RANDOM=1 explores
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    # no shrinking: a failing example is reported as found (shrinking one
    # through the pipeline takes minutes)
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[
        HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large
    ],
)
LONG = settings(FAST, max_examples=150)

COUNTS: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    if COUNTS:
        line = "fuzz annotate/serve: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items()))
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if capture is not None and reporter is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            sys.stderr.write(line + "\n")


@pytest.fixture(scope="module")
def nlp(tiny_bert):
    """biobert + an entity ruler with kb ids + untrained relations."""
    return tiny_relation_pipeline(tiny_bert)


# --- strategies ------------------------------------------------------------------------

WORDS = ["cocaine", "induced", "seizures", "and", "hypotension", "naloxone", "lithium", "in", "rats", "."]
bio_text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=14).map(" ".join)
odd_chars = st.sampled_from(
    ["\x00", "\x01", "\x0b", "\x1f", "\x7f", "\u0085", "\u2028", "\u2029", "\ufeff", "\u200b", "\r", "\n",
     "\t", "|", "<", "&", "]]>", "\\", '"', "\U0001f600", "é", "\u0301", "ﬁ", "İ"]
)
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
texts = st.one_of(
    bio_text,
    st.lists(st.one_of(st.sampled_from(WORDS), odd_chars), min_size=1, max_size=12).map(" ".join),
    any_text,
    st.sampled_from(["", " ", "\n\t \r", "\u00a0\u3000", "\u2028"]),
    st.integers(MAX_CHARS + 1, MAX_CHARS + 40).map(lambda n: ("cocaine " * n)[:n]),
)
ids = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.integers(-(10**30), 10**30),
    st.sampled_from(["a\nb", "1|t|fake", "x\ty", "", " ", "<id>", "&amp;", "x" * 10_000, "123"]),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
surrogate = st.integers(0xD800, 0xDFFF).map(lambda c: f"\\u{c:04x}")


@st.composite
def jsonl_lines(draw) -> bytes:
    """One line of a JSONL input (no newline): a good record, or a bad one."""
    kind = draw(
        st.sampled_from(
            ["good"] * 5
            + ["surrogate-text", "surrogate-id", "huge-int-id", "nested", "no-text", "not-json", "not-utf8"]
        )
    )
    COUNTS[f"records {kind}"] += 1
    if kind == "good":
        obj = {"text": draw(texts)}
        doc_id = draw(ids)
        if draw(st.booleans()):
            obj["id"] = doc_id
        return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode("utf8")
    if kind == "surrogate-text":
        text = json.dumps(draw(bio_text))
        at = draw(st.integers(1, len(text) - 1))
        text = text[:at] + draw(surrogate) + text[at:]
        return ('{"id": "s", "text": ' + text + "}").encode("ascii", "backslashreplace")
    if kind == "surrogate-id":
        return ('{"id": "a' + draw(surrogate) + '", "text": "cocaine"}').encode("ascii")
    if kind == "huge-int-id":
        digits = draw(st.sampled_from([4300, 4301, 5000]))
        return ('{"id": ' + "7" * digits + ', "text": "cocaine induced seizures"}').encode("ascii")
    if kind == "nested":
        depth = draw(st.sampled_from([10, 5_000, 100_000]))
        return ('{"text": "cocaine", "meta": ' + "[" * depth + "]" * depth + "}").encode("ascii")
    if kind == "no-text":
        return draw(st.sampled_from([b'{"id": "x"}', b'{"text": 5}', b"[1, 2]", b'"text"', b"null", b"{}"]))
    if kind == "not-json":
        raw = draw(st.binary(min_size=1, max_size=30)).replace(b"\n", b" ")
        return raw if raw.strip() else b"?"
    return b'{"text": "caf\xe9 ' + draw(st.binary(max_size=5)).replace(b"\n", b"") + b'"}'


jsonl_inputs = st.lists(jsonl_lines(), min_size=1, max_size=7)


# --- what the input holds ----------------------------------------------------------------


def input_documents(lines):
    """(index, expected id, expected text or None) of every input document,
    as the JSONL reader defines them: blank lines are no documents; the id is
    the record's "id" (a string, or an integer as a string; another value is
    a reject), else the line number."""
    docs = []
    for lineno, raw in enumerate(lines, start=1):
        if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        expected = (str(lineno), None)
        try:
            obj = json.loads(raw.decode("utf8"))
        except (ValueError, RecursionError):
            obj = None
        doc_id = obj.get("id") if isinstance(obj, dict) else None
        # an id is a string or an integer (E114, as convert says): anything else is a reject
        good_id = doc_id is None or isinstance(doc_id, str) or (
            isinstance(doc_id, int) and not isinstance(doc_id, bool)
        )
        if isinstance(obj, dict) and isinstance(obj.get("text"), str) and good_id:
            expected = (str(lineno) if doc_id is None else str(doc_id), obj["text"])
        docs.append((len(docs),) + expected)
    return docs


def read_output(path: Path, fmt: str):
    """(id, text or None) of every document of an output file, in order; the
    file must be valid UTF-8 and valid in its format."""
    data = path.read_bytes().decode("utf8")
    if fmt == "jsonl":
        # split on "\n" only: U+2028, U+0085 ... may stand raw inside a JSON string
        return [(d["id"], d["text"]) for d in map(json.loads, data.split("\n")[:-1])]
    if fmt == "bioc-json":
        return [(d["id"], "".join(p["text"] for p in d["passages"])) for d in json.loads(data)["documents"]]
    if fmt == "bioc-xml":
        from lxml import etree

        root = etree.fromstring(path.read_bytes(), etree.XMLParser(resolve_entities=False, no_network=True))
        return [
            (d.findtext("id"), "".join(p.findtext("text") or "" for p in d.findall("passage")))
            for d in root.findall("document")
        ]
    blocks = [b for b in data.split("\n\n") if b.strip()]
    return [(block.split("|t|", 1)[0], None) for block in blocks]


def rejects_bytes(out: Path) -> bytes:
    """The rejects file of a run: written only when a document was rejected."""
    path = Path(f"{out}.rejects.jsonl")
    return path.read_bytes() if path.exists() else b""


def check_run(lines, out: Path, fmt: str, stats) -> None:
    """Every input document exactly once, in the output or in the rejects."""
    docs = input_documents(lines)
    raw_rejects = rejects_bytes(out).decode("utf8")
    rejects = [json.loads(line) for line in raw_rejects.split("\n")[:-1]]
    rejected = [r["index"] for r in rejects]
    assert len(set(rejected)) == len(rejected), "a document rejected twice"
    assert set(rejected) <= {d[0] for d in docs}
    assert all(r["kind"] in REJECT_KINDS and r["reason"] for r in rejects), rejects
    written = [d for d in docs if d[0] not in set(rejected)]
    got = read_output(out, fmt)
    assert len(got) == len(written) == stats.documents, (got, written)
    assert stats.rejected == len(rejects)
    for (_, doc_id, text), (out_id, out_text) in zip(written, got):
        assert text is not None, "an invalid record was written"
        want_id = (doc_id or "0") if fmt == "pubtator" else doc_id
        assert out_id == want_id
        if out_text is not None:
            assert out_text == text
    # per output format: PubTator rejects what it cannot hold, the others write it
    COUNTS[f"{fmt} documents"] += len(docs)
    COUNTS[f"{fmt} written"] += len(written)
    for r in rejects:
        COUNTS[f"{fmt} rejected {r['kind']}"] += 1


def write_lines(path: Path, lines) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


class Stop(Exception):
    pass


# --- annotate ------------------------------------------------------------------------------


def annotate_property(nlp, tmp_path_factory, lines, fmt, window, stop_after) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    src = write_lines(folder / "in.jsonl", lines)
    COUNTS["annotate cases"] += 1
    outputs = {}
    for name, suffix in FORMATS.items():
        out = folder / f"out{suffix}"
        stats = annotate(nlp, src, out, max_chars=MAX_CHARS, window=window, batch_size=2, threshold=0.0)
        COUNTS["annotate runs"] += 1
        check_run(lines, out, name, stats)
        outputs[name] = (out.read_bytes(), rejects_bytes(out))
    # interrupted after `stop_after` windows, then resumed: the same bytes
    out = folder / f"resumed{FORMATS[fmt]}"
    seen = []

    def stop(stats):
        seen.append(stats.processed)
        if len(seen) == stop_after:
            raise Stop

    options = dict(max_chars=MAX_CHARS, window=window, batch_size=2, threshold=0.0)
    try:
        annotate(nlp, src, out, on_window=stop, **options)
    except Stop:
        annotate(nlp, src, out, resume=True, **options)
        COUNTS["resumes"] += 1
    assert (out.read_bytes(), rejects_bytes(out)) == outputs[fmt]


@FAST
@given(lines=jsonl_inputs, fmt=st.sampled_from(list(FORMATS)), window=st.integers(1, 4),
       stop_after=st.integers(1, 3))
def test_fuzz_annotate(nlp, tmp_path_factory, lines, fmt, window, stop_after):
    annotate_property(nlp, tmp_path_factory, lines, fmt, window, stop_after)


@pytest.mark.slow
@LONG
@given(lines=st.lists(jsonl_lines(), min_size=1, max_size=25), fmt=st.sampled_from(list(FORMATS)),
       window=st.integers(1, 6), stop_after=st.integers(1, 5))
def test_fuzz_annotate_long(nlp, tmp_path_factory, lines, fmt, window, stop_after):
    annotate_property(nlp, tmp_path_factory, lines, fmt, window, stop_after)


def test_fuzz_annotate_fixed_cases(nlp, tmp_path):
    """The issue's reproductions as one input, so they run on every test run."""
    lines = [
        b'{"id":"1","text":"cocaine induced seizures"}',
        b'{"id":"2","text":"A \\ud800 b"}',
        b'{"id": ' + b"7" * 5000 + b', "text": "cocaine"}',
        b'{"text": "x", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"id": "\\udfff", "text": "lithium"}',
        b'{"id": "1\\n2|t|fake", "text": "lithium"}',
        b'{"text": ""}',
        b'{"text": "a\\u0000b\\u2028c"}',
        b"\xff\xfe",
    ]
    src = write_lines(tmp_path / "in.jsonl", lines)
    for name, suffix in FORMATS.items():
        out = tmp_path / f"out{suffix}"
        stats = annotate(nlp, src, out, max_chars=MAX_CHARS, threshold=0.0)
        check_run(lines, out, name, stats)
        assert stats.documents >= 1 and stats.rejected >= 5


# --- SIGKILL and resume ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ruler_model(tmp_path_factory) -> str:
    """A pipeline that loads in a fresh process in a second (no transformer)."""
    model = spacy.blank("en")
    model.add_pipe("entity_ruler").add_patterns(
        [{"label": "Chemical", "pattern": "cocaine", "id": "D003042"},
         {"label": "Disease", "pattern": "seizures", "id": "D012640"}]
    )
    path = tmp_path_factory.mktemp("ruler") / "model"
    model.to_disk(path)
    return str(path)


def _cli(*args):
    return [sys.executable, "-m", "spacy_biobert", "annotate", *map(str, args)]


def kill_and_resume_property(ruler_model, tmp_path_factory, lines, fmt, kill_at) -> None:
    folder = tmp_path_factory.mktemp("kill")
    src = write_lines(folder / "in.jsonl", lines * 40)  # enough windows to be killed in the middle
    suffix = FORMATS[fmt]
    clean = folder / f"clean{suffix}"
    annotate(ruler_model, src, clean, max_chars=MAX_CHARS, window=3)
    out = folder / f"out{suffix}"
    paths = OutputPaths.for_output(out)
    args = [ruler_model, src, out, "--window", "3", "--max-chars", str(MAX_CHARS)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(_cli(*args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads(paths.progress.read_bytes())["done"] >= kill_at:
                break
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        COUNTS["sigkills"] += 1
    proc.wait()
    if not out.exists():
        res = subprocess.run(_cli(*args, "--resume"), env=env, capture_output=True, text=True)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        assert "Traceback" not in res.stderr
    assert out.read_bytes() == clean.read_bytes()
    assert rejects_bytes(out) == rejects_bytes(clean)
    COUNTS["kill/resume cases"] += 1


@settings(FAST, max_examples=1)
@given(lines=st.lists(jsonl_lines(), min_size=2, max_size=5), fmt=st.sampled_from(list(FORMATS)),
       kill_at=st.integers(3, 30))
def test_fuzz_sigkill_and_resume(ruler_model, tmp_path_factory, lines, fmt, kill_at):
    kill_and_resume_property(ruler_model, tmp_path_factory, lines, fmt, kill_at)


@pytest.mark.slow
@settings(FAST, max_examples=10)
@given(lines=st.lists(jsonl_lines(), min_size=2, max_size=8), fmt=st.sampled_from(list(FORMATS)),
       kill_at=st.integers(3, 60))
def test_fuzz_sigkill_and_resume_long(ruler_model, tmp_path_factory, lines, fmt, kill_at):
    kill_and_resume_property(ruler_model, tmp_path_factory, lines, fmt, kill_at)


# --- the service ------------------------------------------------------------------------------

STATUSES = {200, 400, 401, 408, 413, 415, 422}
CONTENT_TYPES = [
    "application/json", "application/json; charset=utf-8", "text/plain", "text/x-pubtator",
    "application/x-pubtator", "application/xml", "", "multipart/form-data; boundary=x",
    "text/plain; charset=latin-1",
]
pubtator_line = st.one_of(
    st.builds(lambda i, t: f"{i}|t|{t}", st.sampled_from(["1", "22", "x", "", "1|t|"]), bio_text),
    st.builds(lambda i, t: f"{i}|a|{t}", st.sampled_from(["1", "22", "x"]), bio_text),
    st.builds(
        lambda i, s, e: f"{i}\t{s}\t{e}\tcocaine\tChemical\tD1",
        st.sampled_from(["1", "x"]), st.integers(-3, 60), st.integers(-3, 60),
    ),
    st.sampled_from(["", "1\tCID\tD1\tD2", "garbage", "1|t|", "1|a|", "\r"]),
    any_text.map(lambda t: t.replace("\n", " ")),
)
bodies = st.one_of(
    jsonl_lines(),
    st.lists(pubtator_line, max_size=8).map(lambda ls: "\n".join(ls).encode("utf8", "surrogatepass")),
    texts.map(lambda t: t.encode("utf8")),
    st.binary(max_size=60),
    st.just(b'{"text": "' + b"a " * 2000 + b'"}'),
)


@pytest.fixture(scope="module")
def client(nlp):
    from fastapi.testclient import TestClient

    from spacy_biobert.serve import create_app

    service = create_app(nlp, max_bytes=300_000, max_docs=3, max_chars=MAX_CHARS)
    # an unhandled error must come back as a 500 (counted), not as an exception
    return TestClient(service, raise_server_exceptions=False)


def serve_property(client, body, content_type, threshold) -> None:
    pytest.importorskip("fastapi")
    headers = {"Content-Type": content_type} if content_type else {}
    url = "/annotate" if threshold is None else f"/annotate?threshold={threshold}"
    res = client.post(url, content=body, headers=headers)
    COUNTS["serve requests"] += 1
    COUNTS[f"HTTP {res.status_code}"] += 1
    assert res.status_code in STATUSES, (res.status_code, res.text[:500])
    answer = res.json()
    if res.status_code == 200:
        assert answer["documents"], answer
        if content_type.startswith(("application/json", "text/plain")):
            assert len(answer["documents"]) == 1
    else:
        assert isinstance(answer["detail"], (str, list)) and answer["detail"]


@FAST
@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES),
       threshold=st.one_of(st.none(), st.sampled_from(["0", "0.5", "1", "2", "-1", "nan", "inf", "x", ""])))
def test_fuzz_serve(client, body, content_type, threshold):
    serve_property(client, body, content_type, threshold)


@pytest.mark.slow
@settings(FAST, max_examples=400)
@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES),
       threshold=st.one_of(st.none(), st.sampled_from(["0", "0.5", "1", "2", "-1", "nan", "inf", "x", ""])))
def test_fuzz_serve_long(client, body, content_type, threshold):
    serve_property(client, body, content_type, threshold)


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "A \\ud800 b"}',
        b'{"text": "cocaine", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"text": "cocaine", "id": ' + b"7" * 5000 + b"}",
        b'{"text": "cocaine", "id": "\\udfff"}',
    ],
    ids=["surrogate", "nested", "5000-digit-id", "surrogate-id"],
)
def test_fuzz_serve_fixed_cases(client, body):
    res = client.post("/annotate", content=body, headers={"Content-Type": "application/json"})
    COUNTS["serve requests"] += 1
    COUNTS[f"HTTP {res.status_code}"] += 1
    assert res.status_code == 422, res.text[:300]
