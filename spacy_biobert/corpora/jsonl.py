"""JSONL: one JSON object per line and document.

```
{"id": "227508",
 "text": "Naloxone reverses ...",
 "passages": [{"type": "title", "offset": 0, "length": 59}, ...],
 "mentions": [{"id": "M1", "start": 0, "end": 8, "text": "Naloxone",
               "type": "Chemical", "kb_id": "D009270"}, ...],
 "relations": [{"level": "concept", "head": "D008750", "tail": "D007022",
                "label": "CID"}, ...],
 "predicted_relations": [{"level": "concept", "head": "D008750",
                          "tail": "D007022", "label": "CID", "score": 0.93},
                         {"level": "mention", "head": "M1", "tail": "M3",
                          "head_span": [0, 8], "tail_span": [60, 71],
                          "label": "CPR:4", "score": 0.88}, ...],
 "source": {...}}
```
"mentions" are `doc.spans["mentions"]` (or `doc.ents` on predicted Docs),
with optional "components" (BC5CDR 7th column) and the other round-trip
fields of `user_data[SOURCE_KEY]`; "relations" are `doc._.gold_relations`;
"predicted_relations" are the relations with p >= threshold (written only
when present) as `spacy_biobert.extensions.predicted_relations` gives them:
document-level ones (BC5CDR CID: kb ids, from `doc._.kb_relations`, what the
scorer scores) and mention-level ones (ChemProt: mention ids and offsets).
Only "text" is required when reading, so plain `{"text": ...}` lines (optionally with "id") are accepted too.
A relation is an object with "head", "tail" and "label" strings and a "level"
of "concept" (non-empty ids) or "mention" (the default); another is E114.

Prodigy / spaCy span JSONL (`prodigy db-out` of `ner.manual`, `spans.manual`,
`rel.manual`) is read as well, when a line has "spans" and no "mentions":

```
{"text": "Aspirin caused nausea.", "tokens": [...],
 "spans": [{"start": 0, "end": 7, "token_start": 0, "token_end": 0, "label": "Drug"}, ...],
 "relations": [{"head": 0, "child": 2, "label": "CAUSES",
                "head_span": {"start": 0, "end": 7, ...}, "child_span": {...}}],
 "answer": "accept"}
```
Spans become mentions (ids "M1"... in order, or the span's "id"), relations
mention-level gold relations from the head span to the child span (found by
"head_span"/"child_span" offsets, else by the token indices "head"/"child"
within a span). Lines answered "reject" or "ignore" are left out and counted
(W807). Other shapes are refused with what to convert (E811): spaCy v2
"entities" offsets, or Prodigy relations without "spans".
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, TextIO, Tuple, Union

from spacy.tokens import Doc

from ..errors import Errors
from ..extensions import predicted_relations
from .checks import DEFAULT_MAX_CHARS, check_length, find_lone_surrogate, is_int, load_json, show_value
from .errors import CorpusFormatError, CorpusStats, ErrorPolicy, malformed
from .io import Source, write_text
from .reading import docs_reader, document_lines, start_reading
from .records import SourceDocument, SourceMention, check_mention, doc_to_source, with_relation_arguments

_MENTION_FIELDS = (
    "id",
    "start",
    "end",
    "text",
    "type",
    "kb_id",
    "components",
    "raw_text",
    "raw_kb_id",
)


def iter_jsonl_records(
    path: Source,
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> Iterator[SourceDocument]:
    """Stream the documents of a JSONL file (a path, maybe ending in ".gz",
    or an open binary or text stream; format in the module docs).
    A value of the wrong type is a bad record (E114: a bad document-level
    value or a lone surrogate skips the document, a bad mention or relation
    that item), and so is a text longer than `max_chars` (E113)."""
    reading = start_reading(path, on_error, stats, max_chars)
    for lineno, line in document_lines(reading, universal_newlines=False):
        obj, problem, _ = load_json(line)
        if problem is not None:
            reading.policy(malformed(reading.name, lineno, problem), document=True)
            continue
        rec = _record(reading.name, lineno, obj, reading.policy, max_chars)
        if rec is not None:
            yield rec


_RESERVED_SOURCE = ("format", "passages", "mentions")
_OPTIONAL_STR_FIELDS = ("components", "raw_text", "raw_kb_id")


def _record(
    path: Union[str, Path],
    lineno: int,
    obj: Any,
    policy: ErrorPolicy,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> Optional[SourceDocument]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        detail = "each line must be a JSON object with a 'text' string"
        policy(malformed(path, lineno, detail), document=True)
        return None
    text = obj["text"]
    answer = obj.get("answer")
    if answer in ("reject", "ignore") and "spans" in obj:
        skipped = policy.stats.skipped_annotations
        key = f"Prodigy document answered {answer!r}"
        skipped[key] = skipped.get(key, 0) + 1
        return None
    raw_id = obj.get("id")
    doc_id = "" if raw_id is None else str(raw_id) if is_int(raw_id) else raw_id
    record = doc_id if isinstance(doc_id, str) and doc_id else f"at line {lineno}"
    problem = _document_problem(obj, doc_id)
    if problem is not None:
        what, expected, value = problem
        policy(
            CorpusFormatError(
                path,
                lineno,
                Errors.E114.format(doc_id=record, what=what, expected=expected, value=value),
                record=record,
            ),
            document=True,
        )
        return None
    too_long = check_length(path, lineno, record, len(text), max_chars)
    if too_long is not None:
        policy(too_long, document=True)
        return None
    passages = [
        (p.get("type", ""), p["offset"], text[p["offset"] : p["offset"] + p["length"]])
        for p in obj.get("passages") or []
    ] or [("text", 0, text)]
    shape = _refused_shape(obj)
    if shape is not None:
        policy(
            CorpusFormatError(path, lineno, Errors.E811.format(doc_id=record, shape=shape), record=record),
            document=True,
        )
        return None
    if obj.get("mentions") is None and obj.get("spans") is not None:
        mentions, relations = _prodigy(path, lineno, obj, text, record, policy)
        return SourceDocument(
            doc_id=doc_id, text=text, passages=passages, mentions=mentions, relations=relations,
            line=lineno, extra=dict(obj.get("source") or {}),
        )
    mentions: List[SourceMention] = []
    for i, m in enumerate(obj.get("mentions") or [], start=1):
        bad = _mention_problem(m, text)
        if bad is not None:
            policy(
                CorpusFormatError(
                    path,
                    lineno,
                    Errors.E114.format(
                        doc_id=record, what=f"mention #{i} {bad[0]}", expected=bad[1], value=bad[2]
                    ),
                    record=record,
                )
            )
            continue
        mention = SourceMention(
            id=str(m.get("id") or f"M{i}"),
            start=m["start"],
            end=m["end"],
            text=m["text"] if "text" in m else text[m["start"] : m["end"]],
            type=m.get("type", m.get("label", "")),
            kb_id=m.get("kb_id", ""),
            components=m.get("components"),
            raw_text=m.get("raw_text"),
            raw_kb_id=m.get("raw_kb_id"),
            extra={k: v for k, v in m.items() if k not in _MENTION_FIELDS and k != "label"},
        )
        error = check_mention(path, lineno, text, mention)
        if error is not None:
            policy(error)
            continue
        mentions.append(mention)
    relations = []
    for i, r in enumerate(obj.get("relations") or [], start=1):
        bad = _relation_problem(r)
        if bad is not None:
            policy(
                CorpusFormatError(
                    path,
                    lineno,
                    Errors.E114.format(
                        doc_id=record, what=f"relation #{i}{bad[0]}", expected=bad[1], value=bad[2]
                    ),
                    record=record,
                )
            )
            continue
        relations.append(dict(r))
    extra = dict(obj.get("source") or {})
    return SourceDocument(
        doc_id=doc_id,
        text=text,
        passages=passages,
        mentions=mentions,
        relations=relations,
        line=lineno,
        extra=extra,
    )


def _refused_shape(obj: Dict[str, Any]) -> Optional[str]:
    """What a line holds that looks like annotations in a shape this reader
    does not read (and would otherwise drop), or None."""
    if obj.get("mentions") is not None:
        return None
    if obj.get("entities") is not None or obj.get("ents") is not None:
        key = "entities" if obj.get("entities") is not None else "ents"
        return (
            f"'{key}' (spaCy v2 style offsets); write them as \"mentions\": [{{\"start\": 0, "
            f"\"end\": 7, \"type\": \"Drug\"}}] or as Prodigy \"spans\" with start, end and label"
        )
    relations = obj.get("relations")
    if obj.get("spans") is None and isinstance(relations, list) and any(
        isinstance(r, dict) and "child" in r for r in relations
    ):
        return (
            "Prodigy relations (head/child) but no \"spans\", so their arguments name no "
            "entity; export the task with its \"spans\" (rel.manual with --span-label or "
            "spans), or convert relations to mention ids (\"mentions\" + \"relations\" with "
            "head/tail ids)"
        )
    return None


def _prodigy(
    path: Union[str, Path], lineno: int, obj: Dict[str, Any], text: str, record: str, policy: ErrorPolicy
) -> Tuple[List[SourceMention], List[Dict[str, Any]]]:
    """Mentions and relations of a Prodigy / spaCy span line (module docs)."""

    def bad(what: str, expected: str, value: Any) -> None:
        policy(
            CorpusFormatError(
                path, lineno,
                Errors.E114.format(doc_id=record, what=what, expected=expected, value=show_value(value)),
                record=record,
            )
        )

    spans = obj.get("spans")
    if not isinstance(spans, list):
        bad("'spans'", "a list", spans)
        return [], []
    mentions: List[SourceMention] = []
    token_ranges: List[Tuple[int, int, str]] = []  # (token_start, token_end, mention id)
    by_offsets: Dict[Tuple[int, int], str] = {}
    used = set()
    for i, span in enumerate(spans, start=1):
        problem = _mention_problem(span, text)
        if problem is None and not isinstance(span.get("label"), str):
            problem = ("'label'", "a string", show_value(span.get("label")))
        if problem is not None:
            bad(f"span #{i} {problem[0]}", problem[1], problem[2])
            continue
        mid = str(span["id"]) if span.get("id") not in (None, "") else f"M{i}"
        while mid in used:
            mid += "_"
        mention = SourceMention(
            id=mid, start=span["start"], end=span["end"], text=text[span["start"] : span["end"]],
            type=span["label"], kb_id=span.get("kb_id", "") if isinstance(span.get("kb_id"), str) else "",
        )
        error = check_mention(path, lineno, text, mention)
        if error is not None:
            policy(error)
            continue
        used.add(mid)
        mentions.append(mention)
        by_offsets.setdefault((mention.start, mention.end), mid)
        if is_int(span.get("token_start")) and is_int(span.get("token_end")):
            token_ranges.append((span["token_start"], span["token_end"], mid))
    tokens = obj.get("tokens") if isinstance(obj.get("tokens"), list) else []

    def argument(rel: Dict[str, Any], key: str) -> Optional[str]:
        span = rel.get(f"{key}_span")
        if isinstance(span, dict) and is_int(span.get("start")) and is_int(span.get("end")):
            found = by_offsets.get((span["start"], span["end"]))
            if found is not None:
                return found
        index = rel.get(key)
        if not is_int(index):
            return None
        for start, end, mid in token_ranges:
            if start <= index <= end:
                return mid
        if 0 <= index < len(tokens) and isinstance(tokens[index], dict):
            tok = tokens[index]
            for m in mentions:
                if is_int(tok.get("start")) and m.start <= tok["start"] < m.end:
                    return m.id
        return None

    relations: List[Dict[str, Any]] = []
    for i, rel in enumerate(obj.get("relations") or [], start=1):
        if not isinstance(rel, dict) or not isinstance(rel.get("label"), str):
            bad(f"relation #{i}", "a JSON object with a 'label' string", rel)
            continue
        head, tail = argument(rel, "head"), argument(rel, "child")
        if head is None or tail is None:
            key = "head" if head is None else "child"
            bad(
                f"relation #{i} '{key}'",
                "the token index of one of its \"spans\" (or a matching \"" + key + "_span\")",
                rel.get(key),
            )
            continue
        relations.append({"level": "mention", "head": head, "tail": tail, "label": rel["label"]})
    return mentions, relations


def _document_problem(obj: Dict[str, Any], doc_id: Any) -> Optional[Tuple[str, str, str]]:
    """(what, expected, found) for the first document-level value of a JSONL
    object that is not what the format says, or None."""
    text = obj["text"]
    if not isinstance(doc_id, str):
        return ("'id'", "a string or an integer", show_value(obj.get("id")))
    surrogate = find_lone_surrogate(obj)
    if surrogate is not None:
        return ("every string", "valid Unicode text (writable as UTF-8)", surrogate)
    for key in ("passages", "mentions", "relations", "spans"):
        if obj.get(key) is not None and not isinstance(obj[key], list):
            return (f"'{key}'", "a list", show_value(obj[key]))
    for i, p in enumerate(obj.get("passages") or [], start=1):
        if not isinstance(p, dict):
            return (f"passage #{i}", "a JSON object", show_value(p))
        for key in ("offset", "length"):
            if not is_int(p.get(key)) or p[key] < 0:
                return (f"passage #{i} '{key}'", "an integer >= 0", show_value(p.get(key)))
        if p["offset"] + p["length"] > len(text):
            return (
                f"passage #{i} (offset {p['offset']}, length {p['length']})",
                f"inside the text ({len(text)} characters)",
                "past its end",
            )
        if not isinstance(p.get("type", ""), str):
            return (f"passage #{i} 'type'", "a string", show_value(p["type"]))
    source = obj.get("source")
    if source is not None:
        if not isinstance(source, dict):
            return ("'source'", "a JSON object", show_value(source))
        reserved = [k for k in _RESERVED_SOURCE if k in source]
        if reserved:
            return ("'source'", f"an object without the keys {reserved}", "them")
        infons = source.get("bioc_infons")
        if infons is not None and not _is_infons(infons):
            return ("'source' 'bioc_infons'", "an object of strings", show_value(infons))
        if not isinstance(source.get("separator", ""), str):
            return ("'source' 'separator'", "a string", show_value(source["separator"]))
    return None


def _is_infons(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(v, str) or v is None for v in value.values()
    )


def _mention_problem(m: Any, text: str) -> Optional[Tuple[str, str, str]]:
    if not isinstance(m, dict):
        return ("", "a JSON object", show_value(m))
    for key in ("start", "end"):
        if not is_int(m.get(key)):
            return (f"'{key}'", "an integer", show_value(m.get(key)))
    if "id" in m and not (isinstance(m["id"], str) or is_int(m["id"])):
        return ("'id'", "a string or an integer", show_value(m["id"]))
    for key in ("text", "type", "label", "kb_id"):
        if key in m and not isinstance(m[key], str):
            return (f"'{key}'", "a string", show_value(m[key]))
    for key in _OPTIONAL_STR_FIELDS:
        if m.get(key) is not None and not isinstance(m[key], str):
            return (f"'{key}'", "a string or null", show_value(m[key]))
    locations = m.get("locations")
    if locations is not None and not (
        isinstance(locations, list)
        and all(
            isinstance(loc, list) and len(loc) == 2 and all(is_int(x) and x >= 0 for x in loc)
            for loc in locations
        )
    ):
        return ("'locations'", "a list of [offset, length] pairs", show_value(locations))
    return None


def _relation_problem(r: Any) -> Optional[Tuple[str, str, str]]:
    """(where, expected, found) for a relation that is not what every reader
    gives and every writer takes: an object with "head", "tail" and "label"
    strings, "level" "concept" (non-empty head and tail: ids) or "mention"
    (the default: mention ids)."""
    if not isinstance(r, dict):
        return ("", "a JSON object", show_value(r))
    level = r.get("level", "mention")
    if level not in ("concept", "mention"):
        return (" 'level'", "'concept' or 'mention'", show_value(level))
    for key in ("head", "tail", "label"):
        if not isinstance(r.get(key), str):
            return (f" '{key}'", "a string", show_value(r.get(key)))
    for key in ("head", "tail"):
        if level == "concept" and not r[key].strip():
            return (f" '{key}'", "a non-empty id (a concept relation)", show_value(r[key]))
    return None


read_jsonl = docs_reader(iter_jsonl_records, "jsonl", "Stream the Docs of a JSONL file.")


def doc_to_json(doc: Doc, *, threshold: float = 0.5) -> Dict[str, Any]:
    """The JSONL object of one Doc (gold or predicted)."""
    src = with_relation_arguments(doc, doc_to_source(doc), threshold)
    mentions = []
    by_offsets: Dict[Any, str] = {}
    for m in src.mentions:
        item: Dict[str, Any] = {
            "id": m.id,
            "start": m.start,
            "end": m.end,
            "text": m.text,
            "type": m.type,
            "kb_id": m.kb_id,
        }
        by_offsets.setdefault((m.start, m.end), m.id)
        for key in ("components", "raw_text", "raw_kb_id"):
            if getattr(m, key) is not None:
                item[key] = getattr(m, key)
        item.update(m.extra)
        mentions.append(item)
    out: Dict[str, Any] = {
        "id": src.doc_id,
        "text": src.text,
        "passages": [
            {"type": t, "offset": o, "length": len(x)} for t, o, x in src.passages
        ],
        "mentions": mentions,
        "relations": [dict(r) for r in src.relations],
    }
    preds = []
    for p in predicted_relations(doc, threshold):
        if p["level"] == "concept":
            preds.append(p)
            continue
        preds.append(
            {
                "level": "mention",
                "head": by_offsets.get(tuple(p["head"])),
                "tail": by_offsets.get(tuple(p["tail"])),
                "head_span": p["head"],
                "tail_span": p["tail"],
                "label": p["label"],
                "score": p["score"],
            }
        )
    if preds:
        out["predicted_relations"] = preds
    if src.extra:
        out["source"] = src.extra
    return out


def write_jsonl(
    docs: Iterable[Doc], path: Union[str, Path, TextIO], *, threshold: float = 0.5
) -> int:
    """Write Docs as JSONL (a path, written atomically, or an open text
    file); returns the count."""
    return write_text(path, lambda fp: _write(docs, fp, threshold))


def _write(docs: Iterable[Doc], fp: TextIO, threshold: float) -> int:
    n = 0
    for doc in docs:
        fp.write(
            json.dumps(doc_to_json(doc, threshold=threshold), ensure_ascii=False) + "\n"
        )
        n += 1
    return n
