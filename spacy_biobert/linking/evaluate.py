"""Deprecated: moved to `spacy_biobert.evaluation.linking` (kept importable
for one release). Scores are now fractions, as every evaluator returns."""

from ..evaluation.linking import (  # noqa: F401
    LINKING_FACTORIES,
    evaluate_linking,
    gold_concepts,
    linking_components,
    predicted_concepts,
    score_concepts,
)

__all__ = [
    "LINKING_FACTORIES",
    "evaluate_linking",
    "gold_concepts",
    "linking_components",
    "predicted_concepts",
    "score_concepts",
]
