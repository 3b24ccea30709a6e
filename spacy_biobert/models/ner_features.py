"""Token features beside the transformer for NER heads.

The offline base model is uncased, and its word pieces blur chemical
morphology ("-ine", "-ase", capitals, digits). `ListenerWithFeatures`
concatenates the transformer listener's vectors with hashed embeddings of
spaCy's lexical attributes (NORM, PREFIX, SUFFIX, SHAPE: SHAPE keeps case
and digits), so a head sees both. With `attrs = []` it is the plain
listener, which lets one config switch the features by one variable and
measure them (configs/biomed.cfg, `[paths] ner_features`).
"""

from typing import List

from spacy.ml.models import MultiHashEmbed
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d


@registry.architectures("spacy-biobert.ListenerWithFeatures.v1")
def create_listener_with_features(
    listener: Model[List[Doc], List[Floats2d]],
    attrs: List[str],
    rows: int = 5000,
    width: int = 64,
) -> Model[List[Doc], List[Floats2d]]:
    """listener's vectors, concatenated with a `width`-wide MultiHashEmbed of
    `attrs` (`rows` hash rows each) when attrs is not empty."""
    if not attrs:
        return listener
    embed = MultiHashEmbed(
        width=width,
        attrs=list(attrs),
        rows=[rows] * len(attrs),
        include_static_vectors=False,
    )
    return Model(
        "listener_with_features",
        _concat_forward,
        layers=[listener, embed],
        init=_concat_init,
        dims={"nO": None},
    )


def _concat_init(model: Model, X=None, Y=None) -> None:
    listener, embed = model.layers
    embed.initialize(X=X)
    if listener.has_dim("nO") and listener.get_dim("nO") is not None:
        model.set_dim("nO", listener.get_dim("nO") + embed.get_dim("nO"))


def _concat_forward(model: Model, docs: List[Doc], is_train: bool):
    # thinc's concatenate sums the children's input gradients, which for a
    # list of Docs do not exist; here each child backprops on its own part.
    listener, embed = model.layers
    vectors, backprop_listener = listener(docs, is_train)
    features, backprop_embed = embed(docs, is_train)
    width = vectors[0].shape[1] if vectors else 0
    if not model.has_dim("nO") or model.get_dim("nO") is None:
        if vectors:
            model.set_dim("nO", width + features[0].shape[1], force=True)
    output = [model.ops.xp.hstack((v, f)) for v, f in zip(vectors, features)]

    def backprop(d_output: List[Floats2d]) -> List[Doc]:
        backprop_listener([d[:, :width] for d in d_output])
        backprop_embed([d[:, width:] for d in d_output])
        return []

    return output, backprop
