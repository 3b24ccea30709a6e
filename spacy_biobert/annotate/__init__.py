"""`spacy-biobert annotate`: annotate large inputs with a trained pipeline,
streaming, in input order, atomically and resumably (see docs/annotate.md)."""

from .inputs import INPUT_FORMATS, Record, Reject, detect_input_format, iter_input
from .outputs import OUTPUT_FORMATS, detect_output_format
from .runner import AnnotateStats, OutputPaths, annotate, annotate_window

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
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
