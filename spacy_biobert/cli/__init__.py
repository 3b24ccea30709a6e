"""The `spacy-biobert` command line (also `python -m spacy_biobert`).

The only place in the package that prints. Each command lives in its own
module and registers itself on `app`.
"""
# Command modules register themselves on `app` when imported.
from . import (  # noqa: E402,F401
    annotate,
    convert,
    evaluate,
    evaluate_relations,
    info,
    linking,
    own_data,
    pretrain,
    render,
    serve,
    show,
    train,
)
from ._app import app

__all__ = ["app"]
