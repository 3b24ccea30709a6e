"""The settings of one `annotate` run, in one dataclass (the CLI's options)."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from ..corpora.text import DEFAULT_TEXT_DOCS, check_text_docs
from ..errors import Errors
from ..pipeline.relations import check_threshold
from ..precision import check_precision
from .inputs import DEFAULT_MAX_CHARS, INPUT_FORMATS, detect_input_format
from .outputs import check_output_format, detect_output_format
from .quantize import check_quantize_mode

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class AnnotateOptions:
    """How to annotate (see docs/annotate.md for each option).

    input_format / output_format: None detects them from the paths.
    text_docs: how plain text holds its documents, "line" (one per line) or
        "blank-line" (`spacy_biobert.corpora.text`).
    max_chars: longer documents are rejected (None: no bound).
    batch_size: documents per `nlp.pipe` batch; window: input items read,
        sorted by length and checkpointed together.
    threshold: relations scored at least this are written; None (the default):
        the threshold the pipeline's `biobert_relations` was configured with.
    resume / overwrite: continue an interrupted run / replace what it left.
    quantize: None (fp32) or "int8" (`spacy_biobert.annotate.quantize`).
    precision: None (as the pipeline's `biobert` is set: fp32 for every
        pipeline made so far), "fp32", "bf16" or "auto": how the transformer
        runs on the CPU (`spacy_biobert.precision`; bf16 only where the CPU has
        native bfloat16, else fp32 with one warning). "bf16" and int8 exclude
        each other (E031); with int8, "auto" means fp32.
    backend: "local" (`nlp.pipe` in this process) or "ray" (Ray actors, each
        loading the pipeline once; `spacy_biobert.annotate.ray_backend`), with
        `ray_address` (None: $RAY_ADDRESS, else a local Ray instance),
        `ray_workers` (None: one per `ray_cpus_per_worker` CPUs of the cluster).
    """

    input_format: Optional[str] = None
    output_format: Optional[str] = None
    text_docs: str = DEFAULT_TEXT_DOCS
    max_chars: Optional[int] = DEFAULT_MAX_CHARS
    batch_size: int = 64
    window: int = 1000
    threshold: Optional[float] = None
    resume: bool = False
    overwrite: bool = False
    quantize: Optional[str] = None
    precision: Optional[str] = None
    backend: str = "local"
    ray_address: Optional[str] = None
    ray_workers: Optional[int] = None
    ray_cpus_per_worker: int = 1

    def replace(self, **changes: Any) -> "AnnotateOptions":
        """A copy with `changes` (option names as keywords)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"annotate() got unexpected keyword argument(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def resolved(self, input_path: Union[str, Path], output_path: Union[str, Path]) -> "AnnotateOptions":
        """These options checked, with the formats detected from the paths
        where not given; raises ValueError (E207, E304, E306) for a bad value."""
        in_fmt = self.input_format or detect_input_format(input_path)
        if in_fmt not in INPUT_FORMATS:
            raise ValueError(
                Errors.E304.format(what="input format", value=in_fmt, options=", ".join(INPUT_FORMATS))
            )
        out_fmt = (
            check_output_format(self.output_format)
            if self.output_format
            else detect_output_format(output_path)
        )
        check_text_docs(self.text_docs)
        if self.threshold is not None:
            check_threshold(self.threshold)
        _check_positive("batch_size", self.batch_size)
        _check_positive("window", self.window)
        if self.max_chars is not None:
            _check_positive("max_chars", self.max_chars)
        if self.backend not in BACKENDS:
            raise ValueError(
                Errors.E304.format(what="backend", value=self.backend, options=", ".join(BACKENDS))
            )
        if self.quantize is not None:
            check_quantize_mode(self.quantize)
        if self.precision is not None:
            check_precision(self.precision)
            if self.precision == "bf16" and self.quantize is not None:
                raise ValueError(Errors.E031)
        _check_positive("ray_cpus_per_worker", self.ray_cpus_per_worker)
        if self.ray_workers is not None:
            _check_positive("ray_workers", self.ray_workers)
        return dataclasses.replace(self, input_format=in_fmt, output_format=out_fmt)

    def recorded(self, input_path: Union[str, Path]) -> Dict[str, Any]:
        """The settings a resumed run must share with the interrupted one (the
        backend and its resources may differ)."""
        recorded = {
            "input": str(Path(input_path).resolve()),
            "input_format": self.input_format,
            "output_format": self.output_format,
            "max_chars": self.max_chars,
            "threshold": self.threshold,
            "window": self.window,
            "batch_size": self.batch_size,
            "quantize": self.quantize,
        }
        # Only when it is not the default, so that progress files written
        # before the option existed still resume.
        if self.text_docs != DEFAULT_TEXT_DOCS:
            recorded["text_docs"] = self.text_docs
        if self.precision is not None:
            recorded["precision"] = self.precision
        return recorded


def _check_positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(Errors.E306.format(name=name, value=value))


__all__ = ["BACKENDS", "AnnotateOptions"]
