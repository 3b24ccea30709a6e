"""BioC XML and BioC JSON (through the `bioc` package).

Reading: one Doc per BioC document. The Doc text puts every passage at its
offset (gaps filled with spaces), so annotation offsets index the Doc text.
Annotations (document, passage or sentence level) become mentions: `id_` =
annotation id, `label_` = infon "type", `kb_id_` = infon "identifier" (or,
as in other BioC corpora, "MESH", "MeSH", "Identifier", "NCBI Gene"),
BC5CDR's 7th column = infon "individual_mentions" (source fields that
differ from the cleaned ones: "source_identifier", "source_text"). An annotation with
several locations spans from the first to the last; its locations are kept
for writing. Relations:

- infons "level" = "concept": {"head": infon head, "tail": infon tail};
- infons "relation" plus "Chemical"/"Disease" (the BC5CDR BioC files):
  concept relation with label = infon "relation";
- otherwise a mention relation between its nodes (role "head"/"Arg1" first);
- label = infon "type" (or "relation"); other infons are kept as fields
  ("true"/"false" for gold/gold_only are read back as booleans).

Writing puts title/abstract (or the Doc's passages) as passages, each
annotation in the passage that holds its start, and relations at document
level (a predicted relation gets a "score" infon).

XML is streamed document by document; BioC JSON is one JSON object, so it is
loaded whole (use XML or JSONL for very large collections).
"""

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, TextIO, Tuple, Union

from spacy.tokens import Doc

from ..errors import Errors
from ..extensions import predicted_relations
from .checks import DEFAULT_MAX_CHARS, check_length, find_lone_surrogate, is_int, load_json, show_value
from .errors import CorpusFormatError, CorpusStats, ErrorPolicy, empty_file_error, malformed
from .io import Source, atomic_write, peek, plain_suffix, write_text
from .reading import docs_reader, start_reading
from .records import SourceDocument, SourceMention, check_mention, doc_to_source, with_relation_arguments
from .safe_xml import secure_iterparse

ID_INFONS = ("identifier", "MESH", "MeSH", "Identifier", "NCBI Gene", "NCBI_Gene")
_BOOL_FIELDS = ("gold", "gold_only")
_SKIP_REL_INFONS = ("type", "level", "head", "tail")


def _is_json(name: Union[str, Path], head: bytes) -> bool:
    """BioC JSON by the name's extension (".gz" set aside), else by the first
    256 bytes `head` of the file."""
    suffix = plain_suffix(name)
    if suffix in (".json", ".xml"):
        return suffix == ".json"
    return head[:256].lstrip().startswith(b"{")


