"""`NameKB`: a name -> id knowledge base with per-label indexes.

Built from the names and ids of annotated corpora (every mention with an id;
BC5CDR composite mentions also give their individual mentions, the 7th
column, each with its own id) and from name/id TSV files (e.g. a MeSH
export). Each label (entity type: Chemical, Disease, ...) has its own index;
names given without a label go to a shared index ("") that every label also
searches.

Candidates, in this order (`NameKB.link`):

1. exact name (case-sensitive), score 1.0;
2. normalised name (`normalize.normalize_name`: case, punctuation, Greek
   letters, plural), then the same without spaces, then the sorted
   content words, score 1.0;
3. approximate: cosine similarity of TF-IDF weighted character 3-grams of
   the normalised name, over every normalised name of the label (a sparse
   matrix product, in chunks); the best name scores its cosine.

A name seen with several ids resolves to the id it was seen with most often
(ties: the first seen). A composite id ("D014786|D006311") is one answer.

Memory and speed: ids are interned, names kept once per label, the n-gram
matrix is CSR float32 (int32 indices). `bench/kb_scale.py` measures load
time and memory for 300,000 names.
"""

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
import srsly

from ..errors import Errors
from .normalize import bag_key, char_ngrams, normalize_name, squash_key

logger = logging.getLogger("spacy_biobert.linking")

SHARED = ""
"""The label of names given without a type; searched for every label."""
KB_FILE = "kb.msgpack"
FORMAT_VERSION = 1
_CHUNK = 256


class Candidate(tuple):
    """(kb_id, score, method): method is "exact", "normalised" or "similar"."""

    __slots__ = ()

    def __new__(cls, kb_id: str, score: float, method: str):
        return tuple.__new__(cls, (kb_id, score, method))

    @property
    def kb_id(self) -> str:
        return self[0]

    @property
    def score(self) -> float:
        return self[1]

    @property
    def method(self) -> str:
        return self[2]


def clean_kb_id(kb_id: str) -> str:
    """The id string to store: stripped; "-1" and empty parts of a composite
    dropped ("D002544|-1" -> "D002544"); "" when no id is left."""
    from ..corpora._base import mention_ids

    value = (kb_id or "").strip()
    ids = mention_ids(value)
    if not ids:
        return ""
    if len(ids) == len([p for p in value.replace("+", "|").split("|")]):
        return "".join(ch for ch in value if not ch.isspace())
    return "|".join(ids)


