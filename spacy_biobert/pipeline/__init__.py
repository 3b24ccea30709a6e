"""Pipeline components (factories)."""
from .abbreviations import AbbreviationDetector, make_abbreviation_detector
from .linker import NameLinker, make_linker
from .relations import (
    RelationExtractor,
    aggregate_by_kb_id,
    copy_gold_entities,
    kb_relation_triples,
    make_relation_extractor,
    relation_triples,
    relations_to_displacy,
)
from .sentences import biobert_sentences
from .transformer import make_biobert
from .typed_ner import EntityMerger, TypedEntityRecognizer, make_entity_merger, make_typed_ner

__all__ = [
    "make_biobert",
    "biobert_sentences",
    "make_relation_extractor",
    "RelationExtractor",
    "relation_triples",
    "kb_relation_triples",
    "aggregate_by_kb_id",
    "copy_gold_entities",
    "relations_to_displacy",
    "make_abbreviation_detector",
    "AbbreviationDetector",
    "make_linker",
    "NameLinker",
    "make_typed_ner",
    "TypedEntityRecognizer",
    "make_entity_merger",
    "EntityMerger",
]
