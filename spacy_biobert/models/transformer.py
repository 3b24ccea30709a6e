"""The `biobert` transformer architecture: spacy-transformers' TransformerModel
with our loading (aliases, local folders, safe defaults, clear errors).

The registered name keeps "TransformerModel" so that spaCy's
`nlp.replace_listeners` recognises it; the copied listener config points at
our `Tok2VecTransformer`, which resolves names the same way.
"""
from typing import TYPE_CHECKING, Any, Callable, Dict, List

from spacy.util import registry
from thinc.api import Model

if TYPE_CHECKING:
    from spacy.tokens import Doc
    from spacy_transformers.data_classes import FullTransformerBatch
    from thinc.types import Floats2d, Ragged


@registry.architectures("spacy-biobert.TransformerModel.v1")
def create_transformer_model(
    name: str,
    get_spans: Callable,
    tokenizer_config: Dict[str, Any],
    transformer_config: Dict[str, Any],
    mixed_precision: bool = False,
    grad_scaler_config: Dict[str, Any] = {},  # noqa: B006 (spacy-transformers' signature)
) -> "Model[List[Doc], FullTransformerBatch]":
    """A transformer whose weights load at `initialize` from `name`: a local
    folder, an alias (see spacy_biobert.models.base_models.KNOWN_MODELS) or a
    hub id. Long documents are cut into (possibly overlapping) spans by
    `get_spans`, so every token gets a vector and nothing is truncated.
    """
    from spacy_transformers.layers import TransformerModel

    from .checked_shim import CheckedHFShim

    model = TransformerModel(
        name,
        get_spans,
        tokenizer_config,
        transformer_config,
        mixed_precision,
        grad_scaler_config,
    )
    # Saved bytes are checked before spacy-transformers loads them (safe_loading).
    wrapper = model.layers[0]
    wrapper.shims[0] = CheckedHFShim(
        wrapper.shims[0]._hfmodel,
        mixed_precision=mixed_precision,
        grad_scaler_config=dict(grad_scaler_config),
    )
    model.init = _init_transformer
    model.attrs["replace_listener_cfg"] = _replace_listener_cfg
    return model


@registry.architectures("spacy-biobert.Tok2VecTransformer.v1")
def create_tok2vec_transformer(
    name: str,
    get_spans: Callable,
    tokenizer_config: Dict[str, Any],
    pooling: "Model[Ragged, Floats2d]",
    grad_factor: float = 1.0,
    transformer_config: Dict[str, Any] = {},  # noqa: B006
    mixed_precision: bool = False,
    grad_scaler_config: Dict[str, Any] = {},  # noqa: B006
) -> "Model[List[Doc], List[Floats2d]]":
    """The transformer as one component's own tok2vec (what
    `nlp.replace_listeners("biobert", ...)` produces); same structure as
    spacy-transformers' Tok2VecTransformer.v3."""
    from spacy_transformers.layers import split_trf_batch, trfs2arrays
    from thinc.api import chain

    transformer = create_transformer_model(
        name,
        get_spans,
        tokenizer_config,
        transformer_config,
        mixed_precision,
        grad_scaler_config,
    )
    return chain(chain(transformer, split_trf_batch()), trfs2arrays(pooling, grad_factor))


def _init_transformer(model: Model, X=None, Y=None) -> None:
    """spacy-transformers' init, loading the weights through `load_hf_objects`."""
    from spacy_transformers.layers import transformer_model

    from .base_models import load_hf_objects

    if model.attrs["has_transformer"]:
        return
    hf_objects = load_hf_objects(
        model.attrs["name"],
        model._init_tokenizer_config,
        model._init_transformer_config,
    )
    model.attrs["set_transformer"](model, hf_objects)
    # The rest (inferring the width from a batch) is spacy-transformers' own.
    transformer_model.init(model, X=X, Y=Y)


def _replace_listener_cfg(tok2vec_model_cfg: Dict, listener_model_cfg: Dict) -> Dict:
    result = dict(tok2vec_model_cfg)
    if "TransformerListener" in listener_model_cfg.get("@architectures", ""):
        result["@architectures"] = "spacy-biobert.Tok2VecTransformer.v1"
        for key in ("pooling", "grad_factor"):
            if key in listener_model_cfg and key not in result:
                result[key] = listener_model_cfg[key]
    return result
