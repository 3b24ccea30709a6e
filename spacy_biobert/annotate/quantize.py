"""int8 quantization of a pipeline's transformer for CPU inference.

`quantize_pipeline(nlp, "int8")` replaces, in place, the `torch.nn.Linear`
layers of every Hugging Face transformer in the pipeline (the `biobert`
component's, and a component's own copy after `replace_listeners`) with
dynamically quantized int8 layers: int8 weights (per output channel), the
activations quantized per batch on the fly, fp32 in and out. Layers whose
names match one of `keep_fp32` (fnmatch patterns over the module names of the
Hugging Face model, e.g. "encoder.layer.5.*") stay in fp32.

Kernels: PyTorch's dynamic int8 linear (`torch.ao.nn.quantized.dynamic`),
which `torch.ao.quantization.quantize_dynamic` also uses, on the oneDNN
engine when the CPU has AMX int8 tiles and on the "x86" engine (fbgemm)
otherwise: on these AMX machines oneDNN ran the pipeline about 1.4x faster
than fbgemm with the same predictions (docs/annotate.md, "int8"). The engine
is process-wide state (`torch.backends.quantized.engine`); quantizing sets it.

That Python API is deprecated in favour of torchao; torchao's
`Int8DynamicActivationInt8WeightConfig` installs from PyPI, but in eager mode
on CPU it ran slower than fp32 here (its fast CPU path needs `torch.compile`),
so the measured choice is torch's own kernels, kept behind this one module.
The deprecation warnings of those calls are silenced here only.

A quantized pipeline is for inference: do not train or save it. It runs in
fp32: torch's dynamic int8 linear layers take fp32 inputs only, so bfloat16
autocast (`spacy_biobert.precision`) and int8 do not combine, and quantizing
sets every transformer of the pipeline back to fp32.
"""

import fnmatch
import warnings
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from ..errors import Errors

QUANTIZE_MODES = ("int8",)
# Chosen by measuring strict F1 on BC5CDR dev (docs/annotate.md, "int8").
DEFAULT_KEEP_FP32: Tuple[str, ...] = ()


def check_quantize_mode(mode: str) -> str:
    if mode not in QUANTIZE_MODES:
        raise ValueError(
            Errors.E304.format(what="quantization", value=mode, options=", ".join(QUANTIZE_MODES))
        )
    return mode


def iter_transformers(nlp: Any) -> Iterator[Tuple[str, Any]]:
    """(component name, Hugging Face model) for every transformer in `nlp`
    (through the thinc PyTorch shims of each component's model)."""
    from transformers import PreTrainedModel

    seen = set()
    for name, pipe in nlp.components:
        model = getattr(pipe, "model", None)
        if model is None or not hasattr(model, "walk"):
            continue
        for node in model.walk():
            for shim in node.shims:
                hf = getattr(shim, "_model", None)
                if isinstance(hf, PreTrainedModel) and id(hf) not in seen:
                    seen.add(id(hf))
                    yield name, hf


def pick_engine() -> Optional[str]:
    """The quantized engine for this CPU: "onednn" where it has AMX int8
    tiles (its int8 matmuls run on them), else "x86"; None if neither is
    built into torch."""
    import torch

    supported = torch.backends.quantized.supported_engines
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    capabilities = get_capabilities() if get_capabilities is not None else {}
    if capabilities.get("amx_int8") and "onednn" in supported:
        return "onednn"
    return "x86" if "x86" in supported else None


def quantize_transformer(
    module: Any, mode: str = "int8", keep_fp32: Optional[Sequence[str]] = None
) -> List[str]:
    """Quantize the Linear layers of a torch module in place (see the module
    docs); returns the names of the quantized layers."""
    import torch

    check_quantize_mode(mode)
    keep = tuple(DEFAULT_KEEP_FP32 if keep_fp32 is None else keep_fp32)
    names = [
        name
        for name, sub in module.named_modules()
        if type(sub) is torch.nn.Linear and not any(fnmatch.fnmatchcase(name, p) for p in keep)
    ]
    if not names:
        return names
    engine = pick_engine()
    if engine is not None:
        torch.backends.quantized.engine = engine
    module.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=".*quantize_per_channel.*deprecated.*")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # Per-channel int8 weights (the default qconfig has one scale per matrix).
        spec = {name: per_channel_dynamic_qconfig for name in names}
        quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
    return names


def quantize_pipeline(
    nlp: Any, mode: str = "int8", keep_fp32: Optional[Sequence[str]] = None
) -> List[str]:
    """Quantize every transformer of `nlp` in place; returns the quantized
    layers as "component:module name". Raises ValueError (E308) if `nlp` has
    no Hugging Face transformer."""
    check_quantize_mode(mode)
    found = list(iter_transformers(nlp))
    if not found:
        raise ValueError(Errors.E308.format(components=", ".join(nlp.pipe_names) or "none"))
    from ..precision import set_precision

    done: List[str] = []
    for comp, hf in found:
        done.extend(f"{comp}:{n}" for n in quantize_transformer(hf, mode, keep_fp32))
    set_precision(nlp, "fp32")
    return done


__all__ = [
    "DEFAULT_KEEP_FP32",
    "QUANTIZE_MODES",
    "check_quantize_mode",
    "iter_transformers",
    "pick_engine",
    "quantize_pipeline",
    "quantize_transformer",
]
