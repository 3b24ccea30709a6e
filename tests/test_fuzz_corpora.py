"""Fuzz suite for the corpus readers and the writer round trips.

Over every reader (PubTator, BioC XML, BioC JSON, ChemProt, JSONL, and the
plain-text input of `annotate`) and every writer:

- no traceback: a reader or writer works, or raises a coded error
  (`CorpusFormatError`, or a `ValueError` whose message carries an [Exxx]
  code); anything else fails the test;
- no silently changed record: a generated document written by a writer reads
  back equal to what was written, or the writer refuses it with a coded error
  (E110); a mutated file that reads without a bad record reads back the same
  after being written again;
- no document lost: every document of a mutated file is read, or counted as a
  skipped document or a dropped duplicate.

Fast by default: few examples, derandomized (the same cases on every run).
The tests marked `slow` run the same properties on many random examples
(`FUZZ_SLOW_EXAMPLES`, default 200). The case counts are printed at the end
of the module (`-rA` or `-s` not needed) and written as JSON to the path in
`$FUZZ_REPORT`, if set.
"""

import io
import json
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import spacy
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from spacy_biobert.annotate.inputs import Record, Reject, iter_input
from spacy_biobert.corpora import CorpusFormatError, CorpusStats, SourceDocument, SourceMention
from spacy_biobert.corpora.formats import iter_records, write_corpus
from spacy_biobert.corpora.losses import LossReport
from spacy_biobert.corpora.records import source_to_doc, title_abstract_passages

