"""The precision the `biobert` transformer runs in on the CPU: "fp32", "bf16"
or "auto".

Where the setting lives: on the component, `[components.biobert] precision`
(the `biobert` factory's argument), not on the architecture. Precision is how
the weights are *run*, not the model's shape or weights: the weights stay fp32
whatever the setting, are saved fp32 and load on any CPU, so
`spacy-biobert.TransformerModel.v1` / `Tok2VecTransformer.v1` (released,
frozen) keep their signature and behaviour, and every config saved before the
setting existed loads unchanged (the factory default, fp32, fills it in).
`set_precision(nlp, ...)` changes it at run time for a loaded pipeline
(`annotate --precision`, `serve --precision`, bench/throughput.py), on every
transformer in the pipeline, a component's own copy after
`nlp.replace_listeners` included. (Such a copy made in the same process keeps
the precision of the transformer it was copied from; one rebuilt from a saved
config runs fp32 until `set_precision` is called, since its config is the
architecture's.)

What "bf16" does: the Hugging Face encoder's forward pass runs under
`torch.autocast("cpu", dtype=torch.bfloat16)` (matrix products and attention
in bfloat16, layer norms and softmax kept in fp32 by autocast), in training
(`begin_update`) and at inference (`predict`, the component's
`predict_in_slices` included). Its outputs are cast back to fp32 before they
leave the layer, so the listeners (ner, biobert_relations) get fp32 arrays as
before, and the backward pass (which runs outside the autocast block, as it
must) sends fp32 gradients into the cast. Master weights, gradients and the
optimizer state stay fp32 (autocast casts the weights per operation, it never
changes them); bfloat16 has fp32's exponent range, so no loss scaling is
needed. The heads (ner's transition model, biobert_relations' pair scorer) are
thinc NumPy layers: torch's autocast does not reach them and NumPy has no
bfloat16, so they and their losses run in fp32 whatever the setting
(bench/profile_step.py measures their share of a training step).

Only the CPU: on a GPU, spacy-transformers' `mixed_precision` (fp16 autocast
and grad scaling) governs, unchanged; "bf16" and "auto" do nothing there.

"auto" runs bf16 where the CPU has native bfloat16 instructions (Linux
/proc/cpuinfo flags `avx512_bf16` or `amx_bf16` on x86, `bf16` in the
Features of aarch64; anything else counts as unsupported) and fp32 elsewhere,
with one warning saying why (W001). Without native support bfloat16 is
emulated and several times slower than fp32 (measured on an AVX2-only AMD
EPYC: inference 0.14x, forward + backward 0.06x), so "bf16" asked for on such
a CPU also falls back to fp32, with one warning (W002): a pipeline trained
with bf16 predicts anywhere. `set_precision(..., force=True)` runs bf16
anyway (to measure it, as bench/throughput.py does).

bf16 and int8 (`annotate.quantize`) do not combine: torch's dynamic int8
linear layers take fp32 inputs only. Quantizing sets the pipeline to fp32.
"""

import functools
import platform
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

from .errors import Errors, Warnings

PRECISIONS: Tuple[str, ...] = ("fp32", "bf16", "auto")
# The factory's default: fp32 keeps every pipeline's behaviour and figures as
# they were; "auto" is opt-in until bf16 figures are measured on a CPU with
# native bfloat16 (README, "Precision").
DEFAULT_PRECISION = "fp32"
_CPUINFO = Path("/proc/cpuinfo")
_X86 = ("x86_64", "amd64", "i386", "i686", "x86")
_ARM = ("aarch64", "arm64")
_X86_FLAGS = ("avx512_bf16", "amx_bf16")


class PrecisionWarning(UserWarning):
    """W001, W002: the transformer runs in another precision than asked."""


@dataclass(frozen=True)
class CpuBf16:
    """Whether this CPU runs bfloat16 natively, and the evidence (`why`: the
    flag found, or what is missing)."""

    supported: bool
    why: str


