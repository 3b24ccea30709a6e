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
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc

from ..errors import Errors
from ._base import (
    CorpusFormatError,
    CorpusStats,
    ErrorPolicy,
    SourceDocument,
    SourceMention,
    check_exists,
    check_mention,
    doc_to_source,
    predicted_relations,
    records_to_docs,
)

ID_INFONS = ("identifier", "MESH", "MeSH", "Identifier", "NCBI Gene", "NCBI_Gene")
_BOOL_FIELDS = ("gold", "gold_only")
_SKIP_REL_INFONS = ("type", "level", "head", "tail")


def _is_json(path: Path) -> bool:
    if path.suffix.lower() == ".json":
        return True
    if path.suffix.lower() == ".xml":
        return False
    with open(path, "rb") as fp:
        head = fp.read(256).lstrip()
    return head.startswith(b"{")


def iter_bioc_records(
    path: Union[str, Path],
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
) -> Iterator[SourceDocument]:
    """Stream the documents of a BioC XML (.xml) or BioC JSON (.json) file."""
    path = check_exists(path)
    stats = stats if stats is not None else CorpusStats()
    if not stats.path:
        stats.path = str(path)
    policy = ErrorPolicy(on_error, stats)
    with open(path, "rb") as fp:
        empty = not fp.read(4096).strip()
    if empty:
        raise CorpusFormatError(path, 0, Errors.E105)
    docs = _iter_json(path) if _is_json(path) else _iter_xml(path)
    n = 0
    for line, bdoc in docs:
        n += 1
        if isinstance(bdoc, CorpusFormatError):
            policy(bdoc, document=True)
            continue
        rec = _to_record(path, line, bdoc, policy)
        if rec is not None:
            yield rec
    if n == 0:
        raise CorpusFormatError(path, 0, Errors.E105)


def _iter_xml(path: Path) -> Iterator[Tuple[int, Any]]:
    from bioc import biocxml
    from lxml import etree

    context = etree.iterparse(str(path), events=("end",), tag="document")
    try:
        for _, elem in context:
            line = elem.sourceline or 0
            xml = b"<collection>" + etree.tostring(elem) + b"</collection>"
            try:
                bdoc: Any = biocxml.loads(xml.decode("utf8")).documents[0]
            except (KeyError, ValueError, TypeError) as err:
                bdoc = CorpusFormatError(
                    path,
                    line,
                    Errors.E101.format(
                        detail=f"not a valid BioC document (missing or bad {err})"
                    ),
                )
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
        raise CorpusFormatError(
            path, line, Errors.E101.format(detail=f"not well-formed XML ({msg})")
        ) from None


def _iter_json(path: Path) -> Iterator[Tuple[int, Any]]:
    from bioc import biocjson

    raw = path.read_bytes()
    try:
        text = raw.decode("utf8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise CorpusFormatError(
            path, line, Errors.E104.format(encoding="UTF8", reason=err)
        ) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise CorpusFormatError(
            path, err.lineno, Errors.E101.format(detail=f"not valid JSON ({err.msg})")
        ) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("documents"), list):
        raise CorpusFormatError(
            path,
            1,
            Errors.E101.format(detail="a BioC JSON collection needs a 'documents' list"),
        )
    for i, dobj in enumerate(obj["documents"]):
        line = _json_line(text, dobj.get("id") if isinstance(dobj, dict) else None)
        try:
            bdoc: Any = biocjson.decoder.parse_doc(dobj)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            bdoc = CorpusFormatError(
                path,
                line,
                Errors.E101.format(
                    detail=(
                        f"document #{i + 1} is not a valid BioC document (missing or "
                        f"bad {err})"
                    )
                ),
            )
        yield line, bdoc


def _json_line(text: str, doc_id: Optional[str]) -> int:
    if doc_id is None:
        return 0
    for needle in (f'"id": "{doc_id}"', f'"id":"{doc_id}"'):
        pos = text.find(needle)
        if pos >= 0:
            return text.count("\n", 0, pos) + 1
    return 0