# No shrinking: a failing example is reported as found (shrinking one through
# the readers and writers takes minutes).
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
FAST = settings(
    max_examples=int(os.environ.get("FUZZ_FAST_EXAMPLES", "8")),
    deadline=None,
    derandomize=True,
    database=None,
    phases=NO_SHRINK,
    suppress_health_check=list(HealthCheck),
)
# CI runs a fixed sample (a red run must be reproducible); FUZZ_RANDOM=1 explores
SLOW = settings(
    max_examples=int(os.environ.get("FUZZ_SLOW_EXAMPLES", "200")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    phases=NO_SHRINK,
    suppress_health_check=list(HealthCheck),
)
CODE = re.compile(r"\[E\d{3}\]")
CASES: Counter = Counter()
NLP = spacy.blank("en")


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if not CASES:
        return
    lines = ["", "corpus fuzz cases (target, outcome: count):"]
    lines += [f"  {t:<28} {o:<22} {n}" for (t, o), n in sorted(CASES.items())]
    total = sum(CASES.values())
    tracebacks = sum(n for (_, o), n in CASES.items() if o == "traceback")
    lines.append(f"  total {total}, tracebacks {tracebacks}")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            for line in lines:
                reporter.write_line(line)
    out = os.environ.get("FUZZ_REPORT")
    if out:
        Path(out).write_text(json.dumps({f"{t} {o}": n for (t, o), n in sorted(CASES.items())}, indent=1))


def coded(call: Callable[[], Any]) -> Tuple[Any, Optional[Exception]]:
    """(result, None), or (None, the coded error). Any other exception (a
    traceback) propagates and fails the test."""
    try:
        return call(), None
    except (ValueError, FileNotFoundError) as err:
        if isinstance(err, CorpusFormatError) or CODE.search(str(err)):
            return None, err
        raise


# --- generated documents -----------------------------------------------------------

PLAIN = "abcxyzABCXYZ0189 .,;:-()[]/+"
ODD = "\x0b\x0c\x1c\x85\u2028&<>\"'éβ😀\x00\ufeff"  # odd, and XML-unsafe ones
SEPARATORS = "\t\n\r|"  # PubTator/ChemProt separators: writers refuse them (E110)
CHARS = st.sampled_from(list(PLAIN) * 30 + list(ODD) + list(SEPARATORS))
TEXT = st.text(CHARS, max_size=40)
# writable in every format: the seeds of the mutation tests
SEED_CHARS = st.sampled_from(list(PLAIN) * 10 + list("éβ😀&<>\"'"))
SAFE = st.from_regex(r"[A-Z][A-Za-z0-9:_-]{0,6}", fullmatch=True)
PMID = st.from_regex(r"[0-9]{1,8}", fullmatch=True)
DOC_ID = st.one_of(PMID, PMID, st.text(CHARS, max_size=8))
TYPE = st.one_of(
    st.sampled_from(["Chemical", "Disease", "CHEMICAL", "GENE-Y", "SpecificDisease"]),
    st.text(CHARS, max_size=6),
)
KB = st.one_of(
    st.sampled_from(["D001241", "-1", "D014786|D006311", "OMIM:1", "", " D1 ", "C1+D2"]),
    st.text(CHARS, max_size=6),
)
SHAPES = ("pubtator", "chemprot", "bioc", "jsonl")
TARGETS = ("pubtator", "chemprot", "bioc-xml", "bioc-json", "jsonl")
SUFFIX = {
    "pubtator": ".pubtator",
    "chemprot": "",
    "bioc-xml": ".xml",
    "bioc-json": ".json",
    "jsonl": ".jsonl",
}
READ_AS = {
    "pubtator": "pubtator",
    "chemprot": "chemprot",
    "bioc-xml": "bioc",
    "bioc-json": "bioc",
    "jsonl": "jsonl",
}
OWN_TARGET = {"pubtator": "pubtator", "chemprot": "chemprot", "bioc": "bioc-json", "jsonl": "jsonl"}


@st.composite
def mentions(draw, text: str, shape: str, type_st: Any, safe: bool) -> List[SourceMention]:
    out = []
    for i in range(1, draw(st.integers(0, 4)) + 1):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 15)))
        raw_kb = draw(SAFE if safe else KB)
        m = SourceMention(
            id={"pubtator": f"M{i}", "chemprot": f"T{i}"}.get(shape)
            or draw(st.one_of(st.just(f"A{i}"), SAFE if safe else st.text(CHARS, min_size=1, max_size=5))),
            start=start,
            end=end,
            text=text[start:end],
            type=draw(type_st),
            kb_id="" if shape == "chemprot" else raw_kb.strip(),
        )
        if shape == "pubtator":
            m.raw_kb_id = raw_kb if raw_kb != raw_kb.strip() or not raw_kb else None
            m.components = draw(st.one_of(st.none(), st.just(""), SAFE))
        if shape == "bioc" and end > start + 1 and draw(st.booleans()):
            # a discontinuous annotation: two locations
            cut = draw(st.integers(start + 1, end - 1))
            m.extra["locations"] = [[start, cut - start], [cut, end - cut]]
            m.extra["bioc_text"] = text[start:cut] + " " + text[cut:end]
        out.append(m)
    if shape not in ("pubtator", "chemprot"):
        ids = [m.id for m in out]
        out = [m for i, m in enumerate(out) if m.id not in ids[:i]]  # unique ids
    return out


@st.composite
def relations(draw, shape: str, mention_ids: List[str]) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 3))):
        if shape == "chemprot" or (shape in ("bioc", "jsonl") and mention_ids and draw(st.booleans())):
            if not mention_ids:
                break
            rel: Dict[str, Any] = {
                "level": "mention",
                "head": draw(st.sampled_from(mention_ids)),
                "tail": draw(st.sampled_from(mention_ids)),
                "label": draw(st.sampled_from(["CPR:3", "CPR:4", "CPR:9", "CPR:10"])),
            }
            if shape == "chemprot":
                gold = draw(st.booleans())
                rel.update(relation=draw(SAFE), eval=draw(st.sampled_from(["Y", "N"])), gold=gold)
                if gold and draw(st.booleans()):
                    rel.update(relation="", eval="Y", gold_only=True)
        else:
            rel = {"level": "concept", "head": draw(SAFE), "tail": draw(SAFE), "label": draw(SAFE)}
        key = (rel["label"], rel["head"], rel["tail"])
        if all((r["label"], r["head"], r["tail"]) != key for r in out):
            out.append(rel)
    return out


