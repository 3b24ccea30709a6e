"""`spacy-biobert render MODEL INPUT --output page.html`."""

from itertools import islice
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..corpora.text import DEFAULT_TEXT_DOCS
from ._app import INPUT_HELP, TEXT_DOCS_HELP, app, positive_int_or_none


@app.command("render")
def render_cli(
    model: str = typer.Argument(..., metavar="MODEL", help="Pipeline name or folder"),
    input_path: Path = typer.Argument(
        ...,
        exists=True,
        metavar="INPUT",
        help=INPUT_HELP,
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", metavar="PAGE", help="The HTML page to write (self-contained)"
    ),
    input_format: str = typer.Option(
        "auto", "--input-format", "-f", help="auto, text, jsonl, pubtator, bioc"
    ),
    text_docs: str = typer.Option(DEFAULT_TEXT_DOCS, "--text-docs", help=TEXT_DOCS_HELP),
    limit: int = typer.Option(20, "--limit", "-n", help="Render the first N documents"),
    max_chars: str = typer.Option(
        "100000", "--max-chars", help="Skip longer documents (characters); 'none' for no limit"
    ),
    threshold: Optional[float] = typer.Option(
        None,
        "--threshold",
        help="Draw relations scored at least this (default: the threshold the pipeline's "
        "biobert_relations was configured with)",
    ),
    kb_url: Optional[str] = typer.Option(
        None,
        "--kb-url",
        help="Link kb ids with this template, e.g. 'https://meshb.nlm.nih.gov/record/ui?ui={}' "
        "(the id is percent-encoded)",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Annotate the first documents of INPUT and write one self-contained HTML
    page: entities in displaCy's entity style (with kb ids where linked) and
    relation arcs labelled with their scores."""
    import spacy

    from ..annotate.inputs import Record, iter_input, printable
    from ..annotate.window import make_doc
    from ..corpora.errors import CorpusFormatError
    from ..models.base_models import load_pipeline
    from ..pipeline.relations import check_threshold, resolve_threshold
    from ..visualize import check_kb_url_template, render

    if limit < 1:
        msg.fail(f"--limit must be >= 1, not {limit}", exits=1)
    chars = positive_int_or_none("--max-chars", max_chars)
    try:
        check_kb_url_template(kb_url)
    except ValueError as err:
        msg.fail(f"--kb-url: {err} (double literal braces: {{{{ }}}})", exits=1)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        if threshold is not None:
            check_threshold(threshold)  # before the pipeline loads
        fmt = None if input_format == "auto" else input_format
        items = list(islice(iter_input(input_path, fmt, max_chars=chars, text_docs=text_docs), limit))
        records = [it for it in items if isinstance(it, Record)]
        for it in items:
            if not isinstance(it, Record):
                msg.warn(f"skipped document {printable(it.id)}: {printable(it.reason)}")
        nlp = load_pipeline(model)
        docs = []
        # One document at a time; its transformer output is not kept.
        for doc in nlp.pipe((make_doc(nlp, rec) for rec in records), batch_size=1):
            if doc.has_extension("trf_data"):
                doc._.trf_data = None
            docs.append(doc)
        page = render(docs, threshold=resolve_threshold(nlp, threshold), kb_url_template=kb_url)
    except (ValueError, OSError, CorpusFormatError) as err:
        msg.fail(str(err), exits=1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf8")
    n_ents = sum(len(d.ents) for d in docs)
    msg.good(f"Wrote {output}: {len(docs)} document(s), {n_ents} entities")
