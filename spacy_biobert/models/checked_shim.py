"""spacy-transformers' HFShim, checking its saved bytes before loading them,
and applying the optimizer's update to each parameter in place.
Imported lazily (it imports torch and transformers)."""
from typing import Any

import numpy
import srsly
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Optimizer
from thinc.util import torch2xp

from .safe_loading import check_transformer_payload


class CheckedHFShim(HFShim):
    """Every model built by our architectures (the `biobert` component, and a
    listener's own copy after `replace_listeners`) loads its saved transformer
    through this shim, so a crafted payload is refused wherever it sits."""

    def from_bytes(self, bytes_data: bytes) -> Any:
        check_transformer_payload(srsly.msgpack_loads(bytes_data), "a saved transformer")
        return super().from_bytes(bytes_data)

    def finish_update(self, optimizer: Optimizer) -> None:
        """thinc's `PyTorchShim.finish_update`, the same arithmetic, without
        its leak on the CPU: thinc views each parameter as a numpy array, lets
        the optimizer update that view in place, then wraps the view in a new
        tensor (`xp2torch`) and makes it the parameter's data. The new
        tensor's storage keeps the view alive, the view keeps the old tensor,
        and so on: every step adds one link per parameter to a chain that is
        never freed (about 100 parameters a step for MiniLM-L6), small blocks
        scattered through the heap among the freed activations. Here the
        updated view is the parameter's own memory, so nothing is rewrapped
        (an optimizer that returns new memory has it copied in). On a GPU,
        thinc's own method runs."""
        parameters = list(self._model.named_parameters())
        if any(param.device.type != "cpu" for _, param in parameters):
            super().finish_update(optimizer)
            return
        for name, param in parameters:
            if param.grad is None:
                continue
            if not self._grad_scaler.found_inf:  # skip the update if a gradient overflowed
                weights = torch2xp(param.data)
                updated, _ = optimizer((self.id, name), weights, torch2xp(param.grad))
                if not numpy.may_share_memory(updated, weights):
                    param.data.copy_(param.data.new_tensor(updated))
            param.grad.zero_()
        self._grad_scaler.update()
