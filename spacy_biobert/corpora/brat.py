"""brat standoff: a folder of `NAME.txt` + `NAME.ann` pairs, one document each.

```
NAME.txt   the document text (offsets count its characters, line breaks included)
NAME.ann   T1	Drug 0 7	Aspirin                      text-bound entity
           T2	AdverseEvent 16 23;37 43	gastric ulcers  discontinuous: fragments ";"
           R1	CAUSES Arg1:T1 Arg2:T2                 relation (Arg1 = head, Arg2 = tail)
           N1	Reference T1 MeSH:D001241	Aspirin       normalisation of T1
           *	Equiv T2 T3                              equivalence
           E1	Binding:T5 Theme:T4                      event       (skipped, counted)
           A1	Negated E1 / M1 ...                      attribute   (skipped, counted)
           #1	AnnotatorNotes T1	text                   note        (skipped, counted)
```
A document is a `.ann` file and the `.txt` beside it (its id: the path under
the folder, without extension); the reader takes a folder (read recursively,
in name order) or one `.ann` (or `.txt`) file.

Into the Doc (the data contract of `spacy_biobert.extensions`):
- T lines are mentions (`doc.spans["mentions"]`, `doc.ents` the flat subset),
  `id_` = "T1", `label_` = the type. A discontinuous mention covers its
  extent, from its first fragment's start to its last fragment's end (a Span
  is contiguous); its fragments are kept for writing.
- N lines set the mention's `kb_id_` (the reference as written,
  "MeSH:D001241"; several: joined with "|").
- R lines are mention-level gold relations, {"level": "mention", "head":
  Arg1, "tail": Arg2, "label", "id": "R1"} (argument names other than Arg1 /
  Arg2 kept as "roles").
- Equivalences are kept for writing. Events, attributes and notes (and
  relations or normalisations of events) are not read into the Doc: they are
  counted and reported (W807), and kept verbatim for writing.

Writing gives back, byte for byte, the .txt and .ann of a document read from
brat (line order, line breaks, every line kind); other Docs get T ids (ids
that are not brat's T<n> are renumbered), N lines for their kb ids, and R
lines for their mention-level relations (gold, or predicted at the threshold).
brat holds no document-level (concept) relation: those are not written, as
in ChemProt's files.

Why not a library: `bconv` writes brat but does not read it (and pins lxml <
5); `pybrat` reads but does not write; `bratly` reads and writes, but rejects
normalisation ids with a dot ("ICD10:K26.9"), writes lines grouped by kind
(not as read) and needs Python >= 3.10. None gives exact round trips.
"""
import re
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.tokens import Doc

from ..errors import Errors
from ..extensions import SOURCE_KEY, mention_ids, predicted_relations
from .checks import DEFAULT_MAX_CHARS, check_length
from .errors import CorpusFormatError, CorpusStats, ErrorPolicy, malformed
from .io import atomic_write_many, is_stream
from .reading import docs_reader, start_reading
from .records import SourceDocument, SourceMention, doc_to_source, with_relation_arguments

BRAT_KEY = "brat"
"""The key, in a document's source info, of what writing brat back needs."""
_T_ID = re.compile(r"T\d+")
_R_ID = re.compile(r"R\d+")
_N_ID = re.compile(r"N\d+")
_OFFSETS = re.compile(r"\d+ \d+(?:;\d+ \d+)*")
_LINE_BREAKS = re.compile(r"[\r\n\t]")
_SKIPPED_KINDS = {"E": "event", "A": "attribute", "M": "attribute", "#": "note"}


def find_brat_documents(path: Union[str, Path]) -> List[Tuple[str, Path, Path]]:
    """(document id, .ann path, .txt path) of each document under `path` (a
    folder, read recursively, or one .ann / .txt file), in name order."""
    path = Path(path)
    if path.is_dir():
        anns = sorted(path.rglob("*.ann"))
        if not anns:
            raise FileNotFoundError(
                Errors.E140.format(
                    what=f"no .ann file in the folder '{path}'",
                    fix="pass a folder of brat NAME.txt + NAME.ann pairs",
                )
            )
        return [(p.relative_to(path).with_suffix("").as_posix(), p, p.with_suffix(".txt")) for p in anns]
    if path.suffix.lower() in (".ann", ".txt"):
        return [(path.stem, path.with_suffix(".ann"), path.with_suffix(".txt"))]
    raise FileNotFoundError(
        Errors.E140.format(
            what=f"'{path}' is neither a folder nor a .ann / .txt file",
            fix="pass a folder of brat NAME.txt + NAME.ann pairs, or one NAME.ann",
        )
    )


