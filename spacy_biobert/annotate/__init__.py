"""`spacy-biobert annotate`: annotate large inputs with a trained pipeline,
streaming, in input order, atomically and resumably (see docs/annotate.md)."""

from .checkpoint import AnnotateStats, OutputPaths
from .inputs import INPUT_FORMATS, Record, Reject, detect_input_format, iter_input
from .options import AnnotateOptions
from .outputs import OUTPUT_FORMATS, detect_output_format
from .runner import annotate
from .window import annotate_window

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "AnnotateOptions",
    "AnnotateStats",
    "OutputPaths",
    "Record",
    "Reject",
    "annotate",
    "annotate_window",
    "detect_input_format",
    "detect_output_format",
    "iter_input",
]
