"""Biomedical corpora in and out: PubTator, BioC (XML/JSON), ChemProt TSV, JSONL.

Readers stream Docs (one per document, sentence boundaries set) following the
data contract in `spacy_biobert.extensions`; writers turn gold or predicted
Docs back into each format. See docs/corpora.md.
"""

from ._base import (
    DEFAULT_MAX_CHARS,
    SOURCE_KEY,
    CorpusFormatError,
    CorpusStats,
    SourceDocument,
    SourceMention,
    atomic_write,
    doc_to_source,
    mention_ids,
    source_to_doc,
)
from .bioc_format import iter_bioc_records, read_bioc, write_bioc_json, write_bioc_xml
from .chemprot import iter_chemprot_records, read_chemprot, write_chemprot
from .pubtator import iter_pubtator_records, read_pubtator, write_pubtator
from .readers import (
    BiomedicalCorpus,
    create_bioc_corpus,
    create_chemprot_corpus,
    create_pubtator_corpus,
)

__all__ = [
    "DEFAULT_MAX_CHARS",
    "SOURCE_KEY",
    "CorpusFormatError",
    "CorpusStats",
    "SourceDocument",
    "SourceMention",
    "atomic_write",
    "doc_to_source",
    "mention_ids",
    "source_to_doc",
    "iter_bioc_records",
    "read_bioc",
    "write_bioc_xml",
    "write_bioc_json",
    "iter_chemprot_records",
    "read_chemprot",
    "write_chemprot",
    "iter_pubtator_records",
    "read_pubtator",
    "write_pubtator",
    "BiomedicalCorpus",
    "create_pubtator_corpus",
    "create_bioc_corpus",
    "create_chemprot_corpus",
]
