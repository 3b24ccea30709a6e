"""`render(doc)`: one self-contained HTML page with a document's entities in
displaCy's entity style and its relations as labelled arcs between them.

Entities are the `<mark class="entity">` boxes of displaCy's "ent" style
(`spacy.displacy.templates.TPL_ENT`): the label, and the `kb_id_` where the
entity is linked. Relations are those of `doc_relations(doc, threshold)`:
mention-level ones per mention pair, document-level ones (CID) once per
(head id, tail id) with the probability the writers write, drawn between their
strongest mention pair. Each is an arc from the head to the tail entity,
labelled "LABEL 0.93", drawn by a small script in the page
over the flowing text, so a long abstract wraps like prose instead of becoming
one very wide line (as displaCy's "dep" style would). Every relation is also
listed in a table under the text, which is what a page without scripts shows.

The page loads nothing from elsewhere (inline styles, inline script, no fonts
or libraries), escapes every text, and after layout records what it drew in
`data-*` attributes (`data-arcs-drawn` on `<body>`, `data-length` and
`data-from`/`data-to` on each arc, `data-box` on each entity), which is what
the tests read back from headless Chromium.
"""

import html
import json
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union
from urllib.parse import quote

from spacy.tokens import Doc, Span

from .errors import Errors

# displaCy has no colours for biomedical labels; unknown labels get its grey.
DEFAULT_COLORS = {
    "Chemical": "#7aecec",
    "CHEMICAL": "#7aecec",
    "Disease": "#feca74",
    "DISEASE": "#feca74",
    "Gene": "#bfe1d9",
    "GENE": "#bfe1d9",
    "GENE-Y": "#bfe1d9",
    "GENE-N": "#c7e5f9",
    "Species": "#e4e7d2",
    "Mutation": "#ff9561",
}
DEFAULT_COLOR = "#ddd"

_TPL_PAGE = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-size: 16px; font-family: -apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica,
  Arial, sans-serif; padding: 2rem; color: #222; max-width: 72rem; margin: auto; }}