class _LabelIndex:
    """The names of one label: (name, id, count) triples and lookup tables."""

    def __init__(self) -> None:
        self.counts: Dict[Tuple[str, int], int] = {}
        self._tables: Optional[Dict[str, Dict[str, int]]] = None
        self._matrix: Any = None
        self._rows: List[int] = []  # row -> id index
        self._vocab: Dict[str, int] = {}
        self._idf: Optional[numpy.ndarray] = None
        self._norms: Sequence[str] = []

    def add(self, name: str, id_index: int, count: int) -> None:
        key = (name, id_index)
        self.counts[key] = self.counts.get(key, 0) + count
        self._tables = None
        self._matrix = None

    # --- building ---------------------------------------------------------------

    def build(self, ngram: int, norms: Optional[Sequence[str]] = None) -> None:
        """Lookup tables and the n-gram matrix. norms: precomputed normalised
        names, one per entry of `self.counts` (in order)."""
        from scipy.sparse import csr_matrix

        entries = list(self.counts.items())
        if norms is None:
            norms = [normalize_name(name) for (name, _), _ in entries]
        self._set_tables(list(self.counts), [c for _, c in entries], norms)
        self._norms = norms
        norm_table = self._tables["norm"] if self._tables else {}
        rows = list(norm_table)
        self._rows = [norm_table[n] for n in rows]
        vocab: Dict[str, int] = {}
        indptr = [0]
        indices: List[int] = []
        data: List[float] = []
        for norm in rows:
            grams = Counter(char_ngrams(norm, ngram))
            for gram, c in grams.items():
                indices.append(vocab.setdefault(gram, len(vocab)))
                data.append(float(c))
            indptr.append(len(indices))
        n_rows, n_cols = len(rows), max(len(vocab), 1)
        matrix = csr_matrix(
            (
                numpy.asarray(data, dtype="float32"),
                numpy.asarray(indices, dtype="int32"),
                numpy.asarray(indptr, dtype="int64"),
            ),
            shape=(n_rows, n_cols),
        )
        df = numpy.bincount(matrix.indices, minlength=n_cols).astype("float32")
        self._idf = (numpy.log((1.0 + n_rows) / (1.0 + df)) + 1.0).astype("float32")
        self._vocab = vocab
        self._matrix = _l2_rows(matrix.multiply(self._idf).tocsr())

    def _set_tables(
        self, keys: Sequence[Tuple[str, int]], counts: Sequence[int], norms: Sequence[str]
    ) -> None:
        votes: Dict[str, Dict[str, Any]] = {"exact": {}, "norm": {}, "squash": {}, "bag": {}}
        for (name, id_index), count, norm in zip(keys, counts, norms):
            _vote(votes["exact"], name, id_index, count)
            if norm:
                _vote(votes["norm"], norm, id_index, count)
                _vote(votes["squash"], squash_key(norm), id_index, count)
                _vote(votes["bag"], bag_key(norm), id_index, count)
        self._tables = {t: {k: _best(v) for k, v in found.items()} for t, found in votes.items()}

    @property
    def built(self) -> bool:
        return self._tables is not None

    # --- lookup -----------------------------------------------------------------

    def lookup(self, text: str, norm: str) -> Optional[Tuple[int, str]]:
        tables = self._tables or {}
        hit = tables["exact"].get(text)
        if hit is not None:
            return hit, "exact"
        if not norm:
            return None
        for table, key in (("norm", norm), ("squash", squash_key(norm)), ("bag", bag_key(norm))):
            hit = tables[table].get(key)
            if hit is not None:
                return hit, "normalised"
        return None

    def similar(self, norms: Sequence[str], ngram: int) -> List[Optional[Tuple[int, float]]]:
        """Best (id index, cosine) for each normalised name (None: no shared n-gram)."""
        from scipy.sparse import csr_matrix

        out: List[Optional[Tuple[int, float]]] = [None] * len(norms)
        if self._matrix is None or self._matrix.shape[0] == 0 or not norms:
            return out
        indptr = [0]
        indices: List[int] = []
        data: List[float] = []
        for norm in norms:
            grams = Counter(g for g in char_ngrams(norm, ngram) if g in self._vocab)
            for gram, c in grams.items():
                indices.append(self._vocab[gram])
                data.append(float(c))
            indptr.append(len(indices))
        queries = csr_matrix(
            (numpy.asarray(data, dtype="float32"), numpy.asarray(indices, dtype="int32"), indptr),
            shape=(len(norms), self._matrix.shape[1]),
        )
        queries = _l2_rows(queries.multiply(self._idf).tocsr())
        for start in range(0, len(norms), _CHUNK):
            sims = (queries[start : start + _CHUNK] @ self._matrix.T).tocsr()
            for r in range(sims.shape[0]):
                lo, hi = sims.indptr[r], sims.indptr[r + 1]
                if hi > lo:
                    best = lo + int(numpy.argmax(sims.data[lo:hi]))
                    row = int(sims.indices[best])
                    out[start + r] = (self._rows[row], float(sims.data[best]))
        return out

    # --- serialization ----------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        entries = list(self.counts.items())
        m = self._matrix
        return {
            "names": [name for (name, _), _ in entries],
            "ids": numpy.asarray([i for (_, i), _ in entries], dtype="int32").tobytes(),
            "counts": numpy.asarray([c for _, c in entries], dtype="int32").tobytes(),
            "norms": list(self._norms),
            "vocab": list(self._vocab),
            "idf": self._idf.tobytes(),
            "data": m.data.astype("float32").tobytes(),
            "indices": m.indices.astype("int32").tobytes(),
            "indptr": m.indptr.astype("int64").tobytes(),
            "shape": list(m.shape),
            "rows": numpy.asarray(self._rows, dtype="int32").tobytes(),
            # The resolved lookup tables, so loading needs no Python-level voting.
            "tables": {
                table: [list(found), numpy.asarray(list(found.values()), dtype="int32").tobytes()]
                for table, found in (self._tables or {}).items()
            },
        }

    @classmethod
    def from_dict(cls, msg: Dict[str, Any]) -> "_LabelIndex":
        from scipy.sparse import csr_matrix

        self = cls()
        ids = numpy.frombuffer(msg["ids"], dtype="int32").tolist()
        counts = numpy.frombuffer(msg["counts"], dtype="int32").tolist()
        self.counts = dict(zip(zip(msg["names"], ids), counts))
        norms = msg["norms"]
        if "tables" in msg:
            self._tables = {
                table: dict(zip(keys, numpy.frombuffer(ids, dtype="int32").tolist()))
                for table, (keys, ids) in msg["tables"].items()
            }
        else:  # pragma: no cover  (written before the tables were stored)
            self._set_tables(list(self.counts), counts, norms)
        self._norms = norms
        self._vocab = {gram: i for i, gram in enumerate(msg["vocab"])}
        self._idf = numpy.frombuffer(msg["idf"], dtype="float32").copy()
        self._matrix = csr_matrix(
            (
                numpy.frombuffer(msg["data"], dtype="float32").copy(),
                numpy.frombuffer(msg["indices"], dtype="int32").copy(),
                numpy.frombuffer(msg["indptr"], dtype="int64").copy(),
            ),
            shape=tuple(msg["shape"]),
        )
        self._rows = numpy.frombuffer(msg["rows"], dtype="int32").tolist()
        return self


