"""The service under hostile clients: 422 (not 500) for hostile bodies, timeouts for
clients that stall, an optional token and allowed-hosts list, /docs off by
default, and a vocab that does not grow with every request."""

import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import spacy
from live_server import running
from tiny_pipelines import tiny_relation_pipeline
from typer.testing import CliRunner

pytest.importorskip("fastapi", reason="needs the serve extra: pip install -e '.[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="needs the serve extra: pip install -e '.[serve]'")
from fastapi.testclient import TestClient  # noqa: E402

from spacy_biobert.cli import app as cli_app  # noqa: E402
from spacy_biobert.serve import Annotator, create_app, server_config  # noqa: E402

TOKEN = "s3cret-Token_0123456789abcdef"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def nlp(tiny_bert):
    return tiny_relation_pipeline(tiny_bert)


@pytest.fixture(scope="module")
def client(nlp):
    # raise_server_exceptions: an unhandled error (a 500) fails the test loudly
    return TestClient(create_app(nlp))


def post(client, body, content_type="application/json", **kwargs):
    data = body.encode("utf8") if isinstance(body, str) else body
    return client.post("/annotate", content=data, headers={"Content-Type": content_type}, **kwargs)


# --- 422, not 500 ---------------------------------------------------------------


def test_lone_surrogate_is_422(client):
    res = post(client, '{"text": "A \\ud800 b"}')
    assert res.status_code == 422 and "lone surrogate U+D800" in res.json()["detail"]
    res = post(client, '{"text": "cocaine", "id": "x\\udc00"}')
    assert res.status_code == 422 and "the id holds a lone surrogate" in res.json()["detail"]
    assert "\\\\udc00" in json.dumps(res.json())  # the detail itself is valid UTF-8


def test_deep_json_is_422(client):
    body = '{"text": "cocaine", "meta": ' + "[" * 100_000 + "]" * 100_000 + "}"
    res = post(client, body)
    assert res.status_code == 422 and "nested too deeply" in res.json()["detail"]


def test_digit_id_is_422(client):
    res = post(client, '{"text": "cocaine", "id": ' + "7" * 5000 + "}")
    assert res.status_code == 422 and "not usable JSON" in res.json()["detail"]
    res = post(client, '{"text": "cocaine", "id": true}')
    assert res.status_code == 422 and '"id" must be a string or an integer' in res.json()["detail"]


# --- an empty PubTator body -------------------------------------------------------


@pytest.mark.parametrize("body", ["", "\n\n", "  \r\n"])
def test_empty_pubtator_body_is_a_clear_422(client, body):
    res = post(client, body, "text/x-pubtator")
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert detail.startswith("the PubTator body is empty. Fix:") and "line  [" not in detail


# --- token, allowed hosts, docs -----------------------------------------------------


def test_token_is_required_when_set(nlp):
    client = TestClient(create_app(nlp, token=TOKEN))
    assert client.get("/health").status_code == 401
    res = post(client, '{"text": "cocaine"}')
    assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in res.json()["detail"]
    for bad in ("Bearer " + TOKEN[:-1], "Bearer " + TOKEN + "x", "Basic " + TOKEN, TOKEN):
        assert client.get("/health", headers={"Authorization": bad}).status_code == 401
    good = {"Authorization": "Bearer " + TOKEN}
    assert client.get("/health", headers=good).status_code == 200
    res = client.post("/annotate", content=b'{"text": "cocaine"}', headers=dict(JSON, **good))
    assert res.status_code == 200 and res.json()["documents"][0]["mentions"][0]["text"] == "cocaine"


def test_token_is_compared_in_constant_time(nlp, monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    client = TestClient(create_app(nlp, token=TOKEN))
    assert client.get("/health", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert calls == [(b"nope", TOKEN.encode())]


@pytest.mark.parametrize("token", ["", "short", "has a space 0123456789", "ünïcode-0123456789abc"])
def test_weak_or_unsendable_tokens_are_refused(nlp, token):
    with pytest.raises(ValueError, match="E506.*token"):
        create_app(nlp, token=token)


def test_allowed_hosts(nlp):
    client = TestClient(create_app(nlp, allowed_hosts=["testserver", "*.example.org"]))
    assert client.get("/health").status_code == 200
    assert client.get("/health", headers={"Host": "api.example.org"}).status_code == 200
    assert client.get("/health", headers={"Host": "evil.example.com"}).status_code == 400


def test_docs_are_off_unless_asked_for(nlp, client):
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404
    with_docs = TestClient(create_app(nlp, docs=True))
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert with_docs.get(path).status_code == 200


def test_cli_token_from_the_environment(tmp_path):
    bad = CliRunner().invoke(cli_app, ["serve", str(tmp_path)], env={"SPACY_BIOBERT_TOKEN": "short"})
    assert bad.exit_code == 1 and "E506" in bad.output
    shown = CliRunner().invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"})
    help_text = " ".join(shown.output.split())
    for option in ("--token", "SPACY_BIOBERT_TOKEN", "--allowed-hosts", "--docs", "--header-timeout"):
        assert option in help_text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_with_a_token(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "Chemical", "pattern": "cocaine"}])
    nlp.to_disk(tmp_path / "model")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spacy_biobert", "serve", str(tmp_path / "model"), "--port", str(port),
         "--allowed-hosts", "127.0.0.1", "--allowed-hosts", "localhost"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, SPACY_BIOBERT_TOKEN=TOKEN),
    )
    url = f"http://127.0.0.1:{port}/health"
    try:
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            assert time.time() < deadline, "the server did not answer /health"
            try:
                urllib.request.urlopen(url, timeout=10)
            except urllib.error.HTTPError as err:
                assert err.code == 401
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(30)