@st.composite
def documents(draw, shape: str, chars: Any = None) -> SourceDocument:
    if chars is not None:  # seeds: text and types from `chars`
        text_st, type_st = st.text(chars, max_size=40), st.text(chars, max_size=6)
    else:
        text_st, type_st = TEXT, TYPE
    if shape in ("pubtator", "chemprot"):
        title, abstract = draw(text_st), draw(text_st)
        passages = title_abstract_passages(title, abstract)
        text = title + " " + abstract
    else:
        passages, parts, offset = [], [], 0
        for _ in range(draw(st.integers(1, 3))):
            offset += draw(st.integers(0, 3))
            ptext = draw(text_st)
            parts.append(" " * (offset - sum(len(p) for p in parts)) + ptext)
            passages.append((draw(st.sampled_from(["title", "abstract", "", "x"])), offset, ptext))
            offset += len(ptext)
        text = "".join(parts)
    ms = draw(mentions(text, shape, type_st, safe=chars is not None))
    extra = {"separator": "\t"} if shape == "chemprot" else {}
    return SourceDocument(
        doc_id=draw(DOC_ID if chars is None else PMID),
        text=text,
        passages=passages,
        mentions=ms,
        relations=draw(relations(shape, [m.id for m in ms])),
        extra=extra,
    )


def write_read(
    docs, target: str, folder: Path, *, allow_loss: bool = False
) -> Tuple[Any, Optional[Exception], CorpusStats, LossReport]:
    """Write Docs in `target` and read the file back as records; the report
    holds what the writer said it dropped (`allow_loss`; else that is E121)."""
    path = folder / f"out{SUFFIX[target]}"
    if target == "chemprot":
        path = folder / "cp" / "cp"
    report = LossReport(target)
    _, refused = coded(lambda: write_corpus(docs, path, target, allow_loss=allow_loss, losses=report))
    stats = CorpusStats()
    if refused is not None:
        return None, refused, stats, report
    read, err = coded(lambda: list(iter_records(path, READ_AS[target], stats=stats)))
    assert err is None, f"{target} wrote a file its reader rejects: {err}"
    return read, None, stats, report


# --- what a record holds, and what each format keeps of it (corpora/losses.py) -------

_CHEMPROT_KEYS = ("level", "head", "tail", "label", "relation", "eval", "eval_raw", "gold", "gold_only")
# values a format fills in where a relation has none: not data
_DEFAULTS = {"level": "mention", "relation": "", "eval": "N", "gold": False}


def _kb(m: SourceMention) -> Any:
    values = (m.kb_id, m.raw_kb_id)
    return values if any(v and v.strip() not in ("", "-1") for v in values) else None


def _relation(r: Dict[str, Any], spans: Dict[str, Any]) -> Dict[str, Any]:
    """A relation with its mention ids as spans (ids are format-local) and
    the defaults a format fills in left out."""
    out = {k: v for k, v in r.items() if _DEFAULTS.get(k, object()) != v}
    if r.get("level", "mention") != "concept":
        for k in ("head", "tail"):
            out[k] = spans.get(r.get(k), ("?", r.get(k)))
    return out


def full(rec: SourceDocument) -> Any:
    """Everything a record holds, mention ids aside (each format has its own:
    PubTator M1..., ChemProt T1...; relations refer to mentions by span)."""
    spans = {m.id: (m.start, m.end) for m in rec.mentions}
    mentions = sorted(
        json.dumps([m.start, m.end, m.text, m.raw_text, m.type, _kb(m), m.components or None,
                    sorted(m.extra.items())])
        for m in rec.mentions
    )
    relations = sorted(json.dumps(_relation(r, spans), sort_keys=True) for r in rec.relations)
    extra = {k: v for k, v in rec.extra.items() if k != "separator"}  # a layout, not data
    return [rec.doc_id, rec.text, sorted(rec.passages, key=lambda p: p[1]), mentions, relations,
            json.dumps(extra, sort_keys=True)]