def check_precision(value: Any) -> str:
    """`value` if it is one of PRECISIONS, else ValueError (E030)."""
    if not isinstance(value, str) or value not in PRECISIONS:
        raise ValueError(Errors.E030.format(allowed=", ".join(PRECISIONS), value=value))
    return value


def parse_cpuinfo(text: str, machine: str) -> CpuBf16:
    """Native bfloat16 support from the text of /proc/cpuinfo on a `machine`
    (platform.machine()): x86 flags avx512_bf16 / amx_bf16, aarch64 feature
    bf16."""
    arch = machine.lower()
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    cpu = fields.get("model name") or fields.get("CPU part") or "unknown CPU"
    if arch in _X86:
        flags = set(fields.get("flags", "").split())
        found = [flag for flag in _X86_FLAGS if flag in flags]
        if found:
            return CpuBf16(True, f"the CPU flags include {found[0]} ({cpu})")
        best = next((f for f in ("avx512f", "avx2", "avx") if f in flags), "no AVX")
        return CpuBf16(
            False,
            f"its CPU flags (/proc/cpuinfo) have neither avx512_bf16 nor amx_bf16 "
            f"({cpu}; best vector extension: {best})",
        )
    if arch in _ARM:
        if "bf16" in fields.get("Features", "").split():
            return CpuBf16(True, f"the CPU features include bf16 ({cpu})")
        return CpuBf16(False, f"its CPU features (/proc/cpuinfo) lack bf16 ({cpu})")
    return CpuBf16(False, f"native bfloat16 is detected on x86 and aarch64 only, not {machine!r}")


@functools.lru_cache(maxsize=None)
def cpu_bf16_support() -> CpuBf16:
    """This machine's CpuBf16 (read once per process)."""
    machine = platform.machine()
    try:
        text = _CPUINFO.read_text(encoding="utf8", errors="replace")
    except OSError:
        return CpuBf16(False, f"/proc/cpuinfo cannot be read on this system ({platform.system()}), "
                              "so native bfloat16 cannot be confirmed")
    return parse_cpuinfo(text, machine)


def _on_gpu() -> bool:
    from thinc.api import get_current_ops

    return get_current_ops().device_type != "cpu"


def resolve_precision(precision: str, *, where: str = "precision", force: bool = False) -> str:
    """The precision to run: "fp32" or "bf16", for the setting `precision`.
    "auto" and "bf16" give "bf16" only where the CPU has native bfloat16
    (unless `force`, for "bf16"), else "fp32" with one warning (W001 for
    "auto", W002 for "bf16", naming `where` the setting came from). On a
    GPU: "fp32" (the CPU precision does not apply), silently."""
    check_precision(precision)
    if precision == "fp32" or _on_gpu():
        return "fp32"
    if precision == "bf16" and force:
        return "bf16"
    support = cpu_bf16_support()
    if support.supported:
        return "bf16"
    if precision == "auto":
        warnings.warn(Warnings.W001.format(why=support.why), PrecisionWarning, stacklevel=2)
    else:
        warnings.warn(Warnings.W002.format(where=where, why=support.why), PrecisionWarning, stacklevel=2)
    return "fp32"


class Bf16Forward:
    """The forward function of a spacy-transformers HFWrapper layer (thinc's
    PyTorchWrapper forward) with the Hugging Face model's forward pass under
    CPU bfloat16 autocast and its floating outputs cast back to fp32. Set as
    the layer's function by `apply_precision`; `inner` is the original.
    (Not a model attribute: thinc saves string attributes with the weights,
    and the precision must come from the config and this CPU, not the file.)"""

    precision = "bf16"

    def __init__(self, inner: Callable) -> None:
        self.inner = inner

    def __call__(self, model: Any, X: Any, is_train: bool) -> Tuple[Any, Callable]:
        import torch

        shim = model.shims[0]
        if shim.device.type != "cpu":
            return self.inner(model, X, is_train)
        Xtorch, get_dX = model.attrs["convert_inputs"](model, X, is_train)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            Ytorch, torch_backprop = shim(Xtorch, is_train)
        # In the autograd graph: the backward pass goes through these casts.
        Ytorch = to_fp32(Ytorch)
        Y, get_dYtorch = model.attrs["convert_outputs"](model, (X, Ytorch), is_train)

        def backprop(dY: Any) -> Any:
            return get_dX(torch_backprop(get_dYtorch(dY)))

        return Y, backprop


