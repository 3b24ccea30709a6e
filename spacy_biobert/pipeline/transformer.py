"""The `biobert` factory: spacy-transformers' Transformer component with a
BioBERT default, so `ner` and `biobert_relations` can listen to it."""
from typing import Callable, List

from spacy.language import Language
from thinc.api import Config, Model

DEFAULT_CONFIG = """
[biobert]
max_batch_items = 4096

[biobert.set_extra_annotations]
@annotation_setters = "spacy-transformers.null_annotation_setter.v1"

[biobert.model]
@architectures = "spacy-biobert.TransformerModel.v1"
name = "dmis-lab/biobert-base-cased-v1.2"
tokenizer_config = {"use_fast": true}
transformer_config = {}
mixed_precision = false
grad_scaler_config = {}

# Strided windows: 128 tokens, a new window every 96, so windows overlap by 32
# tokens and every token of a document of any length gets a vector.
[biobert.model.get_spans]
@span_getters = "spacy-transformers.strided_spans.v1"
window = 128
stride = 96
"""


@Language.factory(
    "biobert",
    assigns=["doc._.trf_data"],
    default_config=Config().from_str(DEFAULT_CONFIG)["biobert"],
)
def make_biobert(
    nlp: Language,
    name: str,
    model: Model,
    set_extra_annotations: Callable[[List, object], None],
    max_batch_items: int,
):
    """A BioBERT-class transformer whose output (`doc._.trf_data`) other
    components read through `spacy-transformers.TransformerListener.v1`.
    At inference the encoder sees at most `max_batch_items` padded wordpieces
    at a time, however long the document; loading refuses pickled code in the
    weights (E005). See `spacy_biobert.pipeline.biobert_transformer`."""
    from .biobert_transformer import BiobertTransformer

    return BiobertTransformer(
        nlp.vocab,
        model,
        set_extra_annotations,
        max_batch_items=max_batch_items,
        name=name,
    )
