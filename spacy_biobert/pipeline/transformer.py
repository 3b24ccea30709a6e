"""The `biobert` factory: spacy-transformers' Transformer component with a
BioBERT default, so `ner` and `biobert_relations` can listen to it."""
from typing import Callable, List

from spacy.language import Language
from thinc.api import Config, Model

from ..precision import DEFAULT_PRECISION

DEFAULT_CONFIG = """
[biobert]
max_batch_items = 4096
precision = "fp32"

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
    precision: str = DEFAULT_PRECISION,
):
    """A BioBERT-class transformer whose output (`doc._.trf_data`) other
    components read through `spacy-transformers.TransformerListener.v1`.
    At inference the encoder sees at most `max_batch_items` padded wordpieces
    at a time, however long the document; loading refuses pickled code in the
    weights (E005). See `spacy_biobert.pipeline.biobert_transformer`.

    precision: "fp32" (the default: behaviour as before), "bf16" or "auto",
    how the encoder runs on the CPU, in training and at inference; "bf16" and
    "auto" run bfloat16 autocast only where the CPU has native bfloat16, else
    fp32 with one warning. A component setting, not an architecture argument,
    so the released architectures stay as they are and saved configs load
    unchanged: see `spacy_biobert.precision`."""
    from ..precision import apply_precision, check_precision, resolve_precision
    from .biobert_transformer import BiobertTransformer

    check_precision(precision)
    component = BiobertTransformer(
        nlp.vocab,
        model,
        set_extra_annotations,
        max_batch_items=max_batch_items,
        name=name,
    )
    apply_precision(component.model, resolve_precision(precision, where=f"[components.{name}] precision"))
    return component
