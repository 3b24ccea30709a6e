"""Evaluation the way the field reports it (strict, on source offsets).

One module per task, all scoring `Example`s from the registered corpus
readers (`spacy_biobert.corpora.readers.gold_corpus` reads any supported
format) with one P/R/F type, `PRF`; every score is a fraction:

- `ner`: strict entity-level P/R/F1 at the corpus's own offsets, per type,
  on the corpus's own label set.
- `relations`: mention-level (ChemProt) and document-level (BC5CDR CID)
  relation P/R/F1; the scorer of `biobert_relations`
  (`spacy-biobert.relations_scorer.v1`).
- `linking`: document-level concept-id P/R/F1 (BioCreative V DNER).
"""

from .linking import evaluate_linking, score_concepts
from .ner import NERScores, evaluate_ner, score_mentions
from .relations import (
    evaluate_relations,
    make_relations_scorer,
    score_cid,
    score_document_relations,
    score_relations,
)
from .scores import PRF, percent, score_tuples

__all__ = [
    "PRF",
    "percent",
    "score_tuples",
    "NERScores",
    "evaluate_ner",
    "score_mentions",
    "evaluate_relations",
    "make_relations_scorer",
    "score_cid",
    "score_document_relations",
    "score_relations",
    "evaluate_linking",
    "score_concepts",
]