def kept(rec: SourceDocument, target: str) -> Any:
    """What `target` keeps of a record: `full` of what it holds once written
    and read back, by the table of docs/corpora.md ("What each format keeps")."""
    from spacy_biobert.corpora.losses import bioc_text
    from spacy_biobert.corpora.records import title_and_abstract

    rec = SourceDocument(rec.doc_id, rec.text, list(rec.passages),
                         [SourceMention(**vars(m)) for m in rec.mentions],
                         [dict(r) for r in rec.relations], dict(rec.extra))
    for m in rec.mentions:
        m.extra = dict(m.extra)
    ids = {m.id for m in rec.mentions}
    if target in ("pubtator", "chemprot"):
        title, abstract = title_and_abstract(rec)
        rec.doc_id = rec.doc_id or "0"
        rec.text = title + " " + abstract
        rec.passages = title_abstract_passages(title, abstract)
        rec.extra = {}
        for m in rec.mentions:
            m.extra = {}
            if target == "chemprot":
                m.kb_id, m.raw_kb_id, m.components = "", None, None
        if target == "pubtator":
            rec.relations = [{k: r[k] for k in ("level", "head", "tail", "label")}
                             for r in rec.relations if r.get("level") == "concept"]
        else:
            linked = [r for r in rec.relations if r.get("level", "mention") == "mention"
                      and r["head"] in ids and r["tail"] in ids]
            rec.relations = [{k: v for k, v in r.items() if k in _CHEMPROT_KEYS} for r in linked]
    elif target in ("bioc-xml", "bioc-json"):
        problem, text = bioc_text(rec)
        if problem is not None:
            rec.passages = [("text", 0, rec.text)]
        else:  # whitespace between passages is read back as spaces
            rec.text = text
        rec.extra = {k: v for k, v in rec.extra.items() if k in ("bioc_infons", "separator")}
        for m in rec.mentions:
            m.extra = {k: v for k, v in m.extra.items() if k in ("locations", "bioc_text")}
        for r in rec.relations:  # other fields are written as text infons
            for k, v in list(r.items()):
                if k in ("level", "head", "tail", "label"):
                    continue
                if not (k in ("gold", "gold_only") and isinstance(v, bool)) and not (
                    k == "score" and isinstance(v, (int, float))
                ):
                    r[k] = str(v)
    return full(rec)


def check_round_trip(shape: str, target: str, data: Any) -> None:
    src = data.draw(documents(shape))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        doc = source_to_doc(src, NLP.make_doc, source_format=shape)
        # the shape's own format first: what its reader makes of the document
        first, refused, stats, report = write_read([doc], OWN_TARGET[shape], folder / "a")
        if refused is not None:
            CASES[(f"{shape} document", "refused by its format")] += 1
            return
        assert not report and stats.skipped == 0 and stats.duplicates == 0 and len(first) == 1
        docs = [source_to_doc(r, NLP.make_doc, source_format=shape) for r in first]
        second, refused, stats, report = write_read(docs, target, folder / "b", allow_loss=True)
        name = f"{shape}->{target}"
        if refused is not None:
            CASES[(name, "refused (E110)")] += 1
            return
        assert stats.skipped == 0 and len(second) == 1
        # the format carries all it keeps; and only what it reports dropped is gone
        assert kept(second[0], target) == kept(first[0], target)
        if report:
            assert full(second[0]) != full(first[0]), f"reported but nothing lost: {report.summary()}"
            CASES[(name, "losses reported")] += 1
        else:
            assert full(second[0]) == full(first[0]), "changed, and no loss reported"
            CASES[(name, "equal")] += 1


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("shape", SHAPES)
@FAST
@given(data=st.data())
def test_writer_round_trip(shape, target, data):
    check_round_trip(shape, target, data)


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("shape", SHAPES)
@SLOW
@given(data=st.data())
def test_writer_round_trip_long(shape, target, data):
    check_round_trip(shape, target, data)