# --- the vocab does not grow per request -------------------------------------------------


def _unseen_text(rng: random.Random, n_words: int = 40) -> str:
    words = ["".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(9)) for _ in range(n_words)]
    return "cocaine induced seizures " + " ".join(words)


def test_string_store_does_not_grow_per_request(nlp):
    annotator = Annotator(nlp)
    rng = random.Random(0)

    def request(text):
        return annotator.annotate(annotator.records(json.dumps({"text": text}).encode(), "application/json"))

    request(_unseen_text(rng))
    strings, lexemes = len(nlp.vocab.strings), sum(1 for _ in nlp.vocab)
    texts = [_unseen_text(rng) for _ in range(30)]
    for text in texts:
        answer = request(text)
        assert [m["text"] for m in answer["documents"][0]["mentions"]][:2] == ["cocaine", "seizures"]
    # 30 requests x 40 unseen words: none of them stays in the vocab
    # (len(nlp.vocab) is a counter spaCy never decrements: count the lexemes)
    assert (len(nlp.vocab.strings), sum(1 for _ in nlp.vocab)) == (strings, lexemes)
    unseen = texts[-1].split()[-1]
    assert unseen not in nlp.vocab.strings and unseen not in nlp.vocab


# --- timeouts, on a real server ------------------------------------------------------------


@pytest.fixture(scope="module")
def strict_server(nlp):
    """The service with 1-second header and body timeouts (and keep-alive)."""
    service = create_app(nlp, body_timeout=1.0)
    port = free_port()
    config = server_config(service, port=port, header_timeout=1.0, keep_alive=1, log_level="warning")
    with running(config):
        yield port


def _closed_by_server(sock: socket.socket, dribble: bytes = b"", limit: float = 20.0) -> bytes:
    """Send `dribble` one byte every 0.2 s (if any) until the server closes
    the connection; what it sent back. Fails after `limit` seconds."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + limit
    i = 0
    while time.monotonic() < deadline:
        if i < len(dribble):
            try:
                sock.send(dribble[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return received
            i += 1
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    pytest.fail(f"the server kept the connection open for {limit} s")


def test_a_silent_connection_is_closed(strict_server):
    with socket.create_connection(("127.0.0.1", strict_server)) as sock:
        assert _closed_by_server(sock) == b""


def test_a_client_dribbling_headers_is_disconnected(strict_server):
    head = b"POST /annotate HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 500 + b"\r\n"
    with socket.create_connection(("127.0.0.1", strict_server)) as sock:
        assert _closed_by_server(sock, dribble=head) == b""


def test_a_stalled_body_is_408(strict_server):
    head = (
        b"POST /annotate HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 100\r\n\r\ncocaine"
    )
    with socket.create_connection(("127.0.0.1", strict_server)) as sock:
        sock.sendall(head)
        answer = _closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer.lower()
    assert b"did not arrive within 1 seconds" in answer


def test_requests_still_work_under_the_timeouts(strict_server):
    req = urllib.request.Request(
        f"http://127.0.0.1:{strict_server}/annotate", data=b'{"text": "cocaine"}', headers=JSON
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 200
    with socket.create_connection(("127.0.0.1", strict_server)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _closed_by_server(sock)  # answered, then closed after the 1 s keep-alive
    assert answer.startswith(b"HTTP/1.1 200 ")
