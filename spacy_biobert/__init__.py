"""spacy-biobert: BioBERT-class transformers for biomedical text mining in spaCy.

Importing registers the factories and architectures (spaCy also finds them
through entry points, so a packaged pipeline loads without this import) and
every Doc/Span extension (`doc._.gold_relations`, `doc._.relations`, ...; see
`spacy_biobert.extensions`; `install_extensions()` is idempotent). Cheap: no
model, corpus or network access happens here, and torch is not imported.
"""
from .about import __version__
from .corpora.formats import read_corpus, write_corpus
from .evaluation import make_relations_scorer
from .extensions import install_extensions
from .models import DEFAULT_MODEL_NAME, KNOWN_MODELS, OFFLINE_ALIAS, resolve_model_name
from .packaging import create_configure_components
from .pipeline import make_biobert, make_relation_extractor, relation_triples
from .precision import set_precision
from .tokenizer import create_biomedical_tokenizer
from .training import create_training_logger
from .visualize import render

install_extensions()

__all__ = [
    "__version__",
    "install_extensions",
    "DEFAULT_MODEL_NAME",
    "KNOWN_MODELS",
    "OFFLINE_ALIAS",
    "resolve_model_name",
    "make_biobert",
    "make_relation_extractor",
    "relation_triples",
    "create_biomedical_tokenizer",
    "create_training_logger",
    "read_corpus",
    "write_corpus",
    "render",
    "create_configure_components",
    "make_relations_scorer",
    "set_precision",
]