# --- mutated files -------------------------------------------------------------------

TOKENS = [
    b"\t",
    b"|t|",
    b"|a|",
    b"\n",
    b"\r",
    b"\r\n",
    b"\n\n",
    b"0",
    b"-1",
    b"300000000",
    b"99999999999999999999",
    b"x",
    b"\x00",
    b"\xff",
    b"\xc3",
    "é".encode(),
    b"&xxe;",
    b"&amp;",
    b"<",
    b">",
    b"]]>",
    b'"',
    b"\\ud800",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"null",
    b"true",
    b"1.5",
    b"\t\t\t",
    b"\xef\xbb\xbf",
    b"CID\tD1\tD2",
    b"Arg1:T1",
    b"T1",
]
JSON_VALUES = st.one_of(
    st.sampled_from(["0", 0.5, -1, 3 * 10**8, None, True, [], {}, "x", "\ud800", "high", 10**30]),
    st.integers(-5, 50),
    st.text(CHARS, max_size=5),
)


@st.composite
def mutated(draw, content: bytes) -> bytes:
    data = bytearray(content)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "dup-line", "drop-line", "swap"]))
        pos = draw(st.integers(0, len(data)))
        if kind == "insert":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        else:
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "dup-line":
                lines.insert(i, lines[i])
            elif kind == "drop-line":
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def mutate_json(draw, obj: Any) -> Any:
    """Replace one value somewhere in a JSON object by another JSON value."""
    nodes = []
    stack: List[Tuple[Any, Any]] = [(obj, None)]
    while stack:
        value, _ = stack.pop()
        if isinstance(value, dict):
            for k, v in value.items():
                nodes.append((value, k))
                stack.append((v, None))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                nodes.append((value, i))
                stack.append((v, None))
    if nodes:
        holder, k = draw(st.sampled_from(nodes))
        holder[k] = draw(JSON_VALUES)
    return obj


XML_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "1.5", "300000000", "", "x", "true", "99999999999999999999"]),
    st.text(SEED_CHARS, max_size=5),
)


def mutate_xml(draw, content: bytes) -> bytes:
    """Replace the text or an attribute of one element of a BioC XML file."""
    from lxml import etree

    root = etree.fromstring(content)
    elements = list(root.iter())
    elem = draw(st.sampled_from(elements))
    value = draw(XML_VALUES)
    if elem.attrib and draw(st.booleans()):
        elem.set(draw(st.sampled_from(sorted(elem.attrib))), value)
    elif draw(st.booleans()) or elem.getparent() is None:
        elem.text = value
    else:
        elem.getparent().remove(elem)
    return etree.tostring(root, xml_declaration=True, encoding="utf8")


def _lines(content: bytes, universal: bool) -> List[str]:
    text = io.TextIOWrapper(
        io.BytesIO(content),
        encoding="utf8",
        errors="surrogateescape",
        newline=None if universal else "\n",
    ).read()
    lines = text.split("\n") if universal else text.split("\n")
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return [line.rstrip("\r") for line in lines]