def iter_brat_records(
    path: Union[str, Path],
    *,
    on_error: str = "raise",
    stats: Optional[CorpusStats] = None,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> Iterator[SourceDocument]:
    """The documents of a brat folder (or one .ann file), one record each.
    A bad line is a bad record (raised, or skipped and counted with
    on_error="skip"); a .ann without its .txt, a .txt that is not UTF-8 or a
    text longer than `max_chars` is a bad document."""
    if is_stream(path):
        raise ValueError(
            Errors.E118.format(
                format="brat standoff", why="a document is two files, NAME.txt and NAME.ann",
                fix="pass the folder, or one .ann file",
            )
        )
    reading = start_reading(path, on_error, stats, max_chars)
    for doc_id, ann, txt in find_brat_documents(reading.source):
        rec = _read_document(doc_id, ann, txt, reading.policy, max_chars)
        if rec is not None:
            yield rec


def _read_text(path: Path, policy: ErrorPolicy, doc_id: str) -> Optional[str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        policy(
            CorpusFormatError(
                path, 0, Errors.E141.format(doc_id=doc_id, missing=path.name), record=doc_id,
                fix=f"put {path.name} beside the .ann file, or remove the .ann",
            ),
            document=True,
        )
        return None
    try:
        return raw.decode("utf8")
    except UnicodeDecodeError as err:
        reason = f"byte 0x{raw[err.start]:02x} at byte offset {err.start}"
        policy(
            CorpusFormatError(path, 0, Errors.E104.format(encoding="UTF-8", reason=reason), record=doc_id),
            document=True,
        )
        return None


def _read_document(
    doc_id: str, ann: Path, txt: Path, policy: ErrorPolicy, max_chars: Optional[int]
) -> Optional[SourceDocument]:
    text = _read_text(txt, policy, doc_id)
    if text is None:
        return None
    too_long = check_length(txt, 0, doc_id, len(text), max_chars)
    if too_long is not None:
        policy(too_long, document=True)
        return None
    content = _read_text(ann, policy, doc_id) if ann.exists() else ""
    if content is None:
        return None
    crlf = "\r\n" in content
    lines = content.split("\r\n" if crlf else "\n")
    final_newline = lines[-1] == ""
    if final_newline:
        lines.pop()
    parsed = _Parsed(doc_id, ann, text, policy)
    for lineno, line in enumerate(lines, start=1):
        parsed.line(lineno, line)
    parsed.resolve()
    brat: Dict[str, Any] = {"order": parsed.order}
    if parsed.equivalences:
        brat["equivalences"] = parsed.equivalences
    if crlf:
        brat["crlf"] = True
    if not final_newline and lines:
        brat["final_newline"] = False
    if not ann.exists():
        brat["ann"] = False
    stats = policy.stats
    for kind, count in parsed.skipped.items():
        stats.skipped_annotations[kind] = stats.skipped_annotations.get(kind, 0) + count
    return SourceDocument(
        doc_id=doc_id,
        text=text,
        passages=[("text", 0, text)],
        mentions=list(parsed.mentions.values()),
        relations=parsed.relations,
        line=0,
        extra={BRAT_KEY: brat},
    )


class _Parsed:
    """The lines of one .ann file: mentions, relations, normalisations,
    equivalences and the lines kept verbatim, in file order (`order`)."""

    def __init__(self, doc_id: str, path: Path, text: str, policy: ErrorPolicy):
        self.doc_id = doc_id
        self.path = path
        self.text = text
        self.policy = policy
        self.mentions: Dict[str, SourceMention] = {}
        self.first_line: Dict[str, int] = {}
        self.relations: List[Dict[str, Any]] = []
        self.norms: List[Tuple[int, Dict[str, Any], str]] = []  # (line, norm, target)
        self.equivalences: List[Dict[str, Any]] = []
        self.equiv_lines: List[int] = []
        self.relation_lines: List[int] = []
        self.order: List[Any] = []
        self.skipped: Dict[str, int] = {}

    def bad(self, lineno: int, detail: str) -> None:
        self.policy(malformed(self.path, lineno, detail, record=self.doc_id))

    def raw(self, line: str, kind: Optional[str] = None) -> None:
        self.order.append(["raw", line])
        if kind is not None:
            self.skipped[kind] = self.skipped.get(kind, 0) + 1

    def line(self, lineno: int, line: str) -> None:
        if not line.strip():
            self.raw(line)
            return
        head = line[0]
        if head == "T":
            self.mention(lineno, line)
        elif head == "R":
            self.relation(lineno, line)
        elif head == "N":
            self.normalisation(lineno, line)
        elif head == "*":
            self.equivalence(lineno, line)
        elif head in _SKIPPED_KINDS:
            self.raw(line, _SKIPPED_KINDS[head])
        else:
            self.bad(lineno, f"not a brat annotation line (T, R, N, *, E, A, M or #): {line[:80]!r}")

    def mention(self, lineno: int, line: str) -> None:
        parts = line.split("\t", 2)
        if len(parts) != 3 or " " not in parts[1]:
            self.bad(lineno, f"a T line is 'ID<TAB>TYPE START END<TAB>TEXT', got {line[:80]!r}")
            return
        mid, (type_, offsets), written = parts[0], parts[1].split(" ", 1), parts[2]
        if not _OFFSETS.fullmatch(offsets):
            self.bad(
                lineno, f"offsets of {mid} must be 'START END' or 'START END;START END...', not {offsets!r}"
            )
            return
        fragments = [[int(x) for x in f.split(" ")] for f in offsets.split(";")]
        start, end = fragments[0][0], fragments[-1][1]
        length = len(self.text)
        if any(not (0 <= s <= e <= length) for s, e in fragments) or start > end:
            self.policy(
                CorpusFormatError(
                    self.path, lineno,
                    Errors.E102.format(start=start, end=end, mention=written, length=length),
                    record=self.doc_id,
                )
            )
            return
        covered = " ".join(self.text[s:e] for s, e in fragments)
        if written != covered and written != re.sub(r"\r\n|\r|\n", " ", covered):
            self.policy(
                CorpusFormatError(
                    self.path, lineno,
                    Errors.E142.format(mid=mid, written=written, offsets=offsets, covered=covered),
                    record=self.doc_id,
                )
            )
            return
        if mid in self.mentions:
            self.policy(
                CorpusFormatError(
                    self.path, lineno,
                    Errors.E116.format(mention_id=mid, doc_id=self.doc_id, first_line=self.first_line[mid]),
                    record=self.doc_id,
                )
            )
            return
        extra: Dict[str, Any] = {}
        if len(fragments) > 1:
            extra["fragments"] = fragments
        if written != covered:
            extra["brat_text"] = written
        self.mentions[mid] = SourceMention(
            id=mid, start=start, end=end, text=self.text[start:end], type=type_, kb_id="", extra=extra,
        )
        self.first_line[mid] = lineno
        self.order.append(mid)

    def relation(self, lineno: int, line: str) -> None:
        parts = line.split("\t")
        fields = parts[1].split(" ") if len(parts) >= 2 else []
        args = [f.split(":", 1) for f in fields[1:]]
        if len(parts) != 2 or len(fields) != 3 or any(len(a) != 2 or not all(a) for a in args):
            self.bad(lineno, f"an R line is 'ID<TAB>TYPE Arg1:T1 Arg2:T2', got {line[:80]!r}")
            return
        (role1, head), (role2, tail) = args
        if not (head.startswith("T") and tail.startswith("T")):
            self.raw(line, "relation of an event")  # events are not read
            return
        rel: Dict[str, Any] = {
            "level": "mention", "head": head, "tail": tail, "label": fields[0], "id": parts[0]
        }
        if (role1, role2) != ("Arg1", "Arg2"):
            rel["roles"] = [role1, role2]
        self.relations.append(rel)
        self.relation_lines.append(lineno)
        self.order.append(["R", len(self.relations) - 1])

    def normalisation(self, lineno: int, line: str) -> None:
        parts = line.split("\t")
        fields = parts[1].split(" ") if len(parts) >= 2 else []
        if len(parts) not in (2, 3) or len(fields) != 3:
            self.bad(lineno, f"an N line is 'ID<TAB>TYPE TARGET DB:ID<TAB>TEXT', got {line[:80]!r}")
            return
        type_, target, ref = fields
        if not target.startswith("T"):
            self.raw(line, "normalisation of an event")
            return
        norm = {"id": parts[0], "type": type_, "ref": ref, "text": parts[2] if len(parts) == 3 else None}
        self.norms.append((lineno, norm, target))
        self.order.append(["N", len(self.norms) - 1])

    def equivalence(self, lineno: int, line: str) -> None:
        parts = line.split("\t")
        fields = parts[1].split(" ") if len(parts) == 2 else []
        if parts[0] != "*" or len(fields) < 3:
            self.bad(lineno, f"an equivalence is '*<TAB>Equiv T1 T2 ...', got {line[:80]!r}")
            return
        self.equivalences.append({"type": fields[0], "ids": fields[1:]})
        self.equiv_lines.append(lineno)
        self.order.append(["*", len(self.equivalences) - 1])

    def resolve(self) -> None:
        """Relations, normalisations and equivalences must name T lines of
        the document (E108); normalisations become kb ids."""
        known = ", ".join(list(self.mentions)[:10]) or "none"

        def unknown(lineno: int, arg: str) -> None:
            self.policy(
                CorpusFormatError(
                    self.path, lineno, Errors.E108.format(arg=arg, doc_id=self.doc_id, known=known),
                    record=self.doc_id,
                )
            )

        kept_rel: List[int] = []
        for i, (rel, lineno) in enumerate(zip(self.relations, self.relation_lines)):
            missing = [a for a in (rel["head"], rel["tail"]) if a not in self.mentions]
            if missing:
                unknown(lineno, missing[0])
            else:
                kept_rel.append(i)
        kept_norm: List[int] = []
        for i, (lineno, norm, target) in enumerate(self.norms):
            mention = self.mentions.get(target)
            if mention is None:
                unknown(lineno, target)
                continue
            norm_list = mention.extra.setdefault("norms", [])
            norm_list.append(dict(norm))
            mention.kb_id = "|".join(n["ref"] for n in norm_list)
            kept_norm.append(i)
        kept_eq: List[int] = []
        for i, (eq, lineno) in enumerate(zip(self.equivalences, self.equiv_lines)):
            missing = [a for a in eq["ids"] if a not in self.mentions]
            if missing:
                unknown(lineno, missing[0])
            else:
                kept_eq.append(i)
        # order entries by id; entries of lines dropped (skipped bad lines) go
        rel_ids = {i: self.relations[i]["id"] for i in kept_rel}
        norm_ids = {i: self.norms[i][1]["id"] for i in kept_norm}
        eq_index = {old: new for new, old in enumerate(kept_eq)}
        order: List[Any] = []
        for entry in self.order:
            if isinstance(entry, str) or entry[0] == "raw":
                order.append(entry)
            elif entry[0] == "R" and entry[1] in rel_ids:
                order.append(rel_ids[entry[1]])
            elif entry[0] == "N" and entry[1] in norm_ids:
                order.append(norm_ids[entry[1]])
            elif entry[0] == "*" and entry[1] in eq_index:
                order.append(["*", eq_index[entry[1]]])
        self.order = order
        self.relations = [self.relations[i] for i in kept_rel]
        self.equivalences = [self.equivalences[i] for i in kept_eq]


read_brat = docs_reader(iter_brat_records, "brat", "Stream the Docs of a brat folder (or one .ann file).")


# --- writing ---------------------------------------------------------------------------


def brat_files(doc: Doc, *, threshold: float = 0.5) -> Tuple[str, str]:
    """(.txt content, .ann content) of one Doc (gold or predicted)."""
    src = with_relation_arguments(doc, doc_to_source(doc), threshold)
    brat: Dict[str, Any] = dict(src.extra.get(BRAT_KEY) or {})
    text = src.text
    relations = _relations(doc, src, threshold)
    # brat ids are kept (the first use of each); others (PubTator "M1",
    # predicted mentions, new normalisations) are numbered after the largest
    ids = _Ids()
    tids = {m.id: ids.keep("T", m.id) for m in src.mentions}
    kept_norms = {}
    for m in src.mentions:
        norms = m.extra.get("norms") or []
        if norms and "|".join(n["ref"] for n in norms) == (m.kb_id or ""):
            kept_norms[m.id] = [(ids.keep("N", n["id"]), n) for n in norms]
    rids = [ids.keep("R", str(r.get("id", ""))) for r in relations]
    lines: Dict[str, str] = {}
    new_keys: Dict[str, List[str]] = {"T": [], "R": [], "*": [], "N": []}
    by_offsets: Dict[Tuple[int, int], str] = {}
    for m in src.mentions:
        tid = tids[m.id] = tids[m.id] or ids.new("T")
        by_offsets.setdefault((m.start, m.end), tid)
        lines[tid] = _t_line(tid, m, text)
        new_keys["T"].append(tid)
    for m in src.mentions:
        tid = tids[m.id]
        if m.id in kept_norms:
            norms = [
                (nid or ids.new("N"), n["type"], n["ref"], n.get("text")) for nid, n in kept_norms[m.id]
            ]
        else:
            norms = [
                (ids.new("N"), "Reference", ref, text[m.start : m.end]) for ref in mention_ids(m.kb_id or "")
            ]
        for nid, type_, ref, norm_text in norms:
            lines[nid] = _n_line(nid, type_, tid, ref, norm_text)
            new_keys["N"].append(nid)
    for rel, rid in zip(relations, rids):
        head = by_offsets.get(rel["head"]) if isinstance(rel["head"], tuple) else tids.get(str(rel["head"]))
        tail = by_offsets.get(rel["tail"]) if isinstance(rel["tail"], tuple) else tids.get(str(rel["tail"]))
        if head is None or tail is None:
            continue
        rid = rid or ids.new("R")
        role1, role2 = rel.get("roles") or ("Arg1", "Arg2")
        lines[rid] = f"{rid}\t{rel['label']} {role1}:{head} {role2}:{tail}"
        new_keys["R"].append(rid)
    for i, eq in enumerate(brat.get("equivalences") or []):
        members = [tids.get(x) for x in eq["ids"]]
        if all(x is not None for x in members):
            lines[f"*{i}"] = f"*\t{eq['type']} {' '.join(members)}"  # type: ignore[arg-type]
            new_keys["*"].append(f"*{i}")
    out: List[str] = []
    written = set()
    for entry in brat.get("order") or []:
        # lists (tuples after a DocBin round trip) or ids
        if isinstance(entry, (list, tuple)) and entry[0] == "raw":
            out.append(entry[1])
            continue
        key = f"*{entry[1]}" if isinstance(entry, (list, tuple)) else entry
        if key in lines and key not in written:
            out.append(lines[key])
            written.add(key)
    for kind in ("T", "R", "*", "N"):
        for key in new_keys[kind]:
            if key not in written:
                out.append(lines[key])
                written.add(key)
    newline = "\r\n" if brat.get("crlf") else "\n"
    ann = newline.join(out)
    if out and brat.get("final_newline", True):
        ann += newline
    return text, ann


class _Ids:
    """The brat ids of one document: an id is kept when it has its kind's
    form (T<n>, R<n>, N<n>) and is not taken yet; new ones are numbered after
    the largest kept."""

    FORMS = {"T": _T_ID, "R": _R_ID, "N": _N_ID}

    def __init__(self) -> None:
        self.taken: Dict[str, set] = {"T": set(), "R": set(), "N": set()}
        self.top: Dict[str, int] = {"T": 0, "R": 0, "N": 0}

    def keep(self, kind: str, value: str) -> Optional[str]:
        if not self.FORMS[kind].fullmatch(value) or value in self.taken[kind]:
            return None
        self.taken[kind].add(value)
        self.top[kind] = max(self.top[kind], int(value[1:]))
        return value

    def new(self, kind: str) -> str:
        self.top[kind] += 1
        while f"{kind}{self.top[kind]}" in self.taken[kind]:
            self.top[kind] += 1
        value = f"{kind}{self.top[kind]}"
        self.taken[kind].add(value)
        return value


def _t_line(tid: str, m: SourceMention, text: str) -> str:
    fragments = m.extra.get("fragments")
    if not (fragments and fragments[0][0] == m.start and fragments[-1][1] == m.end):
        fragments = [[m.start, m.end]]
    covered = " ".join(text[s:e] for s, e in fragments)
    written = m.extra.get("brat_text")
    if written is None or written != re.sub(r"\r\n|\r|\n", " ", covered):
        written = re.sub(r"\r\n|\r|\n", " ", covered)
    offsets = ";".join(f"{s} {e}" for s, e in fragments)
    type_ = re.sub(r"\s", "_", m.type) or "Entity"
    return f"{tid}\t{type_} {offsets}\t{written}"


def _n_line(nid: str, type_: str, tid: str, ref: str, text: Optional[str]) -> str:
    line = f"{nid}\t{type_} {tid} {ref}"
    return line if text is None else line + "\t" + _LINE_BREAKS.sub(" ", text)


def _relations(doc: Doc, src: SourceDocument, threshold: float) -> List[Dict[str, Any]]:
    """The mention-level relations to write: the gold ones of a read Doc
    (head and tail: mention ids), else the predicted ones at `threshold` (head
    and tail: (start_char, end_char)). brat holds no concept-level relation."""
    if src.relations:
        return [r for r in src.relations if r.get("level", "mention") == "mention"]
    return [
        {"head": tuple(p["head"]), "tail": tuple(p["tail"]), "label": p["label"]}
        for p in predicted_relations(doc, threshold)
        if p["level"] == "mention"
    ]


def _file_stem(doc_id: str, n: int, used: set) -> str:
    """A safe relative path for a document: its id (subfolders kept, no
    absolute path or '..'), else doc<n>; made unique."""
    parts = [p for p in re.split(r"[\\/]+", doc_id or "") if p not in ("", ".", "..")]
    stem = "/".join(re.sub(r"[\x00-\x1f]", "_", p) for p in parts) or f"doc{n}"
    unique, k = stem, 2
    while unique in used:
        unique, k = f"{stem}_{k}", k + 1
    used.add(unique)
    return unique


def write_brat(docs: Iterable[Doc], folder: Union[str, Path], *, threshold: float = 0.5) -> int:
    """Write Docs as brat standoff into `folder` (created): DOC_ID.txt and
    DOC_ID.ann for each (see the module docstring; each pair written
    atomically). A document read from brat without a .ann file and with no
    annotation gets none. Returns the number of documents written."""

    def chunks() -> Iterator[Dict[str, Any]]:
        for doc in docs:
            txt, ann = brat_files(doc, threshold=threshold)
            source = (doc.user_data.get(SOURCE_KEY) or {}).get(BRAT_KEY) or {}
            yield {
                "id": str(doc._.doc_id) if doc._.doc_id is not None else "",
                "txt": txt,
                "ann": ann if ann or source.get("ann", True) else None,
            }

    return write_brat_chunks(chunks(), folder)


def write_brat_chunks(chunks: Iterable[Dict[str, Any]], folder: Union[str, Path]) -> int:
    """Write documents given as {"id", "txt", "ann"} (ann None: no .ann file)
    into `folder`, each pair atomically; ids become file names (subfolders
    kept, never outside `folder`; made unique; "doc<n>" when empty)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            Errors.E110.format(
                format="brat standoff", problem=f"'{folder}' is a file, and brat is a folder of files",
                fix="give a folder (new or existing) as the output",
            )
        )
    folder.mkdir(parents=True, exist_ok=True)
    used: set = set()
    n = 0
    for chunk in chunks:
        n += 1
        stem = _file_stem(chunk["id"], n, used)
        files = [(folder / f"{stem}.txt", chunk["txt"])]
        if chunk.get("ann") is not None:
            files.append((folder / f"{stem}.ann", chunk["ann"]))
        with atomic_write_many([path for path, _ in files]) as tmps:
            for tmp, (_, content) in zip(tmps, files):
                with open(tmp, "w", encoding="utf8", newline="") as fp:
                    fp.write(content)
    return n
