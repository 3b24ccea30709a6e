"""ChemProt (BioCreative VI track 5) TSV files.

A split is four TAB-separated files with a common prefix, e.g.
`chemprot_training/chemprot_training_{abstracts,entities,relations,gold_standard}.tsv`:

- abstracts: `PMID TITLE ABSTRACT`
- entities: `PMID T<n> TYPE START END MENTION`, offsets into
  TITLE + <TAB> + ABSTRACT. The Doc text is TITLE + " " + ABSTRACT (same
  offsets); the TAB is restored when writing (`user_data[SOURCE_KEY]
  ["separator"]`).
- relations: `PMID CPR:n EVAL_FLAG RELATION Arg1:T<i> Arg2:T<j>`; EVAL_FLAG
  is "Y " or "N " (with a trailing space in the files).
- gold_standard: `PMID CPR:n Arg1:T<i> Arg2:T<j>`: the evaluated subset.

Relations become mention-level gold relations:
`{"level": "mention", "head": "T<i>", "tail": "T<j>", "label": "CPR:n",
"relation": RELATION, "eval": "Y"|"N", "gold": bool}`; "gold" is True when
the (group, Arg1, Arg2) triple is in the gold_standard file (on the real
data, exactly the eval "Y" relations, duplicates apart). Mentions have no
normalised id (`kb_id_` = ""). The entities and relations files are indexed
by PMID in memory (a few MB); the abstracts file is streamed.
"""

import re
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Set, Tuple, Union

from spacy.tokens import Doc

from ..errors import Errors
from ..extensions import predicted_relations
from .checks import DEFAULT_MAX_CHARS, check_length
from .errors import CorpusFormatError, CorpusStats, ErrorPolicy, malformed
from .io import atomic_write_many, is_stream, iter_lines
from .reading import docs_reader, document_lines, start_reading
from .records import (
    SourceDocument,
    SourceMention,
    check_mention,
    doc_to_source,
    title_abstract_passages,
    title_and_abstract,
    with_relation_arguments,
)

SUFFIXES = ("abstracts", "entities", "relations", "gold_standard")
EVAL_GROUPS = ("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9")
_ARG = re.compile(r"^Arg([12]):(\S+)$")
_SEPARATORS = ("\t", "\n", "\r")


