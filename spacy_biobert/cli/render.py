"""`spacy-biobert render MODEL INPUT --output page.html`."""

from itertools import islice
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ._app import INPUT_HELP, app


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
    limit: int = typer.Option(20, "--limit", "-n", help="Render the first N documents"),
    threshold: float = typer.Option(0.5, "--threshold", help="Draw relations scored at least this"),
    kb_url: Optional[str] = typer.Option(
        None,
        "--kb-url",
        help="Link kb ids with this template, e.g. 'https://meshb.nlm.nih.gov/record/ui?ui={}'",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Annotate the first documents of INPUT and write one self-contained HTML
    page: entities in displaCy's entity style (with kb ids where linked) and
    relation arcs labelled with their scores."""
    import spacy

    from ..annotate.inputs import Record, iter_input
    from ..annotate.runner import _make_doc
    from ..corpora._base import CorpusFormatError
    from ..visualize import render

    if limit < 1:
        msg.fail(f"--limit must be >= 1, not {limit}", exits=1)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        fmt = None if input_format == "auto" else input_format
        items = list(islice(iter_input(input_path, fmt), limit))
        records = [it for it in items if isinstance(it, Record)]
        for it in items:
            if not isinstance(it, Record):
                msg.warn(f"skipped document {it.id}: {it.reason}")
        nlp = spacy.load(model)
        docs = list(nlp.pipe(_make_doc(nlp, rec) for rec in records))
        page = render(docs, threshold=threshold, kb_url_template=kb_url)
    except (ValueError, OSError, CorpusFormatError) as err:
        msg.fail(str(err), exits=1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf8")
    n_ents = sum(len(d.ents) for d in docs)
    msg.good(f"Wrote {output}: {len(docs)} document(s), {n_ents} entities")
