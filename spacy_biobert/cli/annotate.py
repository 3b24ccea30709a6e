"""`spacy-biobert annotate MODEL INPUT OUTPUT`."""

from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..corpora.text import DEFAULT_TEXT_DOCS
from ._app import INPUT_HELP, TEXT_DOCS_HELP, app, positive_int_or_none


@app.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., metavar="MODEL", help="Pipeline name or folder"),
    input_path: Path = typer.Argument(
        ...,
        exists=True,
        metavar="INPUT",
        help=INPUT_HELP,
    ),
    output: Path = typer.Argument(
        ...,
        metavar="OUTPUT",
        help="Output file: .jsonl, .pubtator (or .txt), .xml (BioC XML), .json (BioC JSON)",
    ),
    input_format: str = typer.Option(
        "auto", "--input-format", "-f", help="auto, text, jsonl, pubtator, bioc"
    ),
    text_docs: str = typer.Option(DEFAULT_TEXT_DOCS, "--text-docs", help=TEXT_DOCS_HELP),
    output_format: str = typer.Option(
        "auto", "--output-format", "-t", help="auto (from OUTPUT), jsonl, pubtator, bioc-xml, bioc-json"
    ),
    max_chars: str = typer.Option(
        "100000",
        "--max-chars",
        help="Reject longer documents (characters); 'none' for no limit. With the defaults one "
        "worker stays under 4 GB of memory on any input (README: Reliability); a larger limit "
        "raises that bound",
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Documents per nlp.pipe batch"),
    window: int = typer.Option(
        1000,
        "--window",
        help="Documents read, sorted by length and checkpointed together (bounds memory)",
    ),
    threshold: Optional[float] = typer.Option(
        None,
        "--threshold",
        help="Write relations scored at least this (default: the threshold the pipeline's "
        "biobert_relations was configured with)",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace OUTPUT and any files left by an interrupted run"
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    quantize: str = typer.Option(
        "none", "--quantize", "-q", help="none, or int8: the transformer's linear layers in int8 (CPU)"
    ),
    precision: Optional[str] = typer.Option(
        None,
        "--precision",
        help="fp32, bf16 or auto: how the transformer runs on the CPU (bf16: bfloat16 autocast, "
        "only where the CPU has native bfloat16, else fp32 with a warning; auto: bf16 where "
        "supported). Default: as the pipeline is set (fp32 for the shipped pipelines). "
        "bf16 and --quantize int8 exclude each other",
    ),
    backend: str = typer.Option(
        "local", "--backend", help="local (nlp.pipe here) or ray (Ray actors; needs the ray extra)"
    ),
    ray_address: Optional[str] = typer.Option(
        None, "--ray-address", help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)"
    ),
    ray_workers: Optional[int] = typer.Option(
        None, "--ray-workers", help="Ray actors, each loading the pipeline once (default: CPUs / per worker)"
    ),
    ray_cpus_per_worker: int = typer.Option(
        1, "--ray-cpus-per-worker", help="CPUs (and torch threads) per Ray actor"
    ),
) -> None:
    """Annotate documents with a trained pipeline: streamed (flat memory), in
    input order, every input document either in OUTPUT or, with the reason, in
    OUTPUT.rejects.jsonl. Output is written atomically; an interrupted run
    continues with --resume and gives the same output as an uninterrupted one."""
    import spacy
    from tqdm import tqdm

    from ..annotate import AnnotateOptions, annotate
    from ..corpora.errors import CorpusFormatError
    from ..models.base_models import load_pipeline
    from ..pipeline.relations import check_threshold

    limit = positive_int_or_none("--max-chars", max_chars)
    try:
        if threshold is not None:
            check_threshold(threshold)  # as serve and render do, before the pipeline loads
    except ValueError as err:
        msg.fail(f"--threshold: {err}", exits=1)
    if precision is not None:
        from ..precision import check_precision

        try:  # before the (slow) model load
            check_precision(precision)
        except ValueError as err:
            msg.fail(str(err), exits=1)
    if resume and overwrite:
        msg.fail("--resume and --overwrite exclude each other: choose one.", exits=1)
    if backend == "ray" and gpu_id >= 0:
        msg.fail("--backend ray runs on CPUs; --gpu-id is for the local backend.", exits=1)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = model
    if backend != "ray":
        # The Ray workers load the pipeline themselves.
        try:
            nlp = load_pipeline(model)
        except (OSError, ValueError) as err:
            msg.fail(f"Cannot load the pipeline '{model}': {err}", exits=1)
    bar = tqdm(desc="annotate", unit="doc", dynamic_ncols=True, smoothing=0.1, disable=None)

    def on_window(stats) -> None:
        bar.set_postfix(ents=stats.entities, rejected=stats.rejected, refresh=False)

    try:
        options = AnnotateOptions(
            input_format=None if input_format == "auto" else input_format,
            output_format=None if output_format == "auto" else output_format,
            text_docs=text_docs,
            max_chars=limit,
            batch_size=batch_size,
            window=window,
            threshold=threshold,
            resume=resume,
            overwrite=overwrite,
            quantize=None if quantize == "none" else quantize,
            precision=precision,
            backend=backend,
            ray_address=ray_address,
            ray_workers=ray_workers,
            ray_cpus_per_worker=ray_cpus_per_worker,
        )
        stats = annotate(nlp, input_path, output, options, on_doc=bar.update, on_window=on_window)
    except (CorpusFormatError, FileExistsError, FileNotFoundError, ImportError, ValueError) as err:
        bar.close()
        msg.fail(str(err), exits=1)
    bar.close()
    rows = [
        ("documents", stats.documents),
        ("entities", stats.entities),
        ("relations", stats.relations),
        ("rejected", stats.rejected),
        ("time (s)", f"{stats.seconds:.1f}"),
        ("documents/s", f"{stats.docs_per_s:.1f}"),
    ]
    if stats.resumed_from:
        rows.append(("resumed after", stats.resumed_from))
    msg.table(rows, header=("", "total"), divider=True, aligns=("l", "r"))
    msg.good(f"Wrote {stats.output}")
    if stats.rejected:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(stats.reject_reasons.items()))
        msg.warn(f"{stats.rejected} document(s) rejected ({kinds}), see {stats.rejects}")