def find_chemprot_files(path: Union[str, Path]) -> Dict[str, Optional[Path]]:
    """The split's files by suffix, from a folder (one *_abstracts.tsv in it)
    or a prefix (PREFIX_abstracts.tsv). Only abstracts is required."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*_abstracts.tsv"))
        if len(found) != 1:
            raise FileNotFoundError(
                Errors.E106.format(
                    what=(
                        f"exactly one *_abstracts.tsv file in '{path}' ({len(found)} there)"
                    ),
                    fix="pass the ChemProt split folder (e.g. chemprot/chemprot_training) "
                    "or a file prefix (e.g. .../chemprot_training/chemprot_training)",
                )
            )
        prefix = str(found[0])[: -len("_abstracts.tsv")]
    else:
        prefix = str(path)
        for suffix in SUFFIXES:
            if prefix.endswith(f"_{suffix}.tsv"):
                prefix = prefix[: -len(f"_{suffix}.tsv")]
    files: Dict[str, Optional[Path]] = {}
    for suffix in SUFFIXES:
        p = Path(f"{prefix}_{suffix}.tsv")
        files[suffix] = p if p.exists() else None
    if files["abstracts"] is None:
        raise FileNotFoundError(
            Errors.E106.format(
                what=f"ChemProt abstracts file '{prefix}_abstracts.tsv'",
                fix="pass the ChemProt split folder or the common file prefix",
            )
        )
    return files


def _index(
    path: Optional[Path], ncols: int, policy: ErrorPolicy
) -> Dict[str, List[Tuple[int, List[str]]]]:
    """Rows by PMID. A line repeated verbatim is dropped and counted
    (`stats.duplicate_lines`, W105)."""
    index: Dict[str, List[Tuple[int, List[str]]]] = {}
    if path is None:
        return index
    seen: Set[str] = set()
    for lineno, line in iter_lines(path):
        if isinstance(line, CorpusFormatError):
            policy(line)
            continue
        if not line:  # only an empty line is blank: '\u2028' may be an id
            continue
        if line in seen:
            policy.stats.add_duplicate_line(path, lineno)
            continue
        seen.add(line)
        cols = line.split("\t")
        if len(cols) != ncols:
            detail = f"{len(cols)} tab-separated columns, expected {ncols}: {line[:100]!r}"
            policy(malformed(path, lineno, detail))
            continue
        index.setdefault(cols[0], []).append((lineno, cols))
    return index


def iter_chemprot_records(
    path: Union[str, Path],
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> Iterator[SourceDocument]:
    """Stream the documents of a ChemProt split (folder or file prefix).

    Nothing is dropped silently: a missing entities, relations or
    gold_standard file is counted (`stats.missing_files`, warning W106); a
    line repeated verbatim in any file is dropped and counted
    (`stats.duplicate_lines`, W105; a repeated abstracts line also counts as
    a duplicate document, `stats.duplicates`); a PMID repeated with other
    content (E111), an entity id used twice in a document (E116), a document
    longer than `max_chars` (E113) and malformed lines are bad records.
    """
    if is_stream(path):
        raise ValueError(
            Errors.E118.format(
                format="ChemProt", why="a split is up to four files found by name",
                fix="pass the split folder or the common file prefix",
            )
        )
    files = find_chemprot_files(path)
    reading = start_reading(path, on_error, stats, max_chars, check_path=False)
    stats, policy = reading.stats, reading.policy
    prefix = str(files["abstracts"])[: -len("_abstracts.tsv")]
    stats.missing_files.extend(
        f"{prefix}_{suffix}.tsv" for suffix in SUFFIXES[1:] if files[suffix] is None
    )
    entities = _index(files["entities"], 6, policy)
    relations = _index(files["relations"], 6, policy)
    gold = _index(files["gold_standard"], 4, policy)
    abstracts: Path = files["abstracts"]  # type: ignore[assignment]  # checked by find_chemprot_files
    seen: Dict[str, Tuple[int, str]] = {}
    # only an empty line is blank: '\u2028' may be an id
    for lineno, line in document_lines(reading, abstracts, blank=lambda line: not line):
        cols = line.split("\t")
        if len(cols) != 3:
            detail = (
                f"{len(cols)} tab-separated columns, expected 3 (PMID, title, abstract): "
                f"{line[:100]!r}"
            )
            policy(malformed(abstracts, lineno, detail), document=True)
            continue
        doc_id, title, abstract = cols
        if doc_id in seen:
            first_line, first = seen[doc_id]
            if first == line:
                stats.add_duplicate_line(abstracts, lineno)
                stats.duplicates += 1
                stats.duplicate_ids.append(doc_id)
            else:
                policy(
                    CorpusFormatError(
                        abstracts,
                        lineno,
                        Errors.E111.format(doc_id=doc_id, first_line=first_line),
                        record=doc_id,
                    ),
                    document=True,
                )
            continue
        seen[doc_id] = (lineno, line)
        too_long = check_length(
            abstracts, lineno, doc_id, len(title) + 1 + len(abstract), max_chars
        )
        if too_long is not None:
            policy(too_long, document=True)
            continue
        yield _record(
            doc_id, title, abstract, lineno, files, entities, relations, gold, policy
        )
    # Annotations of documents that are not in the abstracts file would be lost.
    for name, index in (
        ("entities", entities),
        ("relations", relations),
        ("gold_standard", gold),
    ):
        for doc_id, rows in index.items():
            if doc_id not in seen:
                for lineno, _ in rows:
                    detail = f"document {doc_id} is not in {abstracts.name}"
                    policy(malformed(files[name], lineno, detail))  # type: ignore[arg-type]


def _record(
    doc_id: str,
    title: str,
    abstract: str,
    lineno: int,
    files: Dict[str, Optional[Path]],
    entities: Dict[str, List[Tuple[int, List[str]]]],
    relations: Dict[str, List[Tuple[int, List[str]]]],
    gold: Dict[str, List[Tuple[int, List[str]]]],
    policy: ErrorPolicy,
) -> SourceDocument:
    text = title + " " + abstract
    mentions: List[SourceMention] = []
    first_line: Dict[str, int] = {}
    for ln, cols in entities.get(doc_id, []):
        if cols[1] in first_line:
            policy(
                CorpusFormatError(
                    files["entities"],  # type: ignore[arg-type]
                    ln,
                    Errors.E116.format(
                        mention_id=cols[1], doc_id=doc_id, first_line=first_line[cols[1]]
                    ),
                    record=doc_id,
                )
            )
            continue
        try:
            start, end = int(cols[3]), int(cols[4])
        except ValueError:
            detail = f"offsets {cols[3]!r}, {cols[4]!r} are not integers"
            policy(malformed(files["entities"], ln, detail))  # type: ignore[arg-type]
            continue
        m = SourceMention(
            id=cols[1], start=start, end=end, text=cols[5], type=cols[2], kb_id=""
        )
        err = check_mention(files["entities"], ln, text, m)  # type: ignore[arg-type]
        if err is not None:
            policy(err)
            continue
        first_line[m.id] = ln
        mentions.append(m)
    ids = {m.id for m in mentions}
    gold_keys: Dict[Tuple[str, str, str], int] = {}
    for ln, cols in gold.get(doc_id, []):
        args = _args(files["gold_standard"], ln, cols[2], cols[3], ids, doc_id, policy)  # type: ignore[arg-type]
        if args is not None:
            gold_keys[(cols[1], args[0], args[1])] = ln
    rels: List[Dict[str, Any]] = []
    matched: Set[Tuple[str, str, str]] = set()
    for ln, cols in relations.get(doc_id, []):
        args = _args(files["relations"], ln, cols[4], cols[5], ids, doc_id, policy)  # type: ignore[arg-type]
        if args is None:
            continue
        key = (cols[1], args[0], args[1])
        rel: Dict[str, Any] = {
            "level": "mention",
            "head": args[0],
            "tail": args[1],
            "label": cols[1],
            "relation": cols[3],
            "eval": cols[2].strip(),
            "gold": key in gold_keys,
        }
        if cols[2] != rel["eval"] + " ":
            rel["eval_raw"] = cols[2]
        matched.add(key)
        rels.append(rel)
    for key in gold_keys:
        if key not in matched:
            # A gold pair with no line in relations.tsv: keep it, marked.
            rels.append(
                {
                    "level": "mention",
                    "head": key[1],
                    "tail": key[2],
                    "label": key[0],
                    "relation": "",
                    "eval": "Y",
                    "gold": True,
                    "gold_only": True,
                }
            )
    return SourceDocument(
        doc_id=doc_id,
        text=text,
        passages=title_abstract_passages(title, abstract),
        mentions=mentions,
        relations=rels,
        line=lineno,
        extra={"separator": "\t"},
    )


def _args(
    path: Path, ln: int, a1: str, a2: str, ids: Set[str], doc_id: str, policy: ErrorPolicy
) -> Optional[Tuple[str, str]]:
    m1, m2 = _ARG.match(a1), _ARG.match(a2)
    if m1 is None or m2 is None or m1.group(1) != "1" or m2.group(1) != "2":
        policy(malformed(path, ln, f"expected 'Arg1:T<i>' 'Arg2:T<j>', got {a1!r} {a2!r}"))
        return None
    for arg in (m1.group(2), m2.group(2)):
        if arg not in ids:
            policy(
                CorpusFormatError(
                    path,
                    ln,
                    Errors.E108.format(
                        arg=arg, doc_id=doc_id, known=", ".join(sorted(ids)[:10]) or "none"
                    ),
                )
            )
            return None
    return m1.group(2), m2.group(2)


read_chemprot = docs_reader(
    iter_chemprot_records,
    "chemprot",
    """Stream the Docs of a ChemProt split (folder or file prefix). Flat
    `doc.ents` keep the longest of overlapping mentions (earlier first; of two
    identical spans the first in the entities file); every mention stays in
    `doc.spans["mentions"]`.""",
)


def _prefix(folder_or_prefix: Union[str, Path]) -> Path:
    p = Path(folder_or_prefix)
    if p.is_dir() or str(folder_or_prefix).endswith(("/", "\\")):
        p.mkdir(parents=True, exist_ok=True)
        return p / p.name
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def write_chemprot(
    docs: Iterable[Doc], folder_or_prefix: Union[str, Path], *, threshold: float = 0.5
) -> int:
    """Write Docs as the four ChemProt files (PREFIX_abstracts.tsv, ...). A
    folder gets the prefix FOLDER/FOLDERNAME. Gold Docs give back what was
    read; predicted Docs write `doc.ents` (ids T1...) and their predicted
    `doc._.relations` (labels with p >= threshold, eval "Y" for CPR:3,4,5,6,9),
    which also fill the gold_standard file (the format the official
    evaluation reads). Returns the number of documents written. The four
    files are written atomically: on an error (e.g. E110, a document id or
    field with a tab or line break) none of them is changed."""
    prefix = _prefix(folder_or_prefix)
    n = 0
    with atomic_write_many([f"{prefix}_{s}.tsv" for s in SUFFIXES]) as tmps:
        handles = {
            s: open(tmp, "w", encoding="utf8", newline="\n") for s, tmp in zip(SUFFIXES, tmps)
        }
        try:
            for doc in docs:
                _write_doc(doc, handles, threshold)
                n += 1
        finally:
            for fp in handles.values():
                fp.close()
    return n


def _chemprot_ids(ids: List[str]) -> Dict[str, str]:
    """The ChemProt id (T<n>) of each mention id: a T<n> id stays, the others
    take the next T<n> not in use."""
    out: Dict[str, str] = {}
    used = set()
    for mid in ids:
        if re.fullmatch(r"T\d+", mid) and mid not in used:
            out[mid] = mid
            used.add(mid)
    n = 0
    for mid in ids:
        if mid in out:
            continue
        n += 1
        while f"T{n}" in used:
            n += 1
        out[mid] = f"T{n}"
        used.add(out[mid])
    return out


def _write_doc(doc: Doc, handles: Dict[str, Any], threshold: float) -> None:
    src = with_relation_arguments(doc, doc_to_source(doc), threshold)
    doc_id = src.doc_id or "0"
    title, abstract = title_and_abstract(src)
    fields = [("document id", doc_id), ("title", title), ("abstract", abstract)]
    for m in src.mentions:
        fields.append((f"type of mention {m.id}", m.type))
        fields.append(
            (f"text of mention {m.id}", m.raw_text if m.raw_text is not None else m.text)
        )
    # ChemProt ids are T<n>: other ids are renamed, never to an id in use, and
    # the relations follow them (a relation whose head or tail is no mention
    # is not written: the reader would reject it; `losses` counts it).
    ids = _chemprot_ids([m.id for m in src.mentions])
    relations = []
    for r in src.relations:
        if r.get("level") != "mention" or r.get("head") not in ids or r.get("tail") not in ids:
            continue
        relations.append(dict(r, head=ids[r["head"]], tail=ids[r["tail"]]))
    for r in relations:
        for key in ("label", "relation", "eval", "eval_raw"):
            fields.append((f"{key} of relation {r['head']}-{r['tail']}", str(r.get(key, ""))))
    for name, value in fields:
        if any(c in value for c in _SEPARATORS) or value.startswith("\ufeff"):
            raise ValueError(
                Errors.E110.format(
                    format="ChemProt TSV",
                    problem=(
                        f"the {name} of document {doc_id!r} holds a tab or line break "
                        "(ChemProt TSV's separators) or starts with U+FEFF (which a "
                        "reader drops as a byte order mark)"
                    ),
                    fix="normalise whitespace in the text, or write BioC or JSONL",
                )
            )
    handles["abstracts"].write(f"{doc_id}\t{title}\t{abstract}\n")
    # ChemProt offsets count one separator char; PubTator-style docs match.
    by_offsets = {}
    for m in src.mentions:
        mid = ids[m.id]
        by_offsets.setdefault((m.start, m.end), mid)
        mention_text = m.raw_text if m.raw_text is not None else m.text
        handles["entities"].write(
            f"{doc_id}\t{mid}\t{m.type}\t{m.start}\t{m.end}\t{mention_text}\n"
        )
    if not src.relations:
        for p in predicted_relations(doc, threshold):
            if p["level"] != "mention":
                continue  # ChemProt's files hold mention-level relations only
            head = by_offsets.get(tuple(p["head"]))
            tail = by_offsets.get(tuple(p["tail"]))
            if head and tail:
                gold = p["label"] in EVAL_GROUPS
                relations.append(
                    {
                        "head": head,
                        "tail": tail,
                        "label": p["label"],
                        "relation": "",
                        "eval": "Y" if gold else "N",
                        "gold": gold,
                    }
                )
    gold_seen = set()
    for r in relations:
        if not r.get("gold_only"):
            eval_raw = r.get("eval_raw", f"{r.get('eval', 'N')} ")
            handles["relations"].write(
                f"{doc_id}\t{r['label']}\t{eval_raw}\t{r.get('relation', '')}\t"
                f"Arg1:{r['head']}\tArg2:{r['tail']}\n"
            )
        key = (r["label"], r["head"], r["tail"])
        if r.get("gold") and key not in gold_seen:
            gold_seen.add(key)
            handles["gold_standard"].write(
                f"{doc_id}\t{r['label']}\tArg1:{r['head']}\tArg2:{r['tail']}\n"
            )