def to_fp32(value: Any) -> Any:
    """`value` (a tensor, a Hugging Face ModelOutput, a tuple or list of them)
    with every floating tensor that is not fp32 cast to fp32."""
    import torch

    if isinstance(value, torch.Tensor):
        if value.is_floating_point() and value.dtype != torch.float32:
            return value.float()
        return value
    if isinstance(value, dict):  # ModelOutput is an OrderedDict
        return type(value)(**{key: to_fp32(item) for key, item in value.items()})
    if isinstance(value, (tuple, list)):
        return type(value)(to_fp32(item) for item in value)
    return value


def _hf_layers(model: Any):
    """The spacy-transformers HFWrapper layers in a thinc model."""
    hf_shim = sys.modules.get("spacy_transformers.layers.hf_shim")
    if hf_shim is None:  # never imported: no such layer exists (and torch stays unimported)
        return
    HFShim = hf_shim.HFShim

    for node in model.walk():
        if node.shims and isinstance(node.shims[0], HFShim) and "convert_inputs" in node.attrs:
            yield node


def apply_precision(model: Any, precision: str) -> int:
    """Run every Hugging Face transformer in the thinc `model` in `precision`
    ("fp32" or "bf16", as resolved by `resolve_precision`): no check of the
    CPU here. Returns how many transformer layers were set."""
    if precision not in ("fp32", "bf16"):
        raise ValueError(Errors.E030.format(allowed="fp32, bf16", value=precision))
    count = 0
    for node in _hf_layers(model):
        inner = getattr(node._func, "inner", node._func)
        node._func = Bf16Forward(inner) if precision == "bf16" else inner
        count += 1
    return count


def model_precision(model: Any) -> Optional[str]:
    """"bf16" or "fp32", how the transformers in the thinc `model` run; None
    if it has none."""
    found = [getattr(node._func, "precision", "fp32") for node in _hf_layers(model)]
    if not found:
        return None
    return "bf16" if "bf16" in found else "fp32"


def _models(nlp: Any):
    for _, pipe in nlp.components:
        model = getattr(pipe, "model", None)
        if model is not None and hasattr(model, "walk"):
            yield model


def pipeline_precision(nlp: Any) -> Optional[str]:
    """"bf16" if any transformer of `nlp` runs bf16, "fp32" if it has
    transformers and none does, None without a transformer."""
    found = [p for p in (model_precision(m) for m in _models(nlp)) if p is not None]
    if not found:
        return None
    return "bf16" if "bf16" in found else "fp32"


def set_precision(nlp: Any, precision: str, *, where: str = "precision", force: bool = False) -> str:
    """Run every transformer of the loaded pipeline `nlp` in `precision`
    ("fp32", "bf16", "auto"; resolved once, with at most one warning, see
    `resolve_precision`). Returns the precision they now run in. A pipeline
    without a transformer is left as it is."""
    resolved = resolve_precision(precision, where=where, force=force)
    for model in _models(nlp):
        apply_precision(model, resolved)
    return resolved


__all__ = [
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "Bf16Forward",
    "CpuBf16",
    "PrecisionWarning",
    "apply_precision",
    "check_precision",
    "cpu_bf16_support",
    "model_precision",
    "parse_cpuinfo",
    "pipeline_precision",
    "resolve_precision",
    "set_precision",
]