def expected_documents(fmt: str, path: Path, content: bytes) -> Optional[int]:
    """How many documents the file holds, by a reading independent of the
    reader (None when that cannot be told)."""
    if fmt == "pubtator":
        head = re.compile(r"^([^|\t]+)\|t\|", re.DOTALL)
        return sum(
            1 for line in _lines(content, True) if head.match(line) and "\t" not in line.split("|", 1)[0]
        )
    if fmt == "chemprot":  # only an empty line is blank in TSV
        return sum(1 for line in _lines(content, True) if line)
    if fmt == "jsonl":
        return sum(1 for line in _lines(content, False) if line.strip())
    if fmt == "bioc-json":
        try:
            obj = json.loads(content.decode("utf8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        docs = obj.get("documents") if isinstance(obj, dict) else None
        return len(docs) if isinstance(docs, list) and docs else None
    if fmt == "bioc-xml":
        from lxml import etree

        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            root = etree.fromstring(content, parser)
        except etree.XMLSyntaxError:
            return None
        return len(root.findall(".//document")) or None
    return None


SEED_SHAPE = {
    "pubtator": "pubtator",
    "chemprot": "chemprot",
    "bioc-xml": "bioc",
    "bioc-json": "bioc",
    "jsonl": "jsonl",
}


def check_mutated_reader(fmt: str, data: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        docs = [
            source_to_doc(d, NLP.make_doc, source_format=SEED_SHAPE[fmt])
            for d in data.draw(st.lists(documents(SEED_SHAPE[fmt], SEED_CHARS), min_size=1, max_size=3))
        ]
        seed = folder / "seed"
        _, refused = coded(
            lambda: write_corpus(docs, seed / f"s{SUFFIX[fmt]}" if fmt != "chemprot" else seed / "cp", fmt)
        )
        if refused is not None:
            CASES[(f"mutate {fmt}", "seed refused")] += 1
            return
        files = sorted(p for p in seed.rglob("*") if p.is_file())
        target = folder / "m"
        target.mkdir()
        for f in files:
            content = f.read_bytes()
            if fmt in ("bioc-json", "jsonl") and data.draw(st.booleans()):
                if fmt == "jsonl":
                    lines = [json.loads(x) for x in content.decode().split("\n") if x]
                    i = data.draw(st.integers(0, len(lines) - 1))
                    lines[i] = mutate_json(data.draw, lines[i])
                    content = "\n".join(json.dumps(x) for x in lines).encode()
                else:
                    obj = mutate_json(data.draw, json.loads(content))
                    content = json.dumps(obj).encode()
            elif fmt == "bioc-xml" and data.draw(st.booleans()):
                content = mutate_xml(data.draw, content)
            elif fmt != "chemprot" or data.draw(st.booleans()):
                content = data.draw(mutated(content))
            (target / f.name).write_bytes(content)
        path = target / ("cp" if fmt == "chemprot" else f"s{SUFFIX[fmt]}")
        name = f"mutate {fmt}"
        read_as = READ_AS[fmt]
        # 1. strict: records, or one coded error
        strict, err = coded(lambda: list(iter_records(path, read_as)))
        # 2. skipping: records plus counted skips; no document lost
        stats = CorpusStats()
        skipped, file_err = coded(lambda: list(iter_records(path, read_as, on_error="skip", stats=stats)))
        if file_err is not None:
            CASES[(name, "file rejected (coded)")] += 1
            return
        for rec in skipped:  # the Docs of the records build without a traceback
            source_to_doc(rec, NLP.make_doc, source_format=read_as)
        main = path.with_name("cp_abstracts.tsv") if fmt == "chemprot" else path
        expected = expected_documents(fmt, main, main.read_bytes())
        if expected is not None:
            found = len(skipped) + stats.skipped_documents + stats.duplicates
            assert found >= expected, (found, expected, stats.errors)
            if fmt != "pubtator":
                assert found == expected, (found, expected, stats.errors)
        if err is not None:
            CASES[(name, "coded error")] += 1
            assert stats.skipped > 0 or stats.duplicate_lines > 0 or stats.duplicates > 0
            return
        assert stats.skipped == 0
        # 3. read cleanly: writing it again and reading back changes nothing
        docs = [source_to_doc(r, NLP.make_doc, source_format=read_as) for r in strict]
        again, refused, stats2, report = write_read(docs, fmt, folder / "again")
        if refused is not None:
            assert "E121" not in str(refused), "a format cannot hold what its own reader read"
            CASES[(name, "read; rewrite refused")] += 1
            return
        assert [full(r) for r in again] == [full(r) for r in strict]
        CASES[(name, "read; rewrite equal")] += 1


MUTATED = ("pubtator", "chemprot", "bioc-xml", "bioc-json", "jsonl")


@pytest.mark.parametrize("fmt", MUTATED)
@FAST
@given(data=st.data())
def test_mutated_files(fmt, data):
    check_mutated_reader(fmt, data)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", MUTATED)
@SLOW
@given(data=st.data())
def test_mutated_files_long(fmt, data):
    check_mutated_reader(fmt, data)


# --- plain text (annotate's "text" input: one document per line) ----------------------


def check_plain_text(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "in.txt"
        path.write_bytes(content)
        items, err = coded(lambda: list(iter_input(path, "text")))
        assert err is None, err
        lines = content.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        assert [i.index for i in items] == list(range(len(lines)))
        assert all(isinstance(i, (Record, Reject)) for i in items)
        CASES[("plain text", "every line a record or a reject")] += 1


TEXT_BYTES = st.binary(max_size=200) | st.lists(st.sampled_from(TOKENS + [b"word "]), max_size=30).map(
    b"".join
)


@FAST
@given(content=TEXT_BYTES)
def test_plain_text_lines(content):
    check_plain_text(content)


@pytest.mark.slow
@SLOW
@given(content=TEXT_BYTES)
def test_plain_text_lines_long(content):
    check_plain_text(content)


# --- BioC XML text with markup (issue 24) ---------------------------------------------------


def _with_markup(elem: Any, draw: Any) -> bool:
    """Cut the text of `elem` into pieces with comments, processing
    instructions or elements (maybe nested) between them, none adding text;
    whether an element (markup BioC does not allow) was put in."""
    from lxml import etree

    text = elem.text or ""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), min_size=1, max_size=3)))
    pieces = [text[a:b] for a, b in zip([0] + cuts, cuts + [len(text)])]
    elem.text = pieces[0]
    element = False
    for piece in pieces[1:]:
        kind = draw(st.sampled_from(["comment", "pi", "element", "nested"]))
        if kind == "comment":
            node = etree.Comment(" note ")
            node.tail = piece
        elif kind == "pi":
            node = etree.ProcessingInstruction("pi", "x")
            node.tail = piece
        else:
            element = True
            node = etree.Element(draw(st.sampled_from(["b", "i", "sub", "text"])))
            half = len(piece) // 2
            node.text = piece if kind == "element" else piece[:half]
            if kind == "nested":
                inner = etree.SubElement(node, "sup")
                inner.text = piece[half:]
        elem.append(node)
    return element


