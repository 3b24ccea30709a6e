"""`spacy-biobert serve`: the real uvicorn server on 127.0.0.1 (a free port),
real HTTP requests; a tiny NER + relations pipeline from the tiny random BERT."""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from live_server import running
from tiny_pipelines import save_tiny_relation_pipeline, tiny_relation_pipeline

pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")

from spacy_biobert.serve import Annotator, create_app  # noqa: E402

TEXT = "cocaine induced seizures and hypotension in rats given naloxone."
PUBTATOR = (
    "101|t|Lithium and seizures.\n101|a|Naloxone reversed the hypotension.\n"
    "101\t0\t7\tLithium\tChemical\tD008094\n\n"
    "102|t|Cocaine toxicity.\n102|a|No disease here.\n\n"
)
LIMITS = {"max_bytes": 3000, "max_docs": 3, "max_chars": 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_bert):
    """The service on a uvicorn server in a thread; its base URL."""
    app = create_app(tiny_relation_pipeline(tiny_bert), **LIMITS)
    port = free_port()
    with running(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")):
        yield f"http://127.0.0.1:{port}"


def request(url, body=None, content_type=None, method=None):
    """(status, parsed JSON body) of one HTTP request."""
    data = body.encode("utf8") if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_health(server):
    status, body = request(server + "/health")
    assert status == 200
    assert body["status"] == "ok"
    assert body["pipeline"] == ["biobert", "entity_ruler", "test_kb_ids_from_ruler", "biobert_relations"]
    assert body["limits"] == LIMITS


def test_annotate_json_text(server):
    status, body = request(
        server + "/annotate?threshold=0", json.dumps({"text": TEXT, "id": "q1"}), "application/json"
    )
    assert status == 200, body
    assert body["threshold"] == 0
    (doc,) = body["documents"]
    assert doc["id"] == "q1" and doc["text"] == TEXT
    mentions = sorted((m["start"], m["end"], m["text"], m["type"], m["kb_id"]) for m in doc["mentions"])
    assert mentions == [
        (0, 7, "cocaine", "Chemical", "D003042"),
        (16, 24, "seizures", "Disease", "D012640"),
        (29, 40, "hypotension", "Disease", "D007022"),
        (55, 63, "naloxone", "Chemical", "D009270"),
    ]
    # CID is document level: one relation per (chemical id, disease id), as scored.
    rels = {(r["level"], r["head"], r["tail"], r["label"]) for r in doc["predicted_relations"]}
    assert rels == {
        ("concept", c, d, "CID") for c in ("D003042", "D009270") for d in ("D012640", "D007022")
    }
    assert all(0.0 <= r["score"] <= 1.0 for r in doc["predicted_relations"])
    # The same document through the JSONL writer of `annotate`: same schema.
    status, strict = request(server + "/annotate?threshold=1", json.dumps({"text": TEXT}), "application/json")
    assert status == 200 and strict["documents"][0].get("predicted_relations", []) == []
    assert strict["documents"][0]["mentions"] == doc["mentions"]


def test_annotate_pubtator_and_plain_text(server):
    status, body = request(server + "/annotate", PUBTATOR, "text/x-pubtator; charset=utf-8")
    assert status == 200, body
    docs = body["documents"]
    assert [d["id"] for d in docs] == ["101", "102"]
    assert [p["type"] for p in docs[0]["passages"]] == ["title", "abstract"]
    first = [(m["text"], m["kb_id"]) for m in docs[0]["mentions"]]
    assert ("naloxone", "D009270") not in first  # case-sensitive ruler: "Naloxone" is not matched
    assert ("seizures", "D012640") in first and ("hypotension", "D007022") in first
    status, body = request(server + "/annotate", "lithium and seizures", "text/plain")
    assert status == 200
    assert sorted(m["text"] for m in body["documents"][0]["mentions"]) == ["lithium", "seizures"]


@pytest.mark.parametrize(
    "body,content_type,status,match",
    [
        ('{"text": "x"}', "application/xml", 415, "unsupported Content-Type 'application/xml'"),
        ('{"text": "x"}', None, 415, "Fix: send application/json"),
        ("x" * 3001, "text/plain", 413, "over the limit of 3000"),
        ("101|t|a\n101|a|b\n\n" * 4, "text/x-pubtator", 413, "4 documents, over the limit of 3"),
        ('{"text": ', "application/json", 422, "not valid JSON"),
        ('["x"]', "application/json", 422, 'object with a "text" string'),
        ('{"txt": "x"}', "application/json", 422, 'object with a "text" string'),
        ('{"text": "  "}', "application/json", 422, "empty text"),
        (json.dumps({"text": "a " * 600}), "application/json", 422, "1200 characters, over the limit"),
        ("101|t|title only\n", "text/x-pubtator", 422, "no '|a|' abstract line"),
        ("101|t|t\ngarbage\n", "text/x-pubtator", 422, "line 2: [E101] malformed line: document 101"),
        ("hello\n", "text/x-pubtator", 422, "expected a 'PMID|t|TITLE' line"),
        (b"\xff\xfe bad", "text/plain", 422, "not valid UTF-8"),
    ],
)
def test_bad_requests_are_clear_4xx(server, body, content_type, status, match):
    got, answer = request(server + "/annotate", body, content_type, method="POST")
    assert got == status, answer
    assert match in answer["detail"]


def test_threshold_out_of_range(server):
    status, body = request(server + "/annotate?threshold=2", '{"text": "x"}', "application/json")
    assert status == 422 and "E207" in body["detail"]
    status, body = request(server + "/annotate?threshold=high", '{"text": "x"}', "application/json")
    assert status == 422


def test_chunked_body_over_the_limit_is_refused_while_streaming(server):
    host, port = server.rsplit("/", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    chunks = (b"y" * 1000 for _ in range(10))  # no Content-Length
    conn.request("POST", "/annotate", body=chunks, headers={"Content-Type": "text/plain"},
                 encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 413
    assert "over the limit of 3000" in json.loads(resp.read())["detail"]
    conn.close()


def test_concurrent_requests(server):
    results = []

    def one(i):
        results.append(request(server + "/annotate", json.dumps({"text": TEXT, "id": i}), "application/json"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(r[0] for r in results) == [200] * 6
    assert len({json.dumps(r[1]["documents"][0]["mentions"]) for r in results}) == 1


def test_limits_are_validated(tiny_bert):
    with pytest.raises(ValueError, match=r"E504.*max_docs"):
        Annotator(object(), max_docs=0)
    with pytest.raises(ValueError, match="E207"):
        Annotator(object(), threshold=-1)


def test_cli_serves_a_saved_pipeline(tiny_bert, tmp_path):
    model = save_tiny_relation_pipeline(tiny_bert, tmp_path / "model", kb_ids=False)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spacy_biobert", "serve", model, "--port", str(port), "--max-docs", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, HF_HUB_OFFLINE="1"),
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.time() < deadline, "the server did not answer /health"
            try:
                status, health = request(url + "/health")
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert status == 200 and health["limits"]["max_docs"] == 5
        status, body = request(url + "/annotate?threshold=0", json.dumps({"text": TEXT}), "application/json")
        assert status == 200
        types = sorted(m["type"] for m in body["documents"][0]["mentions"])
        assert types == ["Chemical", "Chemical", "Disease", "Disease"]
        # CID is document level, by linked ids: this pipeline has no linker
        # (its entities carry no kb ids), so it writes no relations.
        assert body["documents"][0].get("predicted_relations", []) == []
    finally:
        proc.terminate()
        proc.wait(30)


def test_cli_refuses_bad_limits_and_missing_models(tmp_path):
    from typer.testing import CliRunner

    from spacy_biobert.cli import app

    bad = CliRunner().invoke(app, ["serve", str(tmp_path), "--max-docs", "0"])
    assert bad.exit_code == 1 and "--max-docs must be an integer >= 1 or 'none'" in bad.output
    missing = CliRunner().invoke(app, ["serve", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "nope" in " ".join(missing.output.split())


# --- the request-head limit and clients that go away ---------------------------------------


@pytest.fixture(scope="module")
def configured_server():
    """The service as `spacy-biobert serve` runs it (server_config: 16 KiB head
    limit), on a blank pipeline; its port."""
    import spacy

    from spacy_biobert.serve import server_config

    port = free_port()
    config = server_config(create_app(spacy.blank("en")), port=port, log_level="warning")
    with running(config):
        yield port


def _answer(port: int, data: bytes, chunk: int = 0) -> bytes:
    """What the server answers to `data` (sent at once, or `chunk` bytes at a
    time), read until it closes the connection or 10 s pass."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(10)
        try:
            if chunk:
                for i in range(0, len(data), chunk):
                    sock.sendall(data[i : i + chunk])
            else:
                sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = b""
        try:
            while True:
                part = sock.recv(65536)
                if not part:
                    break
                received += part
                if b"\r\n\r\n" in received and b"connection: close" not in received.lower():
                    break
        except (socket.timeout, ConnectionResetError):
            pass
    return received


def _head(size: int) -> bytes:
    start = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: "
    end = b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


@pytest.mark.parametrize("size", [17_000, 50_000, 100_000])
@pytest.mark.parametrize("chunk", [0, 4096])
def test_a_request_head_over_16_kib_is_431_whatever_the_read_size(configured_server, size, chunk):
    answer = _answer(configured_server, _head(size), chunk)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"over the limit of 16384" in answer


def test_a_request_head_under_16_kib_is_served(configured_server):
    answer = _answer(configured_server, _head(16_000).replace(b"HTTP/1.1", b"HTTP/1.0"))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


def test_a_client_leaving_mid_body_is_one_log_line(configured_server, caplog):
    import logging

    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(caplog.handler)  # uvicorn's loggers do not propagate
    try:
        with caplog.at_level(logging.INFO):
            with socket.create_connection(("127.0.0.1", configured_server)) as sock:
                sock.sendall(
                    b"POST /annotate HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 100000\r\n\r\ncocaine"
                )
                time.sleep(0.3)
            deadline = time.time() + 10
            while "disconnected" not in caplog.text and time.time() < deadline:
                time.sleep(0.05)
    finally:
        uvicorn_errors.removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == 1 and "before its request body arrived (7 of 100000 bytes)" in lines[0]
    assert "Exception in ASGI application" not in caplog.text
    assert "ClientDisconnect" not in caplog.text