def _vote(table: Dict[str, Any], key: str, id_index: int, count: int) -> None:
    """Keep, per key, the id with the highest count (first seen on ties): a
    plain int when one id was seen, else a Counter."""
    found = table.get(key)
    if found is None:
        table[key] = (id_index, count)
    elif isinstance(found, tuple):
        if found[0] == id_index:
            table[key] = (id_index, found[1] + count)
        else:
            c: Counter = Counter()
            c[found[0]] += found[1]
            c[id_index] += count
            table[key] = c
    else:
        found[id_index] += count


def _best(found: Any) -> int:
    if isinstance(found, tuple):
        return found[0]
    return found.most_common(1)[0][0]


def _l2_rows(matrix: Any) -> Any:
    norms = numpy.sqrt(numpy.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    from scipy.sparse import diags

    return (diags((1.0 / norms).astype("float32")) @ matrix).tocsr().astype("float32")


class NameKB:
    """Names and ids per label, with exact, normalised and approximate lookup.

    Add names (`add`, `add_records`, `add_docs`, `add_tsv`), then look them up
    (`link`, `link_many`); the indexes are (re)built on first lookup after a
    change. Save with `to_disk`/`to_bytes`, load with `from_disk`/`from_bytes`.
    """

    def __init__(self, ngram: int = 3):
        if isinstance(ngram, bool) or not isinstance(ngram, int) or ngram < 2:
            raise ValueError(Errors.E405.format(value=ngram))
        self.ngram = ngram
        self._ids: List[str] = []
        self._id_index: Dict[str, int] = {}
        self._labels: Dict[str, _LabelIndex] = {}

    # --- contents -------------------------------------------------------------

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels with names ("" = names without a type)."""
        return tuple(sorted(self._labels))

    def __len__(self) -> int:
        """The number of (label, name, id) entries."""
        return sum(len(index.counts) for index in self._labels.values())

    @property
    def ids(self) -> Tuple[str, ...]:
        return tuple(self._ids)

    def names_of(self, label: str) -> List[Tuple[str, str, int]]:
        """(name, id, count) of a label, in insertion order."""
        index = self._labels.get(label)
        if index is None:
            return []
        return [(name, self._ids[i], c) for (name, i), c in index.counts.items()]

    def add(self, name: str, kb_id: str, label: Optional[str] = None, count: int = 1) -> bool:
        """Add a name with its id (composite ids joined by "|"). Returns False,
        adding nothing, for an empty name or an id that is empty or "-1"."""
        name = (name or "").strip()
        kb_id = clean_kb_id(kb_id)
        if not name or not kb_id:
            return False
        id_index = self._id_index.get(kb_id)
        if id_index is None:
            id_index = self._id_index[kb_id] = len(self._ids)
            self._ids.append(kb_id)
        self._labels.setdefault(label or SHARED, _LabelIndex()).add(name, id_index, count)
        return True

    def add_records(
        self, records: Iterable[Any], label_map: Optional[Dict[str, str]] = None
    ) -> int:
        """Add the mentions of corpus records (`SourceDocument`s, e.g. from
        `spacy_biobert.corpora.iter_pubtator_records`). A composite mention's
        individual mentions (BC5CDR's 7th column) are added with their own
        ids when their number matches. Returns the number of names added."""
        added = 0
        for rec in records:
            for m in rec.mentions:
                label = (label_map or {}).get(m.type, m.type)
                added += self._add_mention(m.text, m.kb_id, label, m.components)
        return added

    def add_docs(
        self, docs: Iterable[Any], label_map: Optional[Dict[str, str]] = None
    ) -> int:
        """Add the gold mentions of Docs from the corpus readers
        (`doc.spans["mentions"]`, else `doc.ents`) with their `kb_id_`."""
        from ..corpora._base import SOURCE_KEY
        from ..extensions import MENTIONS_KEY

        added = 0
        for doc in docs:
            spans = doc.spans[MENTIONS_KEY] if MENTIONS_KEY in doc.spans else doc.ents
            info = (doc.user_data.get(SOURCE_KEY) or {}).get("mentions") or {}
            for span in spans:
                label = (label_map or {}).get(span.label_, span.label_)
                components = (info.get(span.id_) or {}).get("components")
                added += self._add_mention(span.text, span.kb_id_, label, components)
        return added

    def _add_mention(self, text: str, kb_id: str, label: str, components: Optional[str]) -> int:
        added = int(self.add(text, kb_id, label))
        if components:
            parts = [p.strip() for p in components.split("|")]
            ids = [p.strip() for p in (kb_id or "").split("|")]
            if len(parts) == len(ids) > 1:
                for part, part_id in zip(parts, ids):
                    added += int(self.add(part, part_id, label))
        return added

    def add_tsv(self, path: Union[str, Path], label: Optional[str] = None) -> int:
        """Add `name<TAB>id[<TAB>label]` lines (UTF-8; blank lines and lines
        starting with "#" are skipped). A third column overrides `label`.
        Returns the number of names added."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(Errors.E403.format(path=path))
        added = 0
        with path.open(encoding="utf8") as fp:
            for line_no, line in enumerate(fp, 1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#"):
                    continue
                cols = line.split("\t")
                if len(cols) not in (2, 3) or not cols[0].strip() or not cols[1].strip():
                    raise ValueError(Errors.E404.format(path=path, line=line_no, text=line[:80]))
                row_label = cols[2].strip() if len(cols) == 3 else label
                added += int(self.add(cols[0], cols[1], row_label))
        return added

    # --- lookup ---------------------------------------------------------------

    def _indexes(self, label: Optional[str]) -> List[_LabelIndex]:
        out = []
        for key in ((label,) if label == SHARED else (label, SHARED)):
            index = self._labels.get(key) if key is not None else None
            if index is not None:
                if not index.built:
                    index.build(self.ngram)
                out.append(index)
        return out

    def build(self) -> "NameKB":
        """Build every index now (otherwise done on first lookup)."""
        for index in self._labels.values():
            if not index.built:
                index.build(self.ngram)
        return self

    def link(self, text: str, label: Optional[str] = None, threshold: float = 0.7) -> Optional[Candidate]:
        """The id of a name (see the module docstring), or None."""
        return self.link_many([text], label, threshold)[0]

    def link_many(
        self, texts: Sequence[str], label: Optional[str] = None, threshold: float = 0.7
    ) -> List[Optional[Candidate]]:
        """`link` for many names of one label; approximate matching is
        batched. label None: the shared index only."""
        indexes = self._indexes(label if label is not None else SHARED)
        out: List[Optional[Candidate]] = [None] * len(texts)
        if not indexes:
            return out
        norms = [normalize_name(t) for t in texts]
        todo = []
        for i, (text, norm) in enumerate(zip(texts, norms)):
            for index in indexes:
                hit = index.lookup(text, norm)
                if hit is not None:
                    out[i] = Candidate(self._ids[hit[0]], 1.0, hit[1])
                    break
            else:
                if norm:
                    todo.append(i)
        if todo and threshold <= 1.0:
            best: Dict[int, Tuple[int, float]] = {}
            for index in indexes:
                for i, found in zip(todo, index.similar([norms[i] for i in todo], self.ngram)):
                    if found is not None and found[1] > best.get(i, (0, -1.0))[1]:
                        best[i] = found
            for i, (id_index, score) in best.items():
                if score >= threshold:
                    out[i] = Candidate(self._ids[id_index], score, "similar")
        return out

    # --- serialization ---------------------------------------------------------

    def to_bytes(self) -> bytes:
        self.build()
        return srsly.msgpack_dumps(
            {
                "version": FORMAT_VERSION,
                "ngram": self.ngram,
                "ids": self._ids,
                "labels": {label: index.to_dict() for label, index in self._labels.items()},
            }
        )

    def from_bytes(self, data: bytes) -> "NameKB":
        msg = srsly.msgpack_loads(data)
        if not isinstance(msg, dict) or msg.get("version") != FORMAT_VERSION:
            found = msg.get("version") if isinstance(msg, dict) else type(msg).__name__
            raise ValueError(Errors.E402.format(version=found, expected=FORMAT_VERSION))
        self.ngram = msg["ngram"]
        self._ids = list(msg["ids"])
        self._id_index = {kb_id: i for i, kb_id in enumerate(self._ids)}
        self._labels = {
            label: _LabelIndex.from_dict(index) for label, index in msg["labels"].items()
        }
        return self

    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the KB into the folder `path` (created): kb.msgpack plus a
        human-readable meta.json (labels, names per label, ids)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        data = self.to_bytes()
        with (path / KB_FILE).open("wb") as fp:
            fp.write(data)
        srsly.write_json(path / "meta.json", self.meta())

    def from_disk(self, path: Union[str, Path]) -> "NameKB":
        path = Path(path)
        file = path / KB_FILE if path.is_dir() else path
        if not file.exists():
            raise FileNotFoundError(Errors.E401.format(path=path))
        with file.open("rb") as fp:
            return self.from_bytes(fp.read())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "NameKB":
        return cls().from_disk(path)

    def meta(self) -> Dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "ngram": self.ngram,
            "ids": len(self._ids),
            "names": len(self),
            "names_per_label": {label: len(index.counts) for label, index in sorted(self._labels.items())},
        }

    def __repr__(self) -> str:
        per = ", ".join(f"{k or '(shared)'}: {len(v.counts)}" for k, v in sorted(self._labels.items()))
        return f"NameKB({len(self)} names, {len(self._ids)} ids; {per})"
