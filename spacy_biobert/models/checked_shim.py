"""spacy-transformers' HFShim, checking its saved bytes before loading them.
Imported lazily (it imports torch and transformers)."""
from typing import Any

import srsly
from spacy_transformers.layers.hf_shim import HFShim

from .safe_loading import check_transformer_payload


class CheckedHFShim(HFShim):
    """Every model built by our architectures (the `biobert` component, and a
    listener's own copy after `replace_listeners`) loads its saved transformer
    through this shim, so a crafted payload is refused wherever it sits."""

    def from_bytes(self, bytes_data: bytes) -> Any:
        check_transformer_payload(srsly.msgpack_loads(bytes_data), "a saved transformer")
        return super().from_bytes(bytes_data)
