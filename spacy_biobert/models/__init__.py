"""Thinc architectures (shape only; weights load at `initialize`)."""
from .base_models import DEFAULT_MODEL_NAME, KNOWN_MODELS, OFFLINE_ALIAS, resolve_model_name
from .entity_marked_model import create_entity_marked_relation_model
from .levitated_marker_model import create_levitated_marker_relation_model
from .marked_relation_model import create_marked_relation_model
from .ner_features import create_listener_with_features
from .pairs import EntityPairs, create_entity_pairs
from .relation_model import create_relation_model, create_relation_model_v2
from .shared_transformer import SharedTransformer, create_shared_transformer
from .transformer import create_tok2vec_transformer, create_transformer_model

__all__ = [
    "DEFAULT_MODEL_NAME",
    "KNOWN_MODELS",
    "OFFLINE_ALIAS",
    "resolve_model_name",
    "create_transformer_model",
    "create_tok2vec_transformer",
    "create_relation_model",
    "create_relation_model_v2",
    "create_marked_relation_model",
    "create_entity_marked_relation_model",
    "create_levitated_marker_relation_model",
    "create_shared_transformer",
    "SharedTransformer",
    "create_entity_pairs",
    "EntityPairs",
    "create_listener_with_features",
]
