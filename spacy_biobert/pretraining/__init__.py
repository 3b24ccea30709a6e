"""Domain-adaptive pretraining (the BioBERT recipe): continue pretraining a
base model on biomedical text with MLM (+ NSP); `spacy-biobert pretrain`."""

from .data import TextDocument, TextStats, is_heldout, iter_documents, split_sentences
from .examples import Collator, Instance, make_instances
from .loop import (
    METRICS_FILE,
    OBJECTIVES,
    PretrainResult,
    PretrainSettings,
    evaluate,
    load_pretraining_model,
    pretrain,
)

__all__ = [
    "METRICS_FILE",
    "OBJECTIVES",
    "Collator",
    "Instance",
    "PretrainResult",
    "PretrainSettings",
    "TextDocument",
    "TextStats",
    "evaluate",
    "is_heldout",
    "iter_documents",
    "load_pretraining_model",
    "make_instances",
    "pretrain",
    "split_sentences",
]
