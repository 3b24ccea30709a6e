"""`spacy-biobert serve MODEL`."""

import typer
from wasabi import msg

from ._app import app, positive_int_or_none


@app.command("serve")
def serve_cli(
    model: str = typer.Argument(..., metavar="MODEL", help="Pipeline name or folder"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on"),
    port: int = typer.Option(8000, "--port", "-p", help="Port to listen on"),
    max_bytes: str = typer.Option(
        "1000000", "--max-bytes", help="Largest request body in bytes (413 above); 'none' for no limit"
    ),
    max_docs: str = typer.Option(
        "100", "--max-docs", help="Most documents in one request (413 above); 'none' for no limit"
    ),
    max_chars: str = typer.Option(
        "100000", "--max-chars", help="Longest document in characters (422 above); 'none' for no limit"
    ),
    threshold: float = typer.Option(0.5, "--threshold", help="Default relation threshold"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Serve a pipeline over HTTP: POST /annotate (JSON {"text": ...},
    text/x-pubtator or text/plain in; entities with offsets, labels and kb ids,
    and relations with scores out, in the annotate JSONL schema) and GET /health."""
    import spacy

    from ..serve import create_app

    limits = {
        "max_bytes": positive_int_or_none("--max-bytes", max_bytes),
        "max_docs": positive_int_or_none("--max-docs", max_docs),
        "max_chars": positive_int_or_none("--max-chars", max_chars),
    }
    try:
        import uvicorn
    except ImportError:
        msg.fail("spacy-biobert serve needs uvicorn: pip install 'spacy-biobert[serve]'", exits=1)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        nlp = spacy.load(model)
        service = create_app(nlp, threshold=threshold, **limits)
    except (ValueError, OSError, ImportError) as err:
        msg.fail(str(err), exits=1)
    msg.good(f"Serving {model} ({', '.join(nlp.pipe_names)}) on http://{host}:{port}")
    uvicorn.run(service, host=host, port=port, log_level="info")
