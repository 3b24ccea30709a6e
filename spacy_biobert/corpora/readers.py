"""Registered corpus readers for the `[corpora]` block of a training config.

```
[corpora.train]
@readers = "spacy-biobert.PubTatorCorpus.v1"
path = ${paths.train}
limit = null
label_map = null          # a mapping, e.g. {"SpecificDisease": "Disease"}, or a
                          # preset name ("ncbi", "chemprot-gene"); renames doc.ents
dedupe = true
skip_bad = false
```
Each returns a callable `(nlp) -> Iterator[Example]`, like
`spacy.training.Corpus`: the predicted Doc is `nlp.make_doc(text)` (the
pipeline's own tokenizer) with `doc._.doc_id` set, and the reference Doc
has the same tokens, with gold mentions (expanded to token boundaries when
they don't fall on them, counted and logged as W101), entities, relations and
sentence boundaries. The file is streamed again on every epoch.
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Union

from spacy.language import Language
from spacy.training import Example
from spacy.util import registry

from .checks import max_chars_of
from .errors import CorpusStats
from .formats import FORMATS, iter_records
from .label_maps import resolve_label_map
from .reading import apply_limit
from .records import SourceDocument, source_to_doc

# (stats, on_error, max_chars) -> records
RecordsFn = Callable[[CorpusStats, str, Optional[int]], Iterable[SourceDocument]]


class BiomedicalCorpus:
    """Iterate Examples from a biomedical corpus, re-reading the source on
    every call. `stats` holds the counts of the last complete pass."""

    def __init__(
        self,
        records: RecordsFn,
        path: Union[str, Path],
        *,
        source_format: str,
        limit: Optional[int] = None,
        label_map: Optional[Union[str, Dict[str, str]]] = None,
        skip_bad: bool = False,
    ):
        self.records = records
        self.path = str(path)
        self.source_format = source_format
        self.limit = limit
        self.label_map = resolve_label_map(label_map)
        self.on_error = "skip" if skip_bad else "raise"
        self.stats: Optional[CorpusStats] = None
        self._warned = False

    def __call__(self, nlp: Language) -> Iterator[Example]:
        stats = CorpusStats(path=self.path)
        records = self.records(stats, self.on_error, max_chars_of(nlp))
        for rec in apply_limit(records, self.limit):
            reference = source_to_doc(
                rec,
                nlp.make_doc,
                label_map=self.label_map,
                stats=stats,
                source_format=self.source_format,
            )
            predicted = nlp.make_doc(rec.text)
            predicted._.doc_id = rec.doc_id
            yield Example(predicted, reference)
        self.stats = stats
        if not self._warned:
            stats.log_warnings()
            self._warned = True


def _corpus(
    path: Union[str, Path],
    source_format: str,
    *,
    limit: Optional[int],
    label_map: Optional[Union[str, Dict[str, str]]],
    skip_bad: bool,
    **options: Any,
) -> BiomedicalCorpus:
    """The corpus of `path` read by the format table's reader of
    `source_format` (`formats.iter_records`, with `options`)."""

    def records(
        stats: CorpusStats, on_error: str, max_chars: Optional[int]
    ) -> Iterable[SourceDocument]:
        return iter_records(
            path, source_format, on_error=on_error, stats=stats, max_chars=max_chars, **options
        )

    return BiomedicalCorpus(
        records, path, source_format=source_format, limit=limit, label_map=label_map, skip_bad=skip_bad
    )


@registry.readers("spacy-biobert.PubTatorCorpus.v1")
def create_pubtator_corpus(
    path: Union[str, Path],
    limit: Optional[int] = None,
    label_map: Optional[Union[str, Dict[str, str]]] = None,
    dedupe: bool = True,
    skip_bad: bool = False,
) -> Callable[[Language], Iterable[Example]]:
    """Examples from a PubTator file (BC5CDR, NCBI-disease). dedupe drops a
    repeated document with identical content (NCBI train has one)."""
    return _corpus(path, "pubtator", limit=limit, label_map=label_map, skip_bad=skip_bad, dedupe=dedupe)


@registry.readers("spacy-biobert.BioCCorpus.v1")
def create_bioc_corpus(
    path: Union[str, Path],
    limit: Optional[int] = None,
    label_map: Optional[Union[str, Dict[str, str]]] = None,
    skip_bad: bool = False,
) -> Callable[[Language], Iterable[Example]]:
    """Examples from a BioC XML (.xml) or BioC JSON (.json) file."""
    return _corpus(path, "bioc", limit=limit, label_map=label_map, skip_bad=skip_bad)


@registry.readers("spacy-biobert.ChemProtCorpus.v1")
def create_chemprot_corpus(
    path: Union[str, Path],
    limit: Optional[int] = None,
    label_map: Optional[Union[str, Dict[str, str]]] = None,
    skip_bad: bool = False,
) -> Callable[[Language], Iterable[Example]]:
    """Examples from a ChemProt split: a folder (e.g. chemprot_training) or a
    file prefix (e.g. .../chemprot_training/chemprot_training); the
    *_abstracts.tsv, *_entities.tsv and *_relations.tsv files are found by
    suffix."""
    return _corpus(path, "chemprot", limit=limit, label_map=label_map, skip_bad=skip_bad)


@registry.readers("spacy-biobert.JSONLCorpus.v1")
def create_jsonl_corpus(
    path: Union[str, Path],
    limit: Optional[int] = None,
    label_map: Optional[Union[str, Dict[str, str]]] = None,
    skip_bad: bool = False,
) -> Callable[[Language], Iterable[Example]]:
    """Examples from a JSONL file (one document a line: id, text, mentions,
    relations; the format `convert` writes)."""
    return _corpus(path, "jsonl", limit=limit, label_map=label_map, skip_bad=skip_bad)


@registry.readers("spacy-biobert.BratCorpus.v1")
def create_brat_corpus(
    path: Union[str, Path],
    limit: Optional[int] = None,
    label_map: Optional[Union[str, Dict[str, str]]] = None,
    skip_bad: bool = False,
) -> Callable[[Language], Iterable[Example]]:
    """Examples from brat standoff: a folder of NAME.txt + NAME.ann pairs (read
    recursively, in name order) or one .ann file. Entities (T, discontinuous
    ones over their extent), normalisations (N: kb_id_) and relations (R,
    mention level) are read; events, attributes and notes are counted (W807)."""
    return _corpus(path, "brat", limit=limit, label_map=label_map, skip_bad=skip_bad)


# The registered reader of each input format (the format table's `reader`
# column): the one way a gold corpus is read, in training configs and by every
# evaluator. A DocBin (.spacy) is read by spaCy's own corpus reader (label_map
# does not apply: its types are set).
READERS: Dict[str, str] = {name: f.reader for name, f in FORMATS.items() if f.reader}


def gold_corpus(
    path: Union[str, Path],
    format: Optional[str] = None,
    *,
    limit: Optional[int] = None,
    label_map: Optional[Union[str, Dict[str, str]]] = None,
) -> Callable[[Language], Iterable[Example]]:
    """The registered reader (`READERS`) for a gold corpus in any supported
    format (detected from the path when None): a callable `(nlp) ->
    Iterator[Example]`, as in a training config's [corpora] block."""
    from ..extensions import install_extensions
    from .formats import detect_format

    install_extensions()
    fmt = format or detect_format(path)
    if fmt not in READERS:
        from .formats import unknown_format

        raise ValueError(unknown_format(fmt, path, list(READERS)))
    reader = registry.readers.get(READERS[fmt])
    if fmt == "spacy":
        return reader(
            path=str(path), gold_preproc=False, max_length=0, limit=limit or 0, augmenter=None
        )
    return reader(path=str(path), limit=limit, label_map=label_map)
