"""Output formats of `annotate`, as text chunks (header, one chunk per
document, footer), so the runner can write, checkpoint and resume at
document boundaries. The per-document formatting is the corpus writers'
(`doc_to_json`, `format_pubtator`, `doc_to_bioc`, `brat_files`).

brat standoff is a folder of files, not one stream: its chunks are JSON
lines {"id", "txt", "ann"} (one document's two files), which `write_brat_chunks`
turns into the output folder when the run finishes."""

import json
from pathlib import Path
from typing import Union

from spacy.tokens import Doc

from ..corpora.formats import CHUNKED_OUTPUT_FORMATS
from ..errors import Errors

# the format table's outputs written document by document (`Format.chunked`)
OUTPUT_FORMATS = CHUNKED_OUTPUT_FORMATS
# Between two documents of a BioC JSON output.
BIOC_JSON_SEPARATOR = ",\n"


def detect_output_format(path: Union[str, Path]) -> str:
    """By extension: .jsonl, .pubtator/.txt, .xml (BioC XML), .json (BioC
    JSON); a folder (existing, or a path ending in "/") or a path without
    extension: brat standoff."""
    from ..corpora.formats import output_format

    try:
        fmt = output_format(path)
    except ValueError:
        fmt = ""
    if fmt == "chemprot":  # a folder: annotate writes no ChemProt, brat is a folder
        fmt = "brat"
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(
            Errors.E304.format(
                what=f"output format for '{path}' (from its extension)",
                value=Path(path).suffix,
                options=".jsonl, .pubtator (or .txt), .xml (BioC XML), .json (BioC JSON), a folder "
                "(brat), or --output-format " + "/".join(OUTPUT_FORMATS),
            )
        )
    return fmt


def check_output_format(fmt: str) -> str:
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(
            Errors.E304.format(what="output format", value=fmt, options=", ".join(OUTPUT_FORMATS))
        )
    return fmt


def header(fmt: str) -> str:
    if fmt in ("bioc-xml", "bioc-json"):
        from ..corpora.bioc_format import collection_header

        return collection_header(fmt)
    return ""


def footer(fmt: str) -> str:
    if fmt == "bioc-xml":
        return "</collection>\n"
    if fmt == "bioc-json":
        return "\n]}\n"
    return ""


def format_doc(doc: Doc, fmt: str, *, threshold: float, first: bool) -> str:
    """One annotated Doc in `fmt`; `first` is whether it is the first document
    of the output (BioC JSON separates documents with commas). A Doc that the
    format cannot represent raises ValueError (E110)."""
    if fmt == "jsonl":
        from ..corpora.jsonl import doc_to_json

        return json.dumps(doc_to_json(doc, threshold=threshold), ensure_ascii=False) + "\n"
    if fmt == "pubtator":
        from ..corpora.pubtator import format_pubtator

        return format_pubtator(doc, threshold=threshold)
    if fmt == "bioc-xml":
        from bioc.biocxml.encoder import encode_document
        from lxml import etree

        from ..corpora.bioc_format import doc_to_bioc

        elem = encode_document(doc_to_bioc(doc, threshold=threshold))
        return etree.tostring(elem, encoding="unicode") + "\n"
    if fmt == "bioc-json":
        from bioc import biocjson

        from ..corpora.bioc_format import doc_to_bioc

        text = biocjson.dumps(doc_to_bioc(doc, threshold=threshold), ensure_ascii=False)
        return text if first else BIOC_JSON_SEPARATOR + text
    if fmt == "brat":
        from ..corpora.brat import brat_files

        txt, ann = brat_files(doc, threshold=threshold)
        doc_id = str(doc._.doc_id) if doc._.doc_id is not None else ""
        return json.dumps({"id": doc_id, "txt": txt, "ann": ann}, ensure_ascii=False) + "\n"
    raise ValueError(check_output_format(fmt))
