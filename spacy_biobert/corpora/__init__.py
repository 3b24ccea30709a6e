"""Biomedical corpora in and out: PubTator, BioC (XML/JSON), ChemProt TSV, brat
standoff, JSONL, .spacy and plain text.

Readers stream Docs (one per document, sentence boundaries set) following the
data contract in `spacy_biobert.extensions`; writers turn gold or predicted
Docs back into each format. Every format is a row of one table
(`formats.FORMATS`: detection, reading from a path or a stream, writing, gzip);
plain text follows one rule (`text`), sentences one splitter (`sentences`);
what each output format cannot hold is counted by `losses` (`write_corpus`
refuses to drop it without `allow_loss`). See docs/corpora.md.
"""

from ..extensions import SOURCE_KEY, mention_ids
from .bioc_format import iter_bioc_records, read_bioc, write_bioc_json, write_bioc_xml
from .brat import iter_brat_records, read_brat, write_brat
from .checks import DEFAULT_MAX_CHARS
from .chemprot import iter_chemprot_records, read_chemprot, write_chemprot
from .errors import CorpusFormatError, CorpusStats
from .formats import FORMATS, Format, detect_format, iter_records, read_corpus, write_corpus
from .io import atomic_write
from .losses import LossReport
from .pubtator import iter_pubtator_records, read_pubtator, write_pubtator
from .readers import (
    BiomedicalCorpus,
    create_bioc_corpus,
    create_brat_corpus,
    create_chemprot_corpus,
    create_pubtator_corpus,
)
from .records import SourceDocument, SourceMention, doc_to_source, source_to_doc
from .sentences import sentence_starts, split_sentences
from .text import DEFAULT_TEXT_DOCS, TEXT_DOCS, iter_text, iter_text_records

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
    "iter_brat_records",
    "read_brat",
    "write_brat",
    "iter_chemprot_records",
    "read_chemprot",
    "write_chemprot",
    "iter_pubtator_records",
    "read_pubtator",
    "write_pubtator",
    "BiomedicalCorpus",
    "create_pubtator_corpus",
    "create_bioc_corpus",
    "create_brat_corpus",
    "create_chemprot_corpus",
    "FORMATS",
    "Format",
    "detect_format",
    "iter_records",
    "read_corpus",
    "write_corpus",
    "LossReport",
    "sentence_starts",
    "split_sentences",
    "DEFAULT_TEXT_DOCS",
    "TEXT_DOCS",
    "iter_text",
    "iter_text_records",
]