def _to_record(
    path: Path, line: int, bdoc: Any, policy: ErrorPolicy
) -> Optional[SourceDocument]:
    doc_id = bdoc.id or ""
    passages: List[Tuple[str, int, str]] = []
    parts: List[str] = []
    length = 0
    for p in sorted(bdoc.passages, key=lambda p: p.offset):
        ptext = p.text or ""
        if p.offset < length:
            policy(
                CorpusFormatError(
                    path,
                    line,
                    Errors.E101.format(
                        detail=(
                            f"passage at offset {p.offset} of document {doc_id} "
                            f"overlaps the previous passage (which ends at {length})"
                        )
                    ),
                ),
                document=True,
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
    for i, ann in enumerate(annotations, start=1):
        if not ann.locations:
            policy(
                CorpusFormatError(
                    path,
                    line,
                    Errors.E101.format(
                        detail=f"annotation {ann.id} of document {doc_id} has no location"
                    ),
                )
            )
            continue
        start = min(loc.offset for loc in ann.locations)
        end = max(loc.offset + loc.length for loc in ann.locations)
        infons = dict(ann.infons)
        kb_id = next((infons[k] for k in ID_INFONS if infons.get(k) is not None), "")
        m = SourceMention(
            id=ann.id or f"A{i}",
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
        if infons.get("source_identifier") is not None:
            m.raw_kb_id = infons["source_identifier"]
        if len(ann.locations) > 1:
            m.extra["locations"] = [[loc.offset, loc.length] for loc in ann.locations]
            if not (0 <= start <= end <= len(text)):
                err: Optional[CorpusFormatError] = CorpusFormatError(
                    path,
                    line,
                    Errors.E102.format(
                        start=start, end=end, mention=m.text, length=len(text)
                    ),
                )
            else:
                err = None
                m.extra["text"] = m.text
                m.text = text[start:end]
        else:
            err = check_mention(path, line, text, m)
        if err is not None:
            policy(err)
            continue
        if infons.get("source_text") is not None:
            m.raw_text = infons["source_text"]
        mentions.append(m)
    relations = []
    for rel in bdoc.relations + [r for p in bdoc.passages for r in p.relations]:
        r = _relation(rel)
        if r is None:
            policy(
                CorpusFormatError(
                    path,
                    line,
                    Errors.E101.format(
                        detail=(
                            f"relation {rel.id} of document {doc_id} has neither two "
                            "nodes nor head/tail infons"
                        )
                    ),
                )
            )
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


def _relation(rel: Any) -> Optional[Dict[str, Any]]:
    infons = dict(rel.infons)
    label = infons.get("type") or infons.get("relation") or ""
    level = infons.get("level")
    out: Dict[str, Any]
    if level == "concept" or ("head" in infons and "tail" in infons and not rel.nodes):
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
        return None
    for k, v in infons.items():
        if k in _SKIP_REL_INFONS:
            continue
        if k in _BOOL_FIELDS:
            out[k] = v == "true"
        elif k == "score":
            out[k] = float(v)
        else:
            out[k] = v if v is not None else ""
    return out


def read_bioc(
    path: Union[str, Path],
    nlp_or_vocab: Any = None,
    *,
    on_error: str = "raise",
    limit: Optional[int] = None,
    label_map: Optional[Dict[str, str]] = None,
    stats: Optional[CorpusStats] = None,
) -> Iterator[Doc]:
    """Stream the Docs of a BioC XML or BioC JSON file (see module docs)."""
    stats = stats if stats is not None else CorpusStats()
    stats.path = str(path)
    records = iter_bioc_records(path, on_error=on_error, stats=stats)
    yield from records_to_docs(
        records, nlp_or_vocab, stats=stats, limit=limit, label_map=label_map, source_format="bioc"
    )


# --- writing ---------------------------------------------------------------


def doc_to_bioc(doc: Doc, *, threshold: float = 0.5) -> Any:
    """A bioc.BioCDocument for a Doc (gold or predicted)."""
    import bioc

    src = doc_to_source(doc)
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
        ann.text = m.extra.get("text", m.text)
        holder = next(
            (p for p in reversed(passages) if p.offset <= m.start),
            passages[0] if passages else bdoc,
        )
        holder.add_annotation(ann)
    relations = list(src.relations)
    if not relations:
        for p in predicted_relations(doc, threshold):
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


def _collection_info() -> Any:
    import bioc

    c = bioc.BioCCollection()
    c.source = "spacy-biobert"
    c.date = ""
    c.key = "spacy-biobert.key"
    return c


def write_bioc_xml(
    docs: Iterable[Doc], path: Union[str, Path], *, threshold: float = 0.5
) -> int:
    """Write Docs as a BioC XML collection (streamed); returns the count."""
    from bioc import biocxml

    n = 0
    with biocxml.iterwrite(str(path)) as writer:
        writer.write_collection_info(_collection_info())
        for doc in docs:
            writer.write_document(doc_to_bioc(doc, threshold=threshold))
            n += 1
    return n


def write_bioc_json(
    docs: Iterable[Doc], path: Union[str, Path], *, threshold: float = 0.5
) -> int:
    """Write Docs as a BioC JSON collection (streamed); returns the count."""
    from bioc import biocjson

    info = _collection_info()
    n = 0
    with open(path, "w", encoding="utf8", newline="\n") as fp:
        head = {"source": info.source, "date": info.date, "key": info.key, "infons": {}}
        fp.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "documents": [\n')
        for doc in docs:
            if n:
                fp.write(",\n")
            fp.write(
                biocjson.dumps(doc_to_bioc(doc, threshold=threshold), ensure_ascii=False)
            )
            n += 1
        fp.write("\n]}\n")
    return n
