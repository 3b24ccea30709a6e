"""`spacy-biobert.SharedTransformer.v1`: a layer that runs the encoder of an
upstream `biobert` component on wordpieces of its own, with that component's
weights (the way a `TransformerListener` shares them, for a second pass).

A listener receives the upstream's output over the document text. A relation
model that marks a candidate pair in its sentence needs the encoder itself,
over *other* text (one marked sequence per pair), yet with the very weights
`ner` listens to: one transformer in the saved pipeline, fine-tuned by every
task. This layer holds that encoder by reference:

- `upstream_model` is a plain Python attribute, not in `attrs` and not in
  `layers`. So the layer's owner never serialises the transformer (the saved
  relation component holds no transformer weights: its `to_bytes` only has the
  layer's name, its `upstream` setting and width), and the owner's
  `finish_update` never walks into it (the transformer is stepped once per
  update, by its own component).
- The link is made by `BiobertTransformer.find_listeners`, which spaCy calls in
  `Language._link_components` (after `add_pipe`, `remove_pipe`,
  `initialize`, `from_disk`, `from_bytes`, sourcing) and in the
  `biobert` component's `initialize`: every SharedTransformer node in a
  later component's model whose `upstream_name` is that component's name (or
  "*") gets the component's `TransformerModel`.
- Forward runs the upstream's thinc wrapper of the Hugging Face model
  (`upstream_model.layers[0]`, spacy-transformers' `HFWrapper`) on a
  spacy-transformers `WordpieceBatch`, and returns `last_hidden_state`
  (n_sequences, n_wordpieces, width). Backprop hands the gradient of that
  tensor to the wrapper as a `ModelOutput`, so torch accumulates it in the
  shared parameters; the `biobert` component's `finish_update` applies it,
  together with its listeners' gradients. `grad_factor` scales that gradient
  first, as a `TransformerListener`'s does: a joint pipeline's NER listeners
  send the shared weights gradients summed over tokens, ~22 times the norm of
  a mean-over-pairs relation loss's on the same ChemProt batch (biomed stage
  2, `bench/gradient_balance.py`), so without it the relation task barely
  moves the encoder.
  At prediction the wrapper runs under `torch.no_grad()` (nothing is kept).

Limits: `nlp.replace_listeners` cannot give the owner its own copy of this
encoder (spaCy only replaces `TransformerListener` layers, and this layer is
not one: it finds no listener to replace and raises its E887). A pipeline
without the upstream component fails at the first forward with E230; removing
the upstream with `nlp.remove_pipe` leaves the layer with the removed
component's encoder (nothing relinks it).

Positioned input (`PositionedWordpieces`): besides spacy-transformers'
`WordpieceBatch`, the layer takes wordpieces with their own position ids and
a 3-d attention mask (which position attends to which), for the levitated
markers of `LevitatedMarkerRelationModel.v1`; it calls the wrapper's shim
with those arguments, in the precision the wrapper runs in.

torch and spacy-transformers are imported inside the functions that need them.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Union

from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats3d

from ..errors import Errors

if TYPE_CHECKING:
    from spacy_transformers.data_classes import WordpieceBatch


@dataclass
class PositionedWordpieces:
    """Encoder input with explicit positions and a per-position attention mask:
    input_ids and position_ids (n, length) int64, attention_mask (n, length,
    length) float32 (row i: the positions position i attends to, 1 or 0),
    token_type_ids (n, length) int64 or None (the model's default)."""

    input_ids: Any
    position_ids: Any
    attention_mask: Any
    token_type_ids: Optional[Any] = None


class SharedTransformer(Model):
    """The encoder of the `biobert` component named `upstream_name` ("*":
    any), run over wordpieces given by the owner. See the module docstring."""

    name = "shared-transformer"

    def __init__(self, upstream_name: str, grad_factor: float = 1.0):
        Model.__init__(
            self,
            name=self.name,
            forward=_forward,
            init=_init,
            dims={"nO": None},
            attrs={"upstream": upstream_name, "grad_factor": grad_factor},
        )
        self.upstream_name = upstream_name
        # Not in attrs or layers: never serialised with (or stepped by) the owner.
        self.upstream_model: Optional[Model] = None
        self.upstream_component: Optional[str] = None

    def attach(self, upstream_model: Model, component_name: str) -> None:
        """Link to the `TransformerModel` of the component `component_name`."""
        self.upstream_model = upstream_model
        self.upstream_component = component_name

    @property
    def upstream(self) -> Model:
        """The linked `TransformerModel`, or E230."""
        if self.upstream_model is None:
            raise ValueError(Errors.E230.format(upstream=self.upstream_name))
        return self.upstream_model

    @property
    def has_weights(self) -> bool:
        return self.upstream_model is not None and bool(
            self.upstream_model.attrs.get("has_transformer")
        )

    @property
    def tokenizer(self) -> Any:
        """The upstream's Hugging Face tokenizer (E231 before it is initialized)."""
        return self.encoder_layer().shims[0]._hfmodel.tokenizer

    @property
    def transformer(self) -> Any:
        """The upstream's Hugging Face model (E231 before it is initialized)."""
        return self.encoder_layer().shims[0]._hfmodel.transformer

    def encoder_layer(self) -> Model:
        """The upstream's HFWrapper (WordpieceBatch -> ModelOutput)."""
        upstream = self.upstream
        if not self.has_weights:
            raise ValueError(
                Errors.E231.format(upstream=self.upstream_component or self.upstream_name)
            )
        return upstream.layers[0]


@registry.architectures("spacy-biobert.SharedTransformer.v1")
def create_shared_transformer(
    upstream: str = "biobert", grad_factor: float = 1.0
) -> Model["WordpieceBatch", Floats3d]:
    """The encoder of the `biobert` component named `upstream` ("*": the first
    `biobert` before the owner), with its weights, not a copy: wordpieces in,
    last hidden states (n_sequences, n_wordpieces, width) out; gradients go
    to the shared weights, times `grad_factor`, and that component's update
    applies them."""
    if (
        isinstance(grad_factor, bool)
        or not isinstance(grad_factor, (int, float))
        or not grad_factor >= 0
    ):
        raise ValueError(
            Errors.E234.format(
                what="encoder.grad_factor", expected="a number >= 0", value=grad_factor
            )
        )
    return SharedTransformer(upstream, float(grad_factor))


def _init(model: SharedTransformer, X: Any = None, Y: Any = None) -> SharedTransformer:
    model.encoder_layer()  # E230 / E231
    width = model.upstream.get_dim("nO")
    _check_width(model, width)
    model.set_dim("nO", width)
    return model


def _check_width(model: SharedTransformer, width: int) -> None:
    """E232 when the linked encoder is not as wide as the one the owner was
    built on (a saved relation component beside another transformer)."""
    if model.has_dim("nO") and model.get_dim("nO") != width:
        raise ValueError(
            Errors.E232.format(
                upstream=model.upstream_component, width=width, saved=model.get_dim("nO")
            )
        )


def _forward(
    model: SharedTransformer, wordpieces: Union["WordpieceBatch", PositionedWordpieces], is_train: bool
) -> Tuple[Floats3d, Callable[[Floats3d], List[Any]]]:
    from thinc.api import torch2xp, xp2torch
    from transformers.modeling_outputs import BaseModelOutput

    encoder = model.encoder_layer()
    if isinstance(wordpieces, PositionedWordpieces):
        hidden, backprop_hidden = _positioned_forward(encoder, wordpieces, is_train)
    else:
        output, backprop_encoder = encoder(wordpieces, is_train)
        hidden = output.last_hidden_state

        def backprop_hidden(d_hidden: Any) -> None:
            backprop_encoder(BaseModelOutput(last_hidden_state=d_hidden))

    _check_width(model, int(hidden.shape[-1]))
    H = torch2xp(hidden)  # detached view: no copy on CPU

    grad_factor = model.attrs.get("grad_factor", 1.0)

    def backprop(dH: Floats3d) -> List[Any]:
        if grad_factor != 1.0:
            dH = dH * grad_factor
        backprop_hidden(xp2torch(dH, device=hidden.device).to(hidden.dtype))
        return []

    return H, backprop


def _positioned_forward(encoder: Model, X: PositionedWordpieces, is_train: bool) -> Tuple[Any, Callable]:
    """The Hugging Face model of the wrapper `encoder` on `X`, called through
    its shim as the wrapper's own forward does (under CPU bfloat16 autocast
    when the wrapper runs bf16, outputs cast back to fp32): the last hidden
    state (a torch tensor) and its backprop (gradient tensor in, nothing out)."""
    import contextlib

    import torch
    from thinc.api import ArgsKwargs, xp2torch

    from ..precision import to_fp32

    shim = encoder.shims[0]
    device = shim._hfmodel.transformer.device
    kwargs = {
        "input_ids": xp2torch(X.input_ids, device=device),
        "position_ids": xp2torch(X.position_ids, device=device),
        "attention_mask": xp2torch(X.attention_mask, device=device),
    }
    if X.token_type_ids is not None:
        kwargs["token_type_ids"] = xp2torch(X.token_type_ids, device=device)
    bf16 = getattr(encoder._func, "precision", "fp32") == "bf16" and shim.device.type == "cpu"
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with autocast:
        output, torch_backprop = shim(ArgsKwargs(args=(), kwargs=kwargs), is_train)
    hidden = to_fp32(output.last_hidden_state)

    def backprop(d_hidden: Any) -> None:
        torch_backprop(ArgsKwargs(args=(hidden,), kwargs={"grad_tensors": (d_hidden,)}))

    return hidden, backprop
