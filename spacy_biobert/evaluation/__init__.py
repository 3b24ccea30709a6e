"""Evaluation the way the field reports it (strict, on source offsets)."""
from .ner import PRF, NERScores, evaluate_ner, score_mentions

__all__ = ["PRF", "NERScores", "evaluate_ner", "score_mentions"]