def check_bioc_markup(data: Any) -> None:
    from lxml import etree

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        docs = [
            source_to_doc(d, NLP.make_doc, source_format="bioc")
            for d in data.draw(st.lists(documents("bioc", SEED_CHARS), min_size=1, max_size=3))
        ]
        seed = folder / "seed.xml"
        _, refused = coded(lambda: write_corpus(docs, seed, "bioc-xml"))
        if refused is not None:
            CASES[("bioc markup", "seed refused")] += 1
            return
        expected = list(iter_records(seed, "bioc"))
        root = etree.fromstring(seed.read_bytes())
        targets = [e for e in root.iter("text", "infon") if e.getparent().tag != "collection"]
        chosen = data.draw(st.lists(st.sampled_from(targets), max_size=4, unique_by=id)) if targets else []
        with_elements = sum(_with_markup(e, data.draw) for e in chosen)
        marked = folder / "marked.xml"
        marked.write_bytes(etree.tostring(root, xml_declaration=True, encoding="utf8"))
        stats = CorpusStats()
        got, err = coded(lambda: list(iter_records(marked, "bioc", stats=stats)))
        assert err is None, err
        assert [full(r) for r in got] == [full(r) for r in expected], "markup changed a record"
        assert stats.markup == with_elements
        items = list(iter_input(marked, "bioc", max_chars=None))  # annotate's input (empty: a reject)
        assert [(i.id, getattr(i, "text", None)) for i in items] == [
            (r.doc_id, r.text if r.text.strip() else None) for r in expected
        ]
        CASES[("bioc markup", "whole text kept")] += 1
        CASES[("bioc markup", "texts with markup")] += len(chosen)