.biobert-doc {{ position: relative; margin-bottom: 3rem; }}
.biobert-doc h2 {{ font-size: 1rem; color: #666; font-weight: normal; }}
.biobert-text {{ line-height: 2.5; white-space: pre-wrap; }}
.biobert-text.has-arcs {{ line-height: 5.5; padding-top: 3.5rem; }}
.biobert-text mark.entity {{ white-space: nowrap; }}
.biobert-arcs {{ position: absolute; left: 0; top: 0; overflow: visible; pointer-events: none; }}
.biobert-arcs path.arc {{ fill: none; stroke: #555; stroke-width: 1.6px; }}
.biobert-arcs text {{ font-size: 11px; font-weight: bold; fill: #333; paint-order: stroke;
  stroke: #fff; stroke-width: 3px; }}
table.biobert-relations {{ border-collapse: collapse; margin-top: 1rem; font-size: 0.9rem; }}
table.biobert-relations td, table.biobert-relations th {{ border-bottom: 1px solid #ddd;
  padding: 0.2rem 0.6rem; text-align: left; }}
p.biobert-none {{ color: #777; font-style: italic; }}
</style>
</head>
<body data-arcs-drawn="-1">
{content}
<script>
{script}
</script>
</body>
</html>
"""

_TPL_MARK = (
    '<mark class="entity" id="{mid}" data-label="{label}" data-kb-id="{kb_id}" '
    'style="background: {bg}; padding: 0.45em 0.6em; margin: 0 0.25em; line-height: 1; '
    'border-radius: 0.35em;">{text}<span style="font-size: 0.8em; font-weight: bold; '
    'line-height: 1; border-radius: 0.35em; vertical-align: middle; margin-left: 0.5rem">'
    "{label}{kb_link}</span></mark>"
)
_TPL_KB = (
    ' <a style="text-decoration: none; color: inherit; font-weight: normal" href="{url}">{kb_id}</a>'
)

# Draws the arcs after layout (and again on resize). For each relation of a
# document: a cubic curve from the top of the head mark to the top of the tail
# mark, rising above the higher of the two by a level that grows with the
# number of arcs it spans, an arrow head at the tail, and its label at the top.
_SCRIPT = r"""
(function () {
  var NS = "http://www.w3.org/2000/svg";
  function draw() {
    var total = 0;
    document.querySelectorAll(".biobert-doc").forEach(function (box) {
      var svg = box.querySelector("svg.biobert-arcs");
      var rels = JSON.parse(box.querySelector("script.biobert-data").textContent);
      while (svg.firstChild) { svg.removeChild(svg.firstChild); }
      var origin = box.getBoundingClientRect();
      svg.setAttribute("width", box.scrollWidth);
      svg.setAttribute("height", box.scrollHeight);
      var defs = document.createElementNS(NS, "defs");
      var marker = document.createElementNS(NS, "marker");
      var mid = box.id + "-arrow";
      marker.setAttribute("id", mid);
      marker.setAttribute("viewBox", "0 0 10 10");
      marker.setAttribute("refX", "9"); marker.setAttribute("refY", "5");
      marker.setAttribute("markerWidth", "7"); marker.setAttribute("markerHeight", "7");
      marker.setAttribute("orient", "auto-start-reverse");
      var tip = document.createElementNS(NS, "path");
      tip.setAttribute("d", "M 0 0 L 10 5 L 0 10 z"); tip.setAttribute("fill", "#555");
      marker.appendChild(tip); defs.appendChild(marker); svg.appendChild(defs);
      box.querySelectorAll("mark.entity").forEach(function (m) {
        var r = m.getClientRects()[0];
        if (r) {
          m.setAttribute("data-box", [r.left - origin.left, r.top - origin.top, r.width, r.height]
                         .map(function (v) { return v.toFixed(1); }).join(","));
        }
      });
      var levels = {}, ends = {}, used = {};
      rels.forEach(function (r) {
        ends[r.head] = (ends[r.head] || 0) + 1; ends[r.tail] = (ends[r.tail] || 0) + 1;
      });
      function anchor(el, rect) {
        // Spread the arcs meeting at one mark over its width.
        var n = ends[el.id], k = used[el.id] = (used[el.id] || 0) + 1;
        return rect.left + rect.width * k / (n + 1) - origin.left;
      }
      rels.sort(function (a, b) { return Math.abs(a.h - a.t) - Math.abs(b.h - b.t); });
      rels.forEach(function (r, i) {
        var head = document.getElementById(r.head), tail = document.getElementById(r.tail);
        if (!head || !tail) { return; }
        // The first box of each mark (a mark is one box unless the page is narrower than it).
        var a = head.getClientRects()[0], b = tail.getClientRects()[0];
        if (!a || !b) { return; }
        if (a.width <= 0 || b.width <= 0) { return; }
        var x1 = anchor(head, a), y1 = a.top - origin.top;
        var x2 = anchor(tail, b), y2 = b.top - origin.top;
        var key = Math.round(Math.min(y1, y2));
        var level = levels[key] = (levels[key] || 0) + 1;
        var top = Math.min(y1, y2) - 12 - 14 * Math.min(level, 5);
        var path = document.createElementNS(NS, "path");
        path.setAttribute("class", "arc");
        path.setAttribute("d", "M " + x1 + " " + y1 + " C " + x1 + " " + top + ", " +
                          x2 + " " + top + ", " + x2 + " " + (y2 - 1));
        path.setAttribute("marker-end", "url(#" + mid + ")");
        path.setAttribute("data-from", r.head); path.setAttribute("data-to", r.tail);
        path.setAttribute("data-label", r.label);
        svg.appendChild(path);
        path.setAttribute("data-length", path.getTotalLength().toFixed(1));
        var text = document.createElementNS(NS, "text");
        text.setAttribute("x", (x1 + x2) / 2);
        text.setAttribute("y", top + 0.25 * (Math.min(y1, y2) - top) - 2);
        text.setAttribute("text-anchor", "middle");
        text.setAttribute("class", "arc-label");
        text.textContent = r.label;
        svg.appendChild(text);
        total += 1;
      });
    });
    document.body.setAttribute("data-arcs-drawn", String(total));
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else { draw(); }
  window.addEventListener("resize", draw);
})();
"""


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_NOT_IN_URL = re.compile(r"[\x00-\x20\x7f]")


def check_kb_url_template(template: Optional[str]) -> Optional[str]:
    """`template` when it is None or a link template `render` may use: an
    http:// or https:// URL, or a relative one, with a `{}` for the id, and
    no whitespace or control character (which browsers drop from a scheme:
    "java\tscript:"); else E507. A `javascript:`, `data:` or other scheme
    would make a page whose links run code."""
    if template is None:
        return None

    def refuse(why: str) -> ValueError:
        return ValueError(Errors.E507.format(value=template, why=why))

    if not isinstance(template, str):
        raise refuse(f"a {type(template).__name__}, not a string")
    try:
        url = template.format("ID")
    except (IndexError, KeyError, ValueError) as err:
        raise refuse(f"not a template with one {{}} for the id: {err!r}") from None
    bad = _NOT_IN_URL.search(template)
    if bad is not None:
        raise refuse(f"it holds the character U+{ord(bad.group()):04X}")
    scheme = _SCHEME.match(url)
    if scheme is not None and scheme.group(1).lower() not in ("http", "https"):
        raise refuse(f"the scheme {scheme.group(1)!r} is not http or https")
    return template


def render(
    docs: Union[Doc, Iterable[Doc]],
    *,
    threshold: float = 0.5,
    labels: Optional[Iterable[str]] = None,
    colors: Optional[Dict[str, str]] = None,
    kb_url_template: Optional[str] = None,
    title: str = "spacy-biobert",
) -> str:
    """A self-contained HTML page (a str) showing the entities and relations
    of one Doc or of several (one section each, titled with `doc._.doc_id`).

    threshold: a relation is drawn for each label with probability >= threshold.
    labels: only these relation labels (default: all).
    colors: entity label -> CSS colour, on top of DEFAULT_COLORS.
    kb_url_template: e.g. "https://meshb.nlm.nih.gov/record/ui?ui={}": each kb id
        links there, percent-encoded (default: the id is shown, unlinked); an
        http(s) or relative URL only (E507, `check_kb_url_template`).
    """
    from .extensions import install_extensions
    from .pipeline.relations import check_threshold

    install_extensions()
    check_threshold(threshold)
    check_kb_url_template(kb_url_template)
    if isinstance(docs, Doc):
        docs = [docs]
    palette = dict(DEFAULT_COLORS, **(colors or {}))
    keep = set(labels) if labels is not None else None
    sections = []
    lang = "en"
    for i, doc in enumerate(docs):
        if not isinstance(doc, Doc):
            raise TypeError(Errors.E501.format(type=type(doc).__name__))
        lang = doc.lang_ or lang
        sections.append(_render_doc(doc, i, threshold, keep, palette, kb_url_template))
    content = "\n".join(sections) or '<p class="biobert-none">No documents.</p>'
    return _TPL_PAGE.format(
        lang=html.escape(lang), title=html.escape(title), content=content, script=_SCRIPT
    )


def doc_relations(
    doc: Doc, threshold: float = 0.5, labels: Optional[Iterable[str]] = None
) -> List[Tuple[Span, Span, List[Tuple[str, float]]]]:
    """The confident relations of a doc (`relation_triples`: document-level
    labels once per pair of ids, on their strongest mention pair) grouped by
    (head, tail) span, in document order: (head, tail, [(label,
    probability), ...] best first)."""
    from .pipeline.relations import relation_triples

    grouped: Dict[Tuple[int, int, int, int], List[Any]] = {}
    for head, tail, label, p in relation_triples(doc, threshold, labels):
        key = (head.start, head.end, tail.start, tail.end)
        grouped.setdefault(key, [head, tail, []])[2].append((label, float(p)))
    out = []
    for key in sorted(grouped):
        head, tail, scores = grouped[key]
        out.append((head, tail, sorted(scores, key=lambda x: (-x[1], x[0]))))
    return out


def _render_doc(
    doc: Doc,
    index: int,
    threshold: float,
    keep: Optional[set],
    palette: Dict[str, str],
    kb_url_template: Optional[str],
) -> str:
    from spacy.util import filter_spans

    esc = html.escape
    box_id = f"doc{index}"
    relations = doc_relations(doc, threshold, keep)
    spans = filter_spans(list(doc.ents) + [s for h, t, _ in relations for s in (h, t)])
    mark_id = {(s.start, s.end): f"{box_id}-e{s.start}-{s.end}" for s in spans}
    parts: List[str] = []
    pos = 0
    text = doc.text
    for span in sorted(spans, key=lambda s: s.start_char):
        parts.append(esc(text[pos : span.start_char]))
        kb_id = span.kb_id_ or ""
        kb_link = ""
        if kb_id:
            # The id percent-encoded: "D001|D002" or "a b&c" cannot change the URL.
            url = kb_url_template.format(quote(kb_id, safe="")) if kb_url_template else "#"
            kb_link = _TPL_KB.format(url=esc(url), kb_id=esc(kb_id))
        parts.append(
            _TPL_MARK.format(
                mid=mark_id[(span.start, span.end)],
                label=esc(span.label_),
                kb_id=esc(kb_id),
                bg=esc(palette.get(span.label_, DEFAULT_COLOR)),
                text=esc(span.text),
                kb_link=kb_link,
            )
        )
        pos = span.end_char
    parts.append(esc(text[pos:]))
    arcs = []
    rows = []
    shown = {(s.start, s.end): s for s in spans}
    for head, tail, scores in relations:
        # The entity as shown (a linker after the relations sets kb ids on
        # doc.ents); a document-level relation keeps its own pair of ids.
        h_shown = shown.get((head.start, head.end), head)
        t_shown = shown.get((tail.start, tail.end), tail)
        h_id, t_id = head.kb_id_ or h_shown.kb_id_, tail.kb_id_ or t_shown.kb_id_
        head, tail = h_shown, t_shown
        label = ", ".join(f"{lab} {p:.2f}" for lab, p in scores)
        h, t = mark_id.get((head.start, head.end)), mark_id.get((tail.start, tail.end))
        if h is not None and t is not None and h != t:
            arcs.append({"head": h, "tail": t, "h": head.start, "t": tail.start, "label": label})
        for lab, p in scores:
            rows.append(
                f"<tr><td>{esc(head.text)}</td><td>{esc(h_id or '')}</td>"
                f"<td>{esc(lab)}</td><td>{esc(tail.text)}</td><td>{esc(t_id or '')}</td>"
                f"<td>{p:.2f}</td></tr>"
            )
    doc_id = doc._.doc_id if doc.has_extension("doc_id") else None
    heading = f"Document {esc(str(doc_id))}" if doc_id else f"Document {index + 1}"
    n_ents = len(spans)
    heading += f" &middot; {n_ents} entit{'y' if n_ents == 1 else 'ies'}, {len(rows)} relation"
    heading += "" if len(rows) == 1 else "s"
    if rows:
        table = (
            '<table class="biobert-relations"><thead><tr><th>head</th><th>id</th><th>relation</th>'
            "<th>tail</th><th>id</th><th>p</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
    else:
        table = f'<p class="biobert-none">No relation with p &ge; {threshold:g}.</p>'
    # JSON inside <script>: no "<" at all, so "</script>" or "<!--" in a label
    # cannot end or change the element ("\u003c" is the same JSON string).
    data = json.dumps(arcs, ensure_ascii=True).replace("<", "\\u003c")
    text_cls = "biobert-text has-arcs" if arcs else "biobert-text"
    return (
        f'<section class="biobert-doc" id="{box_id}"><h2>{heading}</h2>'
        f'<svg class="biobert-arcs" xmlns="http://www.w3.org/2000/svg"></svg>'
        f'<div class="{text_cls}">{"".join(parts)}</div>{table}'
        f'<script type="application/json" class="biobert-data">{data}</script></section>'
    )

