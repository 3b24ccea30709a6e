"""Deprecated: moved to `spacy_biobert.evaluation.relations` (kept importable
for one release)."""

from .evaluation.relations import (  # noqa: F401
    evaluate_relations,
    score_cid,
    score_document_relations,
    score_relations,
)

__all__ = ["evaluate_relations", "score_cid", "score_document_relations", "score_relations"]