@FAST
@given(data=st.data())
def test_bioc_text_with_markup(data):
    check_bioc_markup(data)


@pytest.mark.slow
@SLOW
@given(data=st.data())
def test_bioc_text_with_markup_long(data):
    check_bioc_markup(data)


# --- damaged gzip input (issue 24) ----------------------------------------------------------

GZIP_FORMATS = ("pubtator", "bioc-xml", "bioc-json", "jsonl")


@st.composite
def gzip_damage(draw, data: bytes) -> Tuple[str, bytes]:
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete", "append"]))
    pos = draw(st.integers(0, len(data) - 1))
    if kind == "truncate":
        return kind, data[:pos]
    if kind == "flip":
        return kind, data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1 :]
    if kind == "overwrite":
        junk = draw(st.binary(min_size=1, max_size=16))
        return kind, data[:pos] + junk + data[pos + len(junk) :]
    if kind == "insert":
        return kind, data[:pos] + draw(st.binary(min_size=1, max_size=16)) + data[pos:]
    if kind == "delete":
        return kind, data[:pos] + data[pos + draw(st.integers(1, 16)) :]
    return kind, data + draw(st.binary(min_size=1, max_size=16))


def check_gzip_damage(fmt: str, data: Any) -> None:
    import gzip

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        docs = [
            source_to_doc(d, NLP.make_doc, source_format=SEED_SHAPE[fmt])
            for d in data.draw(st.lists(documents(SEED_SHAPE[fmt], SEED_CHARS), min_size=1, max_size=4))
        ]
        seed = folder / f"s{SUFFIX[fmt]}"
        _, refused = coded(lambda: write_corpus(docs, seed, fmt))
        if refused is not None:
            CASES[(f"gzip damage {fmt}", "seed refused")] += 1
            return
        original = [full(r) for r in iter_records(seed, READ_AS[fmt])]
        original_items = list(iter_input(seed, READ_AS[fmt], max_chars=None))
        kind, damaged = data.draw(gzip_damage(gzip.compress(seed.read_bytes(), mtime=0)))
        path = folder / f"d{SUFFIX[fmt]}.gz"
        path.write_bytes(damaged)
        outcomes = []
        for on_error in ("raise", "skip"):
            got, err = coded(lambda mode=on_error: list(iter_records(path, READ_AS[fmt], on_error=mode)))
            if err is None:  # read without a word: it must be the undamaged content
                assert [full(r) for r in got] == original, f"{kind}: a damaged file read as changed"
                outcomes.append("read, unchanged")
            else:
                # the damage, or what it decompressed to (a garbled record, not well-formed XML)
                outcomes.append("E120" if "[E120]" in str(err) else "coded, garbled content first")
        items, err = coded(lambda: list(iter_input(path, READ_AS[fmt], max_chars=None)))
        if err is None:
            assert items == original_items, f"{kind}: annotate read a damaged file as changed"
        CASES[(f"gzip damage {fmt}", f"strict: {outcomes[0]}")] += 1
        CASES[(f"gzip damage {fmt}", f"skip: {outcomes[1]}")] += 1


@pytest.mark.parametrize("fmt", GZIP_FORMATS)
@FAST
@given(data=st.data())
def test_damaged_gzip(fmt, data):
    check_gzip_damage(fmt, data)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", GZIP_FORMATS)
@SLOW
@given(data=st.data())
def test_damaged_gzip_long(fmt, data):
    check_gzip_damage(fmt, data)
