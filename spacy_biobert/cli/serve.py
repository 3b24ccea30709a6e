"""`spacy-biobert serve MODEL`."""

from typing import List, Optional

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
    threshold: Optional[float] = typer.Option(
        None,
        "--threshold",
        help="Default relation threshold of the service (default: the one the pipeline's "
        "biobert_relations was configured with); a request's ?threshold= overrides it",
    ),
    token: Optional[str] = typer.Option(
        None,
        "--token",
        envvar="SPACY_BIOBERT_TOKEN",
        show_envvar=True,
        help="Shared secret (16+ visible ASCII characters): every request must send "
        "'Authorization: Bearer TOKEN' (401 otherwise). Prefer the environment variable: "
        "a command line is visible to other users",
    ),
    allowed_hosts: Optional[List[str]] = typer.Option(
        None,
        "--allowed-hosts",
        help="Serve only requests whose Host header is one of these (repeat the option; "
        "'*.example.org' allowed); 400 otherwise. Default: any host",
    ),
    docs: bool = typer.Option(False, "--docs", help="Serve the API pages /docs, /redoc, /openapi.json"),
    header_timeout: float = typer.Option(
        10.0, "--header-timeout", help="Seconds a connection has to send a complete request head"
    ),
    body_timeout: float = typer.Option(
        30.0, "--body-timeout", help="Seconds a request body has to arrive (408 after)"
    ),
    keep_alive: int = typer.Option(
        5, "--keep-alive", help="Seconds an idle keep-alive connection stays open"
    ),
    max_connections: str = typer.Option(
        "64", "--max-connections", help="Connections served at once (503 above); 'none' for no limit"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    precision: Optional[str] = typer.Option(
        None,
        "--precision",
        help="fp32, bf16 or auto: how the transformer runs on the CPU (bf16 only where the CPU "
        "has native bfloat16, else fp32 with a warning). Default: as the pipeline is set",
    ),
) -> None:
    """Serve a pipeline over HTTP: POST /annotate (JSON {"text": ...},
    text/x-pubtator or text/plain in; entities with offsets, labels and kb ids,
    and relations with scores out, in the annotate JSONL schema) and GET /health.
    A request head must arrive within --header-timeout and its body within
    --body-timeout; request heads are at most 16 KiB."""
    import spacy

    from ..models.base_models import load_pipeline
    from ..precision import check_precision
    from ..serve import check_token, create_app, server_config

    limits = {
        "max_bytes": positive_int_or_none("--max-bytes", max_bytes),
        "max_docs": positive_int_or_none("--max-docs", max_docs),
        "max_chars": positive_int_or_none("--max-chars", max_chars),
    }
    connections = positive_int_or_none("--max-connections", max_connections)
    try:
        check_token(token)  # before the (slow) model load
        if precision is not None:
            check_precision(precision)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    try:
        import uvicorn
    except ImportError:
        msg.fail("spacy-biobert serve needs uvicorn: pip install 'spacy-biobert[serve]'", exits=1)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        nlp = load_pipeline(model)
        service = create_app(
            nlp,
            threshold=threshold,
            token=token,
            allowed_hosts=allowed_hosts or None,
            docs=docs,
            body_timeout=body_timeout,
            precision=precision,
            **limits,
        )
        config = server_config(
            service,
            host=host,
            port=port,
            header_timeout=header_timeout,
            keep_alive=keep_alive,
            max_connections=connections,
        )
    except (ValueError, OSError, ImportError) as err:
        msg.fail(str(err), exits=1)
    protection = ", token required" if token else ""
    msg.good(f"Serving {model} ({', '.join(nlp.pipe_names)}) on http://{host}:{port}{protection}")
    uvicorn.Server(config).run()