def iter_bioc_records(
    path: Source,
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> Iterator[SourceDocument]:
    """Stream the documents of a BioC XML (.xml) or BioC JSON (.json) file
    (a path, maybe ending in ".gz", or an open binary or text stream).

    A value of the wrong type (a string or float offset, a number as text,
    a lone surrogate) is a bad document (E114), and so is a document whose
    passages would span more than `max_chars` characters (E113, checked from
    the offsets before any text is built; None: no bound) and, in XML, a
    document that uses an entity reference (E115: XML entities are never
    resolved and nothing is fetched). In XML the text of a passage (and of an
    id, infon, offset or annotation text) is all of its character data:
    comments and processing instructions carry no text and are passed over,
    and markup (a child element, which BioC does not allow there) keeps its
    text, its tags dropped and counted (`stats.markup`, W107). A bad annotation or relation (offsets
    outside the text, a repeated id, a "score" infon that is not a number)
    skips that item. With on_error="skip" each is counted instead of raised.
    """
    reading = start_reading(path, on_error, stats, max_chars)
    path = reading.name
    with peek(reading.source, 4096) as (head, fp):
        if not head.strip():
            raise empty_file_error(path)
        docs = _iter_json(path, fp) if _is_json(path, head) else _iter_xml(path, fp, reading.stats)
        n = 0
        for line, bdoc in docs:
            n += 1
            if isinstance(bdoc, CorpusFormatError):
                reading.policy(bdoc, document=True)
                continue
            rec = _to_record(path, line, bdoc, reading.policy, max_chars)
            if rec is not None:
                yield rec
    if n == 0:
        raise empty_file_error(path)


# The elements of a BioC document whose content is character data only.
_TEXT_ELEMENTS = ("id", "infon", "offset", "text")


def _iter_xml(path: Union[str, Path], fp: Any, stats: CorpusStats) -> Iterator[Tuple[int, Any]]:
    from bioc import biocxml
    from lxml import etree

    # Comments and processing instructions are dropped by the parser, and the
    # text around them joined: they carry no text (`<text>a<!-- n -->b</text>`
    # is "ab"), where the `bioc` package would keep the text before them only.
    context = secure_iterparse(
        fp, "document", attribute_defaults=False, remove_comments=True, remove_pis=True
    )
    try:
        for _, elem in context:
            line = elem.sourceline or 0
            entity = next(elem.iter(etree.Entity), None)
            bdoc: Any
            if entity is not None:
                doc_id = elem.findtext("id") or f"at line {line}"
                bdoc = CorpusFormatError(
                    path,
                    line,
                    Errors.E115.format(doc_id=doc_id, name=entity.name),
                    record=doc_id,
                )
            else:
                _keep_text_of_markup(elem, line, stats)
                xml = b"<collection>" + etree.tostring(elem) + b"</collection>"
                try:
                    bdoc = biocxml.loads(xml.decode("utf8")).documents[0]
                except (KeyError, ValueError, TypeError, etree.XMLSyntaxError) as err:
                    detail = f"not a valid BioC document (missing or bad {err})"
                    bdoc = malformed(path, line, detail, record=elem.findtext("id"))
            elem.clear()
            while elem.getprevious() is not None:
                del elem.getparent()[0]
            yield line, bdoc
    except etree.XMLSyntaxError as err:
        line = err.lineno or 0
        msg = str(err.msg)
        if "encod" in msg.lower() or "utf-8" in msg.lower():
            raise CorpusFormatError(
                path, line, Errors.E104.format(encoding="UTF8", reason=msg)
            ) from None
        raise malformed(path, line, f"not well-formed XML ({msg})") from None


def _keep_text_of_markup(doc: Any, line: int, stats: CorpusStats) -> None:
    """Markup inside an element that holds text (`<text>H<sub>2</sub>O</text>`,
    which BioC's DTD does not allow): its text is kept and its tags dropped
    (the element's string value, "H2O"; the `bioc` package would keep "H"),
    counted in `stats.markup` (W107)."""
    from lxml import etree

    # Found first, stripped after (stripping changes the tree); an element
    # inside another one that holds text (a <text> in an <infon>) is its markup.
    outer = [
        elem
        for elem in doc.iter(*_TEXT_ELEMENTS)
        if len(elem) and not any(a.tag in _TEXT_ELEMENTS for a in elem.iterancestors())
    ]
    for elem in outer:
        stats.markup += 1
        if len(stats.markup_examples) < 5:
            tags = sorted({child.tag for child in elem.iterdescendants()})
            doc_id = "".join(next(doc.iter("id"), etree.Element("id")).itertext()) or "?"
            stats.markup_examples.append(
                f"document {doc_id} (line {line}): <{'>, <'.join(tags)}> in <{elem.tag}>"
            )
        etree.strip_tags(elem, "*")


def _iter_json(path: Union[str, Path], fp: Any) -> Iterator[Tuple[int, Any]]:
    from bioc import biocjson

    raw = fp.read()
    try:
        text = raw.decode("utf8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise CorpusFormatError(
            path, line, Errors.E104.format(encoding="UTF8", reason=err)
        ) from None
    obj, problem, line = load_json(text)
    if problem is not None:
        raise malformed(path, line, problem)
    if not isinstance(obj, dict) or not isinstance(obj.get("documents"), list):
        raise malformed(path, 1, "a BioC JSON collection needs a 'documents' list")
    for i, dobj in enumerate(obj["documents"]):
        doc_id = dobj.get("id") if isinstance(dobj, dict) else None
        line = _json_line(text, doc_id if isinstance(doc_id, str) else None)
        record = f"{doc_id} (#{i + 1} in the file)" if isinstance(doc_id, str) else f"#{i + 1}"
        problem = _json_document_problem(dobj)
        bdoc: Any
        if problem is not None:
            what, expected, value = problem
            bdoc = CorpusFormatError(
                path,
                line,
                Errors.E114.format(doc_id=record, what=what, expected=expected, value=value),
                record=doc_id if isinstance(doc_id, str) else f"#{i + 1}",
            )
        else:
            bdoc = biocjson.decoder.parse_doc(dobj)
        yield line, bdoc


Problem = Optional[Tuple[str, str, str]]


def _json_document_problem(d: Any) -> Problem:
    """(what, expected, found) for the first value of a BioC JSON document
    that is not of the type BioC says, or None. Checked before the `bioc`
    package reads it, which takes any value."""
    if not isinstance(d, dict):
        return ("the document", "a JSON object", show_value(d))
    if not isinstance(d.get("id"), str):
        return ("'id'", "a string", show_value(d.get("id")))
    surrogate = find_lone_surrogate(d)
    if surrogate is not None:
        return ("every string", "valid Unicode text (writable as UTF-8)", surrogate)
    problem = _json_infons(d, "document")
    for key in ("passages", "relations"):
        problem = problem or _json_list(d, key, "document", required=True)
    problem = problem or _json_list(d, "annotations", "document", required=False)
    return problem or _json_items(d, "document ") or _each(d["passages"], _json_passage, "passage")


def _each(items: List[Any], check: Callable[[Any, str], Problem], where: str) -> Problem:
    """The first problem `check(item, "WHERE #n")` finds in `items`, or None."""
    for n, item in enumerate(items, start=1):
        problem = check(item, f"{where} #{n}")
        if problem:
            return problem
    return None


def _json_items(obj: Dict[str, Any], where: str) -> Problem:
    """The annotations and relations of a document, passage or sentence."""
    return _each(obj.get("annotations", []), _json_annotation, f"{where}annotation") or _each(
        obj["relations"], _json_relation, f"{where}relation"
    )


def _json_passage(obj: Any, where: str) -> Problem:
    return _json_container(obj, where, sentences=True) or _each(
        obj["sentences"], _json_sentence, f"{where} sentence"
    )


def _json_sentence(obj: Any, where: str) -> Problem:
    return _json_container(obj, where, sentences=False)


def _json_container(obj: Any, where: str, *, sentences: bool) -> Problem:
    """A passage or a sentence: offset, infons, text, annotations, relations."""
    if not isinstance(obj, dict):
        return (where, "a JSON object", show_value(obj))
    if not is_int(obj.get("offset")) or obj["offset"] < 0:
        return (f"{where} 'offset'", "an integer >= 0", show_value(obj.get("offset")))
    if obj.get("text") is not None and not isinstance(obj["text"], str):
        return (f"{where} 'text'", "a string", show_value(obj["text"]))
    problem = _json_infons(obj, where)
    keys = ("sentences", "annotations", "relations") if sentences else ("annotations", "relations")
    for key in keys:
        problem = problem or _json_list(obj, key, where, required=True)
    return problem or _json_items(obj, f"{where} ")


def _json_annotation(ann: Any, where: str) -> Problem:
    return _json_parts(ann, where, "locations", _json_location, text=True)


def _json_relation(rel: Any, where: str) -> Problem:
    return _json_parts(rel, where, "nodes", _json_node)


def _json_parts(
    obj: Any, where: str, key: str, check: Callable[[Any, str], Problem], *, text: bool = False
) -> Problem:
    """An annotation (`text`, "locations") or a relation ("nodes"): an object
    with a string id, infons and a list of parts, each checked by `check`."""
    if not isinstance(obj, dict):
        return (where, "a JSON object", show_value(obj))
    if not isinstance(obj.get("id"), str):
        return (f"{where} 'id'", "a string", show_value(obj.get("id")))
    if text and ("text" not in obj or not (obj["text"] is None or isinstance(obj["text"], str))):
        return (f"{where} 'text'", "a string", show_value(obj.get("text")))
    problem = _json_infons(obj, where) or _json_list(obj, key, where, required=True)
    return problem or _each(obj[key], check, f"{where} {key[:-1]}")


def _json_location(loc: Any, where: str) -> Problem:
    if not isinstance(loc, dict):
        return (where, "a JSON object", show_value(loc))
    for key in ("offset", "length"):
        if not is_int(loc.get(key)) or loc[key] < 0:
            return (f"{where} '{key}'", "an integer >= 0", show_value(loc.get(key)))
    return None


def _json_node(node: Any, where: str) -> Problem:
    if not isinstance(node, dict):
        return (where, "a JSON object", show_value(node))
    for key in ("refid", "role"):
        if not isinstance(node.get(key), str):
            return (f"{where} '{key}'", "a string", show_value(node.get(key)))
    return None


def _json_infons(obj: Dict[str, Any], where: str) -> Problem:
    infons = obj.get("infons")
    if not isinstance(infons, dict):
        return (f"{where} 'infons'", "an object of strings", show_value(infons))
    for key, value in infons.items():
        if value is not None and not isinstance(value, str):
            return (f"{where} infon {key!r}", "a string", show_value(value))
    return None


def _json_list(obj: Dict[str, Any], key: str, where: str, *, required: bool) -> Problem:
    if key not in obj and not required:
        return None
    if not isinstance(obj.get(key), list):
        return (f"{where} '{key}'", "a list", show_value(obj.get(key)))
    return None


def _json_line(text: str, doc_id: Optional[str]) -> int:
    if doc_id is None:
        return 0
    for needle in (f'"id": "{doc_id}"', f'"id":"{doc_id}"'):
        pos = text.find(needle)
        if pos >= 0:
            return text.count("\n", 0, pos) + 1
    return 0


def _to_record(
    path: Union[str, Path],
    line: int,
    bdoc: Any,
    policy: ErrorPolicy,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> Optional[SourceDocument]:
    doc_id = bdoc.id or ""
    record = doc_id or f"at line {line}"

    def bad_document(problem: str) -> None:
        policy(CorpusFormatError(path, line, problem, record=record), document=True)

    ordered = sorted(bdoc.passages, key=lambda p: p.offset)
    for p in ordered:
        if p.offset < 0:
            bad_document(
                Errors.E114.format(
                    doc_id=record,
                    what="a passage offset",
                    expected="an integer >= 0",
                    value=show_value(p.offset),
                )
            )
            return None
    # The Doc text puts every passage at its offset: bound it before building.
    length = max((p.offset + len(p.text or "") for p in ordered), default=0)
    too_long = check_length(
        path,
        line,
        record,
        length,
        max_chars,
        detail=f" (its last passage starts at offset {ordered[-1].offset})" if ordered else "",
    )
    if too_long is not None:
        policy(too_long, document=True)
        return None
    passages: List[Tuple[str, int, str]] = []
    parts: List[str] = []
    length = 0
    for p in ordered:
        ptext = p.text or ""
        if p.offset < length:
            bad_document(
                Errors.E101.format(
                    detail=(
                        f"passage at offset {p.offset} of document {doc_id} "
                        f"overlaps the previous passage (which ends at {length})"
                    )
                )
            )
            return None
        parts.append(" " * (p.offset - length))
        parts.append(ptext)
        length = p.offset + len(ptext)
        passages.append((p.infons.get("type") or "", p.offset, ptext))
    text = "".join(parts)
    annotations = list(bdoc.annotations)
    for p in bdoc.passages:
        annotations.extend(p.annotations)
        for s in p.sentences:
            annotations.extend(s.annotations)
    mentions: List[SourceMention] = []
    seen_ids: Dict[str, int] = {}
    for i, ann in enumerate(annotations, start=1):
        if not ann.locations:
            policy(
                CorpusFormatError(
                    path,
                    line,
                    Errors.E101.format(
                        detail=f"annotation {ann.id} of document {doc_id} has no location"
                    ),
                    record=record,
                )
            )
            continue
        mid = ann.id or f"A{i}"
        if mid in seen_ids:
            policy(
                CorpusFormatError(
                    path,
                    line,
                    Errors.E116.format(mention_id=mid, doc_id=record, first_line=line),
                    record=record,
                )
            )
            continue
        start = min(loc.offset for loc in ann.locations)
        end = max(loc.offset + loc.length for loc in ann.locations)
        infons = dict(ann.infons)
        kb_id = next((infons[k] for k in ID_INFONS if infons.get(k) is not None), "")
        m = SourceMention(
            id=mid,
            start=start,
            end=end,
            text=ann.text or "",
            type=infons.get("type") or "",
            kb_id=(kb_id or "").strip(),
            # an empty XML infon reads as None: BC5CDR's empty 7th column
            components=(infons["individual_mentions"] or "")
            if "individual_mentions" in infons
            else None,
        )
        if "source_identifier" in infons:  # an empty XML infon reads as None
            m.raw_kb_id = infons["source_identifier"] or ""
        if len(ann.locations) > 1:
            m.extra["locations"] = [[loc.offset, loc.length] for loc in ann.locations]
            if not (0 <= start <= end <= len(text)):
                err: Optional[CorpusFormatError] = CorpusFormatError(
                    path,
                    line,
                    Errors.E102.format(
                        start=start, end=end, mention=m.text, length=len(text)
                    ),
                    record=record,
                )
            else:
                err = None
                # the annotation's own text (its locations' text, joined as
                # the source joins it); the mention text is the covered span
                m.extra["bioc_text"] = m.text
                m.text = text[start:end]
        else:
            err = check_mention(path, line, text, m)
        if err is not None:
            policy(err)
            continue
        if "source_text" in infons:
            m.raw_text = infons["source_text"] or ""
        seen_ids[mid] = i
        mentions.append(m)
    relations = []
    for rel in bdoc.relations + [r for p in bdoc.passages for r in p.relations]:
        r, problem = _relation(rel, record)
        if r is None:
            policy(CorpusFormatError(path, line, problem, record=record))
            continue
        relations.append(r)
    extra: Dict[str, Any] = {}
    if bdoc.infons:
        extra["bioc_infons"] = dict(bdoc.infons)
    return SourceDocument(
        doc_id=doc_id,
        text=text,
        passages=passages,
        mentions=mentions,
        relations=relations,
        line=line,
        extra=extra,
    )


def _relation(rel: Any, record: str) -> Tuple[Optional[Dict[str, Any]], str]:
    """(The relation dict of a BioC relation, ""), or (None, the coded
    problem)."""

    def malformed(why: str) -> Tuple[None, str]:
        return None, Errors.E101.format(detail=f"relation {rel.id} of document {record} {why}")

    infons = dict(rel.infons)
    label = infons.get("type") or infons.get("relation") or ""
    level = infons.get("level")
    out: Dict[str, Any]
    if level == "concept" or ("head" in infons and "tail" in infons and not rel.nodes):
        if not infons.get("head") or not infons.get("tail"):
            return malformed("is a concept relation without non-empty head and tail infons")
        out = {
            "level": "concept",
            "head": infons.get("head"),
            "tail": infons.get("tail"),
            "label": label,
        }
    elif "Chemical" in infons and "Disease" in infons and not rel.nodes:
        out = {
            "level": "concept",
            "head": infons["Chemical"],
            "tail": infons["Disease"],
            "label": label,
        }
        infons.pop("relation", None)
        infons.pop("Chemical")
        infons.pop("Disease")
    elif len(rel.nodes) == 2:
        nodes = sorted(rel.nodes, key=lambda n: 0 if n.role in ("head", "Arg1") else 1)
        out = {
            "level": "mention",
            "head": nodes[0].refid,
            "tail": nodes[1].refid,
            "label": label,
        }
    else:
        return malformed("has neither two nodes nor head/tail infons")
    for k, v in infons.items():
        if k in _SKIP_REL_INFONS:
            continue
        if k in _BOOL_FIELDS and v in ("true", "false"):
            out[k] = v == "true"
        elif k == "score":
            score = _score(v)
            if score is None:
                return None, Errors.E114.format(
                    doc_id=record,
                    what=f"the 'score' infon of relation {rel.id}",
                    expected="a finite number",
                    value=show_value(v),
                )
            out[k] = score
        else:
            out[k] = v if v is not None else ""
    return out, ""


def _score(value: Any) -> Optional[float]:
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    return score if math.isfinite(score) else None


read_bioc = docs_reader(
    iter_bioc_records, "bioc", "Stream the Docs of a BioC XML or BioC JSON file (see module docs)."
)


# --- writing ---------------------------------------------------------------


def doc_to_bioc(doc: Doc, *, threshold: float = 0.5) -> Any:
    """A bioc.BioCDocument for a Doc (gold or predicted). A Doc whose
    passages BioC cannot hold (overlapping, or text other than whitespace
    outside them: `losses.bioc_text`) is an error (E110), never a file the
    reader rejects or reads with other offsets."""
    import bioc

    from .losses import bioc_layout_problem

    src = with_relation_arguments(doc, doc_to_source(doc), threshold)
    layout = bioc_layout_problem(src)
    if layout is not None:  # the reader would reject it (E101) or change its text
        raise ValueError(
            Errors.E110.format(
                format="BioC",
                problem=f"document {src.doc_id!r}: {layout}",
                fix="write JSONL (or .spacy), which keep any passages, or convert with "
                "--allow-loss to write the document as one passage",
            )
        )
    bdoc = bioc.BioCDocument()
    bdoc.id = src.doc_id
    for k, v in (src.extra.get("bioc_infons") or {}).items():
        bdoc.infons[k] = v
    passages = []
    for ptype, offset, ptext in src.passages:
        p = bioc.BioCPassage()
        p.offset = offset
        p.text = ptext
        if ptype:
            p.infons["type"] = ptype
        passages.append(p)
        bdoc.add_passage(p)
    by_offsets: Dict[Tuple[int, int], str] = {}
    for m in src.mentions:
        ann = bioc.BioCAnnotation()
        ann.id = m.id
        by_offsets.setdefault((m.start, m.end), m.id)
        ann.infons["type"] = m.type
        if m.kb_id:
            ann.infons["identifier"] = m.kb_id
        if m.components is not None:
            ann.infons["individual_mentions"] = m.components
        # source fields that differ from the cleaned ones (NCBI stray spaces)
        if m.raw_kb_id is not None:
            ann.infons["source_identifier"] = m.raw_kb_id
        if m.raw_text is not None:
            ann.infons["source_text"] = m.raw_text
        locations = m.extra.get("locations") or [[m.start, m.end - m.start]]
        for offset, length in locations:
            ann.add_location(bioc.BioCLocation(offset, length))
        ann.text = m.extra.get("bioc_text", m.extra.get("text", m.text))
        holder = next(
            (p for p in reversed(passages) if p.offset <= m.start),
            passages[0] if passages else bdoc,
        )
        holder.add_annotation(ann)
    relations = list(src.relations)
    if not relations:
        for p in predicted_relations(doc, threshold):
            if p["level"] == "concept":
                relations.append(
                    {"level": "concept", "head": p["head"], "tail": p["tail"],
                     "label": p["label"], "score": p["score"]}
                )
                continue
            head = by_offsets.get(tuple(p["head"]))
            tail = by_offsets.get(tuple(p["tail"]))
            if head and tail:
                relations.append(
                    {
                        "level": "mention",
                        "head": head,
                        "tail": tail,
                        "label": p["label"],
                        "score": p["score"],
                    }
                )
    for i, r in enumerate(relations, start=1):
        rel = bioc.BioCRelation()
        rel.id = f"R{i}"
        rel.infons["type"] = str(r.get("label", ""))
        rel.infons["level"] = str(r.get("level", "mention"))
        if r.get("level") == "concept":
            rel.infons["head"] = str(r["head"])
            rel.infons["tail"] = str(r["tail"])
        else:
            rel.add_node(bioc.BioCNode(str(r["head"]), "head"))
            rel.add_node(bioc.BioCNode(str(r["tail"]), "tail"))
        for k, v in r.items():
            if k in ("level", "head", "tail", "label"):
                continue
            rel.infons[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
        bdoc.add_relation(rel)
    return bdoc


COLLECTION_INFO = {"source": "spacy-biobert", "date": "", "key": "spacy-biobert.key"}
"""The collection header of every BioC file this package writes (`convert`'s
writers and `annotate`'s streamed chunks, `collection_header`)."""


def _collection_info() -> Any:
    import bioc

    c = bioc.BioCCollection()
    c.source = COLLECTION_INFO["source"]
    c.date = COLLECTION_INFO["date"]
    c.key = COLLECTION_INFO["key"]
    return c


def collection_header(fmt: str) -> str:
    """The text before the first document of a BioC output written in chunks
    (`annotate`): "bioc-xml" or "bioc-json"."""
    if fmt == "bioc-xml":
        return (
            "<?xml version='1.0' encoding='utf8' standalone='yes'?>\n<collection>"
            f"<source>{COLLECTION_INFO['source']}</source><date>{COLLECTION_INFO['date']}</date>"
            f"<key>{COLLECTION_INFO['key']}</key>\n"
        )
    head = dict(COLLECTION_INFO, infons={})
    return json.dumps(head, ensure_ascii=False)[:-1] + ', "documents": [\n'


def write_bioc_xml(
    docs: Iterable[Doc], path: Union[str, Path], *, threshold: float = 0.5
) -> int:
    """Write Docs as a BioC XML collection (streamed, atomically); returns
    the count. A document with a character XML 1.0 cannot hold (a control
    character such as NUL, a lone surrogate) is an error (E110): write BioC
    JSON or JSONL."""
    from bioc import biocxml

    n = 0
    with atomic_write(path) as tmp, biocxml.iterwrite(str(tmp)) as writer:
        writer.write_collection_info(_collection_info())
        for doc in docs:
            bdoc = doc_to_bioc(doc, threshold=threshold)
            check_xml_writable(bdoc)
            writer.write_document(bdoc)
            n += 1
    return n


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def check_xml_writable(bdoc: Any) -> None:
    """Raise ValueError (E110) when a string of a BioCDocument holds a
    character that XML 1.0 cannot represent."""
    strings: List[Tuple[str, Any]] = [("id", bdoc.id)]

    def infons(where: str, obj: Any) -> None:
        for k, v in obj.infons.items():
            strings.append((f"{where} infon key", k))
            strings.append((f"{where} infon {k!r}", v))

    infons("document", bdoc)
    for p in bdoc.passages:
        strings.append(("passage text", p.text))
        infons("passage", p)
        for ann in p.annotations:
            strings.extend([("annotation id", ann.id), ("annotation text", ann.text)])
            infons(f"annotation {ann.id}", ann)
    for rel in bdoc.relations:
        strings.append(("relation id", rel.id))
        infons(f"relation {rel.id}", rel)
        for node in rel.nodes:
            strings.extend([("relation node refid", node.refid), ("node role", node.role)])
    for where, value in strings:
        bad = _NOT_XML.search(value) if isinstance(value, str) else None
        if bad is not None:
            raise ValueError(
                Errors.E110.format(
                    format="BioC XML",
                    problem=(
                        f"the {where} of document {bdoc.id!r} holds the character "
                        f"U+{ord(bad.group()):04X}, which XML 1.0 cannot represent"
                    ),
                    fix="remove control characters from the text and annotations, or "
                    "write BioC JSON or JSONL",
                )
            )


def write_bioc_json(
    docs: Iterable[Doc], path: Union[str, Path, TextIO], *, threshold: float = 0.5
) -> int:
    """Write Docs as a BioC JSON collection (a path, streamed and written
    atomically, or an open text file); returns the count."""
    from bioc import biocjson

    info = _collection_info()

    def write(fp: TextIO) -> int:
        n = 0
        head = {"source": info.source, "date": info.date, "key": info.key, "infons": {}}
        fp.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "documents": [\n')
        for doc in docs:
            if n:
                fp.write(",\n")
            fp.write(biocjson.dumps(doc_to_bioc(doc, threshold=threshold), ensure_ascii=False))
            n += 1
        fp.write("\n]}\n")
        return n

    return write_text(path, write)
