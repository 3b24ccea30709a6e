"""`biobert_linker`: sets `kb_id_` on `doc.ents` from a saved name -> id KB.

    nlp = spacy.load("training/bc5cdr/model-best")           # biobert + ner
    nlp.add_pipe("biobert_abbreviations")
    linker = nlp.add_pipe("biobert_linker", config={"threshold": 0.7})
    linker.set_kb(NameKB.load("kb/bc5cdr"))                    # or nlp.initialize / initialize(kb=...)
    nlp.to_disk("linked")                                     # the KB is saved with the pipeline

Each entity whose label the KB knows (or `labels`) is looked up in that
label's index (`spacy_biobert.linking.kb`; a Disease mention only among
disease concepts, a Chemical only among chemicals, plus untyped names):
exact name, normalised name (case, plural, hyphen, word order, spelling),
a composite mention's parts ("ovarian and breast cancer" -> two ids joined
by "|"), then character n-gram TF-IDF cosine >= `threshold`. A short form detected by
`biobert_abbreviations` is looked up through its long form first. When
nothing qualifies the entity keeps no id (`kb_id_ == ""`, which the
PubTator writer writes as "-1", as the corpora do): "no id" is an answer,
never an error. Names not yet cached are looked up in batches (`pipe`).

The KB is saved with the component (`kb/kb.npz`, format 2); a pipeline
saved with a format-1 KB (`kb/kb.msgpack`) still loads (its indexes are
rebuilt from its names).

In a config:

    [components.biobert_linker]
    factory = "biobert_linker"
    threshold = 0.7

    [initialize.components.biobert_linker]
    kb = "kb/bc5cdr"      # a folder from `spacy-biobert build-kb`; or leave it
                          # out to build the KB from the training corpus's gold ids
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import SimpleFrozenList, from_bytes, from_disk, to_bytes, to_disk

from ..errors import Errors
from ..extensions import install_extensions
from ..linking.kb import SHARED, Candidate, NameKB

DEFAULT_CONFIG = {
    "threshold": 0.7,
    "use_abbreviations": True,
    "labels": None,
    "overwrite": True,
}
_CACHE_SIZE = 200_000


@Language.factory(
    "biobert_linker",
    assigns=["token.ent_kb_id"],
    requires=["doc.ents"],
    default_config=DEFAULT_CONFIG,
)
def make_linker(
    nlp: Language,
    name: str,
    threshold: float,
    use_abbreviations: bool,
    labels: Optional[List[str]],
    overwrite: bool,
) -> "NameLinker":
    """Dictionary and string-similarity entity linking (see the module docstring).

    threshold: the least cosine similarity of character n-grams for an
        approximate match (exact and normalised matches always count); above
        1.0 turns approximate matching off.
    use_abbreviations: link a short form through its long form
        (`span._.long_form`, from `biobert_abbreviations` earlier in the pipeline).
    labels: the entity labels to link; None = every label of the KB (every
        label when the KB has only untyped names).
    overwrite: replace a `kb_id_` an entity already has.
    """
    return NameLinker(
        nlp.vocab,
        name,
        threshold=threshold,
        use_abbreviations=use_abbreviations,
        labels=labels,
        overwrite=overwrite,
    )


class NameLinker:
    def __init__(
        self,
        vocab: Any,
        name: str = "biobert_linker",
        *,
        threshold: float = 0.7,
        use_abbreviations: bool = True,
        labels: Optional[Sequence[str]] = None,
        overwrite: bool = True,
        kb: Optional[NameKB] = None,
    ):
        install_extensions()
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold < 0:
            raise ValueError(Errors.E407.format(value=threshold, name=name))
        self.vocab = vocab
        self.name = name
        self.cfg: Dict[str, Any] = {
            "threshold": float(threshold),
            "use_abbreviations": bool(use_abbreviations),
            "labels": list(labels) if labels is not None else None,
            "overwrite": bool(overwrite),
        }
        self.kb = kb if kb is not None else NameKB()
        self._cache: Dict[Tuple[str, str], Optional[Candidate]] = {}

    # --- knowledge base ----------------------------------------------------------

    def set_kb(self, kb: NameKB) -> None:
        self.kb = kb
        self._cache.clear()

    def initialize(
        self,
        get_examples: Optional[Callable[[], Iterable[Example]]] = None,
        *,
        nlp: Optional[Language] = None,
        kb: Optional[Union[str, Path]] = None,
        tsv: Optional[Union[str, Path]] = None,
        tsv_label: Optional[str] = None,
        label_map: Optional[Dict[str, str]] = None,
    ) -> None:
        """Load the KB from `kb` (a folder from `spacy-biobert build-kb`), or
        build it from the gold mentions (with their kb_id_) of the examples'
        references; `tsv` adds `name<TAB>id[<TAB>label]` lines either way."""
        if kb is not None:
            new = NameKB.load(kb)
        else:
            new = NameKB()
            if get_examples is not None:
                new.add_docs((eg.reference for eg in get_examples()), label_map=label_map)
        if tsv is not None:
            new.add_tsv(tsv, label=tsv_label)
        self.set_kb(new.build())

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels linked (None in cfg: the KB's typed labels)."""
        if self.cfg["labels"] is not None:
            return tuple(self.cfg["labels"])
        return tuple(label for label in self.kb.labels if label != SHARED)

    # --- linking ------------------------------------------------------------------

    def __call__(self, doc: Doc) -> Doc:
        if not len(self.kb):
            raise ValueError(Errors.E406.format(name=self.name))
        self._prefetch([doc])
        wanted = set(self.labels)
        link_all = not wanted  # an untyped KB links every entity
        changed = False
        ents = []
        for ent in doc.ents:
            if (link_all or ent.label_ in wanted) and (self.cfg["overwrite"] or not ent.kb_id_):
                found = self.link_span(ent)
                kb_id = found.kb_id if found is not None else ""
                if kb_id != ent.kb_id_:
                    ent = Span(doc, ent.start, ent.end, label=ent.label, kb_id=kb_id)
                    changed = True
            ents.append(ent)
        if changed:
            doc.ents = ents
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterable[Doc]:
        """Link batches of docs; the names of a batch that are not cached are
        looked up together (approximate matching is batched)."""
        batch: List[Doc] = []
        for doc in stream:
            batch.append(doc)
            if len(batch) >= batch_size:
                yield from self._pipe_batch(batch)
                batch = []
        if batch:
            yield from self._pipe_batch(batch)

    def _pipe_batch(self, docs: List[Doc]) -> Iterable[Doc]:
        if len(self.kb):
            self._prefetch(docs)
        for doc in docs:
            yield self(doc)

    def _prefetch(self, docs: Sequence[Doc]) -> None:
        """Look up, per label and in one batch, every entity text and long
        form of the docs that is not cached yet."""
        wanted = set(self.labels)
        todo: Dict[str, List[str]] = {}
        for doc in docs:
            for ent in doc.ents:
                if wanted and ent.label_ not in wanted:
                    continue
                if not (self.cfg["overwrite"] or not ent.kb_id_):
                    continue
                texts = [ent.text]
                if self.cfg["use_abbreviations"]:
                    long_form = ent._.long_form
                    if long_form is not None:
                        texts.append(long_form.text)
                for text in texts:
                    if (ent.label_, text) not in self._cache:
                        todo.setdefault(ent.label_, []).append(text)
        if sum(len(v) for v in todo.values()) + len(self._cache) > _CACHE_SIZE:
            self._cache.clear()
        for label, texts in todo.items():
            unique = list(dict.fromkeys(texts))
            for text, found in zip(unique, self.kb.link_many(unique, label, self.cfg["threshold"])):
                self._cache[(label, text)] = found

    def link_span(self, span: Span) -> Optional[Candidate]:
        """The candidate for an entity span: through its long form when it is a
        detected short form (and that links), else by its own text."""
        label = span.label_
        if self.cfg["use_abbreviations"]:
            long_form = span._.long_form
            if long_form is not None:
                found = self.link_text(long_form.text, label)
                if found is not None:
                    return found
        return self.link_text(span.text, label)

    def link_text(self, text: str, label: str) -> Optional[Candidate]:
        key = (label, text)
        if key in self._cache:
            return self._cache[key]
        found = self.kb.link(text, label, self.cfg["threshold"])
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = found
        return found

    # --- serialization -------------------------------------------------------------

    def to_bytes(self, *, exclude: Iterable[str] = SimpleFrozenList()) -> bytes:
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "kb": lambda: self.kb.to_bytes(),
        }
        return to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = SimpleFrozenList()) -> "NameLinker":
        def load_kb(b: bytes) -> None:
            self.set_kb(NameKB().from_bytes(b))

        deserialize = {
            "cfg": lambda b: self.cfg.update(srsly.json_loads(b)),
            "kb": load_kb,
        }
        from_bytes(bytes_data, deserialize, exclude)
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()) -> None:
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "kb": lambda p: self.kb.to_disk(p),
        }
        to_disk(path, serialize, exclude)

    def from_disk(
        self, path: Union[str, Path], *, exclude: Iterable[str] = SimpleFrozenList()
    ) -> "NameLinker":
        def load_kb(p: Path) -> None:
            self.set_kb(NameKB.load(p))

        deserialize = {
            "cfg": lambda p: self.cfg.update(srsly.read_json(p)),
            "kb": load_kb,
        }
        from_disk(path, deserialize, exclude)
        return self
