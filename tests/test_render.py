"""`render(doc)` / `spacy-biobert render`: a self-contained page with entities
(displaCy's entity style, kb ids) and relation arcs, checked in headless
Chromium after layout."""
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import spacy
from spacy.tokens import Span
from tiny_pipelines import save_tiny_relation_pipeline
from typer.testing import CliRunner

from spacy_biobert import render
from spacy_biobert.cli import app
from spacy_biobert.extensions import install_extensions

install_extensions()

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no Chromium binary (looked for $CHROMIUM, " + ", ".join(CHROMIUM_NAMES) + "); "
            "install Debian's package: apt-get install -y chromium (make test does it as root)"
        )
    return path


def layout_dom(chromium, page_path, width=1000):
    """The DOM after load and layout (the page's script has run)."""
    out = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={width},800", "--virtual-time-budget=3000", "--dump-dom",
         page_path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


class Elements(HTMLParser):
    """Every start tag as (tag, attrs dict)."""

    def __init__(self, text):
        super().__init__()
        self.items = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.items.append((tag, dict(attrs)))

    def find(self, tag, **attrs):
        return [a for t, a in self.items if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def check_arcs_join_their_marks(els):
    """Each arc starts on the top edge of its head's box and ends (at the arrow
    tip) on the top edge of its tail's box, as laid out by the browser."""
    boxes = {m["id"]: [float(v) for v in m["data-box"].split(",")] for m in els.find("mark")}
    arcs = els.find("path", **{"class": "arc"})
    for arc in arcs:
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", arc["d"])]
        (x1, y1), (x2, y2) = nums[:2], nums[-2:]
        for (x, y), mark in (((x1, y1), arc["data-from"]), ((x2, y2 + 1), arc["data-to"])):
            left, top, width, height = boxes[mark]
            assert width > 0 and height > 0
            assert left <= x <= left + width and abs(y - top) < 1.5, (arc, boxes[mark])
    return arcs


def annotated_doc(text_repeats=1):
    """Cocaine -> seizures (0.93), naloxone -> hypotension (0.71, and X 0.60),
    naloxone -> seizures (0.2, under the threshold)."""
    nlp = spacy.blank("en")
    words = "cocaine induced seizures and naloxone reversed hypotension .".split() * text_repeats
    doc = spacy.tokens.Doc(nlp.vocab, words=words)
    ents, pairs = [], []
    for r in range(text_repeats):
        o = 8 * r
        c, s, n, h = (
            Span(doc, o, o + 1, "Chemical", kb_id="D003042"),
            Span(doc, o + 2, o + 3, "Disease", kb_id="D012640"),
            Span(doc, o + 4, o + 5, "Chemical", kb_id="D009270"),
            Span(doc, o + 6, o + 7, "Disease"),
        )
        ents += [c, s, n, h]
        key = lambda sp: (sp.start, sp.end, sp.label_, sp.kb_id_)  # noqa: E731
        pairs += [
            (key(c), key(s), {"CID": 0.93}),
            (key(n), key(h), {"CID": 0.71, "X": 0.6}),
            (key(n), key(s), {"CID": 0.2}),
        ]
    if text_repeats > 1:  # one relation from the start to the end of the document
        pairs.append(((0, 1, "Chemical", "D003042"), key(h), {"CID": 0.88}))
    doc.ents = ents
    doc._.relation_pairs = pairs
    doc._.relations = {(h[0], t[0]): s for h, t, s in pairs}
    return doc


def test_page_is_self_contained_with_marks_kb_ids_and_relations():
    page = render(annotated_doc())
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|@import|url\((?!#)""", page)
    els = Elements(page)
    marks = els.find("mark")
    assert [m["data-label"] for m in marks] == ["Chemical", "Disease", "Chemical", "Disease"]
    assert [m["data-kb-id"] for m in marks] == ["D003042", "D012640", "D009270", ""]
    assert "D003042" in page and "CID 0.93" in page and "CID 0.71, X 0.60" in page
    assert "0.20" not in page  # under the threshold
    assert "4 entities, 3 relations" in page
    lower = render(annotated_doc(), threshold=0.1)
    assert "4 entities, 4 relations" in lower and "0.20" in lower
    only = render(annotated_doc(), labels=["X"])
    assert "X 0.60" in only and "CID 0.93" not in only


def test_empty_doc_no_entities_and_several_docs():
    nlp = spacy.blank("en")
    empty = render(nlp(""))
    assert "0 entities, 0 relations" in empty and "No relation" in empty
    plain = render(nlp("No entity here."))
    assert "<mark" not in plain and "No entity here." in plain
    both = render([annotated_doc(), nlp("second")])
    assert both.count('<section class="biobert-doc"') == 2
    assert "No documents" in render([])


def test_text_labels_and_ids_are_escaped():
    nlp = spacy.blank("en")
    doc = nlp("<script>alert(1)</script> & <b>aspirin</b> \"x\"")
    start = doc.text.index("aspirin")
    span = doc.char_span(start, start + len("aspirin"), alignment_mode="expand")
    doc.ents = [Span(doc, span.start, span.end, "<i>Chem</i>", kb_id='"><img src=x onerror=alert(2)>')]
    page = render(doc, kb_url_template="https://example.org/?q={}")
    body = page.split("<body", 1)[1].split("<script>\n", 1)[0]
    assert "<script>alert" not in body and "<img" not in body and "<i>Chem" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in body
    # the kb id is percent-encoded into the URL (issue 18)
    assert 'href="https://example.org/?q=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%282%29%3E"' in body


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"E501.*str"):
        render(["not a doc"])
    with pytest.raises(ValueError, match="E207"):
        render(annotated_doc(), threshold=2)


def test_chromium_draws_entities_and_arcs(chromium, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(render(annotated_doc()), encoding="utf8")
    els = Elements(layout_dom(chromium, page))
    assert els.find("body")[0]["data-arcs-drawn"] == "2"
    arcs = els.find("path", **{"class": "arc"})
    assert {(a["data-from"], a["data-to"], a["data-label"]) for a in arcs} == {
        ("doc0-e0-1", "doc0-e2-3", "CID 0.93"),
        ("doc0-e4-5", "doc0-e6-7", "CID 0.71, X 0.60"),
    }
    assert all(float(a["data-length"]) > 10 for a in arcs)
    check_arcs_join_their_marks(els)
    assert len(els.find("text", **{"class": "arc-label"})) == 2
    assert len(els.find("mark")) == 4


def test_chromium_long_doc_arcs_across_lines(chromium, tmp_path):
    doc = annotated_doc(text_repeats=150)  # 1,200 tokens: many wrapped lines
    page = tmp_path / "long.html"
    page.write_text(render(doc), encoding="utf8")
    els = Elements(layout_dom(chromium, page, width=800))
    arcs = els.find("path", **{"class": "arc"})
    assert els.find("body")[0]["data-arcs-drawn"] == str(2 * 150 + 1) == str(len(arcs))
    longest = [a for a in arcs if a["data-from"] == "doc0-e0-1" and a["data-to"].startswith("doc0-e1198")]
    assert len(longest) == 1
    # From the first line to the last: far longer than any arc within a line.
    assert float(longest[0]["data-length"]) > 1000
    assert all(float(a["data-length"]) > 10 for a in arcs)
    check_arcs_join_their_marks(els)
    tops = {float(m["data-box"].split(",")[1]) for m in els.find("mark")}
    assert len(tops) > 20  # the marks really are on many lines


def test_chromium_escaped_page_runs_no_injected_code(chromium, tmp_path):
    nlp = spacy.blank("en")
    doc = nlp("aspirin <img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"> "
              "</script><script>document.body.setAttribute('data-pwned','2')</script>")
    evil = "</script><script>document.title='pwned'</script><!--"
    doc.ents = [Span(doc, 0, 1, evil), Span(doc, len(doc) - 1, len(doc), "Disease")]
    head, tail = ((e.start, e.end, e.label_, "") for e in doc.ents)
    doc._.relation_pairs = [(head, tail, {evil: 1.0}), (head, head, {"CID": 1.0})]
    page = tmp_path / "escaped.html"
    page.write_text(render(doc), encoding="utf8")
    dom = layout_dom(chromium, page)
    els = Elements(dom)
    body = els.find("body")[0]
    assert "data-pwned" not in body and "<title>pwned" not in dom
    # The relation label reached the script as data; a span related to itself draws no arc.
    assert body["data-arcs-drawn"] == "1"
    assert [a["data-label"] for a in els.find("path", **{"class": "arc"})] == [evil + " 1.00"]


@pytest.fixture(scope="module")
def tiny_model(tiny_bert, tmp_path_factory):
    return save_tiny_relation_pipeline(tiny_bert, tmp_path_factory.mktemp("tiny") / "model")


def test_render_cli(tiny_model, tmp_path):
    text = tmp_path / "in.txt"
    text.write_text(
        "cocaine induced seizures and hypotension in rats given naloxone.\n\nlithium <b>\n",
        encoding="utf8",
    )
    page = tmp_path / "out" / "page.html"
    result = CliRunner().invoke(
        app, ["render", tiny_model, str(text), "--output", str(page), "--threshold", "0"]
    )
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "2 document(s), 5 entities" in output
    assert "skipped document 2: empty text" in output
    html = page.read_text(encoding="utf8")
    marks = Elements(html).find("mark")
    assert [(m["data-label"], m["data-kb-id"]) for m in marks] == [
        ("Chemical", "D003042"), ("Disease", "D012640"), ("Disease", "D007022"),
        ("Chemical", "D009270"), ("Chemical", "D008094"),
    ]
    assert "4 entities, 4 relations" in html and "&lt;b&gt;" in html
    missing = CliRunner().invoke(app, ["render", tiny_model, str(tmp_path / "nope.txt"), "-o", str(page)])
    assert missing.exit_code != 0


@pytest.mark.parametrize(
    "template",
    [
        "javascript:alert(document.domain)//{}",
        "JavaScript:alert(1)//{}",
        "java\tscript:alert(1)//{}",
        " javascript:alert(1)//{}",
        "data:text/html,<script>alert(1)</script>{}",
        "vbscript:msgbox({})",
        "file:///etc/passwd?{}",
        "https://x.org/{id}",
        "https://x.org/{}{",
    ],
)
def test_kb_url_template_must_be_an_http_or_relative_link(template):
    with pytest.raises(ValueError, match="E507"):
        render(annotated_doc(), kb_url_template=template)


@pytest.mark.parametrize(
    "template",
    ["https://meshb.nlm.nih.gov/record/ui?ui={}", "HTTP://x.org/{}", "/kb/{}", "kb?id={}", "//x.org/{}"],
)
def test_http_and_relative_kb_url_templates_are_taken(template):
    assert "biobert" in render(annotated_doc(), kb_url_template=template)


def test_render_cli_refuses_a_javascript_kb_url(tiny_model, tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("cocaine\n", encoding="utf8")
    page = tmp_path / "page.html"
    result = CliRunner().invoke(
        app, ["render", tiny_model, str(text), "-o", str(page), "--kb-url", "javascript:alert(1)//{}"]
    )
    assert result.exit_code == 1 and "E507" in result.output and "--kb-url" in result.output
    assert not page.exists()
