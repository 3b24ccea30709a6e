"""JSONL: one JSON object per line and document.

```
{"id": "227508",
 "text": "Naloxone reverses ...",
 "passages": [{"type": "title", "offset": 0, "length": 59}, ...],
 "mentions": [{"id": "M1", "start": 0, "end": 8, "text": "Naloxone",
               "type": "Chemical", "kb_id": "D009270"}, ...],
 "relations": [{"level": "concept", "head": "D008750", "tail": "D007022",
                "label": "CID"}, ...],
 "predicted_relations": [{"head": "M1", "tail": "M3", "label": "CID",
                          "score": 0.93}, ...],
 "source": {...}}
```
"mentions" are `doc.spans["mentions"]` (or `doc.ents` on predicted Docs),
with optional "components" (BC5CDR 7th column) and the other round-trip
fields of `user_data[SOURCE_KEY]`; "relations" are `doc._.gold_relations`;
"predicted_relations" are `doc._.relations` with p >= threshold (written
only when present). Only "text" is required when reading, so plain
`{"text": ...}` lines (optionally with "id") are accepted too.
"""

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, TextIO, Union

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
    iter_lines,
    predicted_relations,
    records_to_docs,
)

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
    path: Union[str, Path],
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
) -> Iterator[SourceDocument]:
    """Stream the documents of a JSONL file (format in the module docs)."""
    path = check_exists(path)
    stats = stats if stats is not None else CorpusStats()
    if not stats.path:
        stats.path = str(path)
    policy = ErrorPolicy(on_error, stats)
    any_content = False
    for lineno, line in iter_lines(path):
        if isinstance(line, CorpusFormatError):
            any_content = True
            policy(line, document=True)
            continue
        if not line.strip():
            continue
        any_content = True
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            policy(
                CorpusFormatError(
                    path, lineno, Errors.E101.format(detail=f"not valid JSON ({err.msg})")
                ),
                document=True,
            )
            continue
        rec = _record(path, lineno, obj, policy)
        if rec is not None:
            yield rec
    if not any_content:
        raise CorpusFormatError(path, 0, Errors.E105)


def _record(
    path: Path, lineno: int, obj: Any, policy: ErrorPolicy
) -> Optional[SourceDocument]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        policy(
            CorpusFormatError(
                path,
                lineno,
                Errors.E101.format(
                    detail="each line must be a JSON object with a 'text' string"
                ),
            ),
            document=True,
        )
        return None
    text = obj["text"]
    doc_id = str(obj.get("id", ""))
    passages = [
        (
            p.get("type", ""),
            int(p["offset"]),
            text[int(p["offset"]) : int(p["offset"]) + int(p["length"])],
        )
        for p in obj.get("passages") or []
        if isinstance(p, dict) and "offset" in p and "length" in p
    ] or [("text", 0, text)]
    mentions: List[SourceMention] = []
    for i, m in enumerate(obj.get("mentions") or [], start=1):
        try:
            mention = SourceMention(
                id=str(m.get("id") or f"M{i}"),
                start=int(m["start"]),
                end=int(m["end"]),
                text=str(m["text"])
                if "text" in m
                else text[int(m["start"]) : int(m["end"])],
                type=str(m.get("type", m.get("label", ""))),
                kb_id=str(m.get("kb_id", "")),
                components=m.get("components"),
                raw_text=m.get("raw_text"),
                raw_kb_id=m.get("raw_kb_id"),
                extra={
                    k: v for k, v in m.items() if k not in _MENTION_FIELDS and k != "label"
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            policy(
                CorpusFormatError(
                    path,
                    lineno,
                    Errors.E101.format(
                        detail=f"mention #{i} needs integer 'start' and 'end' ({err})"
                    ),
                )
            )
            continue
        error = check_mention(path, lineno, text, mention)
        if error is not None:
            policy(error)
            continue
        mentions.append(mention)
    relations = [dict(r) for r in obj.get("relations") or [] if isinstance(r, dict)]
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


def read_jsonl(
    path: Union[str, Path],
    nlp_or_vocab: Any = None,
    *,
    on_error: str = "raise",
    limit: Optional[int] = None,
    label_map: Optional[Dict[str, str]] = None,
    stats: Optional[CorpusStats] = None,
) -> Iterator[Doc]:
    """Stream the Docs of a JSONL file."""
    stats = stats if stats is not None else CorpusStats()
    stats.path = str(path)
    records = iter_jsonl_records(path, on_error=on_error, stats=stats)
    yield from records_to_docs(
        records, nlp_or_vocab, stats=stats, limit=limit, label_map=label_map, source_format="jsonl"
    )


def doc_to_json(doc: Doc, *, threshold: float = 0.5) -> Dict[str, Any]:
    """The JSONL object of one Doc (gold or predicted)."""
    src = doc_to_source(doc)
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
        preds.append(
            {
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
    """Write Docs as JSONL (a path or an open text file); returns the count."""
    if hasattr(path, "write"):
        return _write(docs, path, threshold)  # type: ignore[arg-type]
    with open(path, "w", encoding="utf8", newline="\n") as fp:
        return _write(docs, fp, threshold)


def _write(docs: Iterable[Doc], fp: TextIO, threshold: float) -> int:
    n = 0
    for doc in docs:
        fp.write(
            json.dumps(doc_to_json(doc, threshold=threshold), ensure_ascii=False) + "\n"
        )
        n += 1
    return n
