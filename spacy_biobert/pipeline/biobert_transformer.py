"""The class of the `biobert` component: spacy-transformers' `Transformer`
with inference in bounded memory and loading that refuses pickled code.
Imported lazily, by the factory (it imports torch).

- `predict` runs the encoder over a batch's wordpiece windows in slices of at
  most `max_batch_items` padded wordpieces, and concatenates the outputs.
  spacy-transformers bounds only how many docs go together, so one long
  document sent every window of it through the encoder at once (a 958k-character
  document: about 2,000 windows, several GB of attention scores).
- `from_disk` / `from_bytes` first refuse saved settings that ask for model
  code, file names that are not plain tokenizer data files and the v1.0 folder
  layout (E007-E009, `models.safe_loading`), whatever architecture the saved
  config names; then torch's refusal of a pickle payload in the saved weights
  becomes one coded error (E005) instead of an UnpicklingError traceback.
- `find_listeners` also links the `spacy-biobert.SharedTransformer.v1` layers
  of later components (the pair-aware relation model's marked pass) to this
  component's transformer: they run its weights, not a copy
  (`models.shared_transformer`).
- `update` skips the training forward over the documents when no listener
  would receive it (a pipeline where only a SharedTransformer uses the
  weights): spacy-transformers runs it and throws it away.
"""
from typing import Any, Dict, Iterable, List, Optional

import srsly
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy_transformers import Transformer
from spacy_transformers.data_classes import FullTransformerBatch
from thinc.api import Model, Optimizer

from ..models.base_models import refused_pickles
from ..models.safe_loading import check_component_folder, check_model_bytes


class BiobertTransformer(Transformer):
    def predict(self, docs: Iterable[Doc]) -> FullTransformerBatch:
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return FullTransformerBatch.empty(len(docs))
        if "get_spans" not in self.model.attrs or not self.model.layers:
            return super().predict(docs)  # not a spacy-transformers TransformerModel
        return predict_in_slices(self.model, docs, self.cfg["max_batch_items"])

    def find_listeners(self, component: Any) -> None:
        """spacy-transformers' listeners, and our SharedTransformer layers in
        `component`'s model asking for this component (by name, or "*"),
        which get a reference to this component's model (see
        models/shared_transformer.py). spaCy calls this for every later
        component whenever it links the pipeline."""
        from ..models.shared_transformer import SharedTransformer

        super().find_listeners(component)
        model = getattr(component, "model", None)
        if isinstance(model, Model):
            for node in model.walk():
                if isinstance(node, SharedTransformer) and node.upstream_name in ("*", self.name):
                    node.attach(self.model, self.name)

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """spacy-transformers' update, which runs the transformer over the
        documents for the listeners; with no listener, nothing would read that
        output, so it is skipped (the gradients a SharedTransformer puts on the
        weights are applied by `finish_update` all the same)."""
        if not self.listeners:
            validate_examples(examples, "Transformer.update")
            if losses is None:
                losses = {}
            losses.setdefault(self.name, 0.0)
            return losses
        return super().update(examples, drop=drop, sgd=sgd, losses=losses)

    def from_disk(self, path: Any, *, exclude: Iterable[str] = tuple()) -> "BiobertTransformer":
        where = f"the component '{self.name}' in '{path}'"
        if "model" not in exclude:
            check_component_folder(path, where)
        with refused_pickles(where):
            return super().from_disk(path, exclude=exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "BiobertTransformer":
        where = f"the component '{self.name}'"
        if "model" not in exclude:
            msg = srsly.msgpack_loads(bytes_data)
            if isinstance(msg, dict) and isinstance(msg.get("model"), bytes):
                check_model_bytes(msg["model"], where)
        with refused_pickles(where):
            return super().from_bytes(bytes_data, exclude=exclude)


def predict_in_slices(model: Any, docs: List[Doc], max_items: int) -> FullTransformerBatch:
    """What spacy-transformers' TransformerModel computes for `docs` at
    inference (same spans, wordpieces, alignment and truncation), with the
    encoder run over slices of at most `max_items` padded wordpieces (at
    least one window a slice). The windows are padded to the batch's longest
    before slicing, so the outputs concatenate as they are."""
    from spacy_transformers.align import get_alignment, get_alignment_via_offset_mapping
    from spacy_transformers.data_classes import WordpieceBatch
    from spacy_transformers.layers.transformer_model import huggingface_tokenize
    from spacy_transformers.truncate import truncate_oversize_splits

    tokenizer = model.tokenizer
    nested_spans = model.attrs["get_spans"](docs)
    flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
    encoding = huggingface_tokenize(tokenizer, [span.text for span in flat_spans])
    wordpieces = WordpieceBatch.from_batch_encoding(encoding)
    if "offset_mapping" in encoding:
        align = get_alignment_via_offset_mapping(flat_spans, encoding["offset_mapping"])
    else:
        align = get_alignment(flat_spans, wordpieces.strings, tokenizer.all_special_tokens)
    wordpieces, align = truncate_oversize_splits(wordpieces, align, tokenizer.model_max_length)
    encoder = model.layers[0]
    width = max(1, int(wordpieces.input_ids.shape[1]))
    step = max(1, max_items // width)
    if len(wordpieces) <= step:
        output = encoder.predict(wordpieces)
    else:
        parts = [encoder.predict(wordpieces[i : i + step]) for i in range(0, len(wordpieces), step)]
        output = _concatenate(parts)
    return FullTransformerBatch(
        spans=nested_spans, wordpieces=wordpieces, model_output=output, align=align
    )


def _concatenate(parts: List[Any]) -> Any:
    """Hugging Face model outputs of consecutive slices of one batch as one."""
    import torch

    def cat(values: List[Any]) -> Any:
        if isinstance(values[0], torch.Tensor):
            return torch.cat(values, dim=0)
        if isinstance(values[0], tuple):  # hidden states or attentions, one per layer
            return tuple(cat([v[i] for v in values]) for i in range(len(values[0])))
        return values[0]

    first = parts[0]
    return type(first)(**{key: cat([part[key] for part in parts]) for key in first.keys()})
