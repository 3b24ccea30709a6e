import json
from pathlib import Path
from typing import Optional

import srsly
import typer
from wasabi import msg

from ._app import app


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder"),
    corpus: Path = typer.Argument(
        ..., exists=True, help="Gold corpus: PubTator, BioC XML/JSON file or ChemProt split folder"
    ),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON"),
    fmt: str = typer.Option(
        "auto", "--format", "-f", help="auto (from the path), pubtator, bioc, chemprot, jsonl"
    ),
    label_map: Optional[str] = typer.Option(
        None, "--label-map", help="Gold type mapping: a preset name (ncbi) or a JSON object"
    ),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N documents"),
    batch_size: int = typer.Option(32, "--batch-size", "-b"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Strict entity-level P/R/F1 (micro, and per type) at the corpus's own
    character offsets, as BioBERT and scispaCy report NER."""
    import spacy
    from tqdm import tqdm

    from ..corpora._base import CorpusFormatError
    from ..corpora.label_maps import LABEL_MAPS
    from ..evaluation import evaluate_ner

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    mapping = _parse_label_map(label_map, LABEL_MAPS)
    nlp = spacy.load(model)
    try:
        records = list(_iter_gold_records(corpus, fmt, limit))
    except (CorpusFormatError, FileNotFoundError, ValueError) as err:
        msg.fail(str(err), exits=1)
    gold = [
        (r.doc_id or i, r.text, [(m.start, m.end, m.type) for m in r.mentions])
        for i, r in enumerate(records)
    ]
    with tqdm(total=len(gold), desc="evaluate", unit="doc") as bar:
        scores = evaluate_ner(nlp, gold, batch_size=batch_size, label_map=mapping, progress=bar.update)
    result = scores.as_dict()
    result.update(model=str(model), corpus=str(corpus), label_map=mapping)
    rows = [("ALL", *_prf(result["ents_strict"]))]
    rows += [(label, *_prf(v)) for label, v in result["ents_per_type_strict"].items()]
    msg.table(
        rows,
        header=("type", "P", "R", "F1", "gold", "pred"),
        divider=True,
        aligns=("l", "r", "r", "r", "r", "r"),
    )
    widened = result["ents_token_widened"]
    msg.info(
        f"{scores.documents} documents, {scores.words} words, {result['words_per_second']} words/s. "
        f"Against gold widened to token boundaries (spaCy's ents_f) F1 would read {widened['f']:.2f}; "
        f"{result['gold_mentions_not_on_token_boundaries']} gold mentions are not on token boundaries."
    )
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, result)
        msg.good(f"Saved scores to {output}")


def _iter_gold_records(path: Path, fmt: str, limit: Optional[int]):
    """SourceDocument records: the corpus's own offsets and types."""
    from ..corpora._base import apply_limit
    from ..corpora.formats import iter_records

    records = iter_records(path, None if fmt == "auto" else fmt, dedupe=True)
    return apply_limit(records, limit)


def _prf(d):
    return (f"{d['p']:.2f}", f"{d['r']:.2f}", f"{d['f']:.2f}", d["tp"] + d["fn"], d["tp"] + d["fp"])


def _parse_label_map(value: Optional[str], presets):
    from ..errors import Errors

    if value is None:
        return None
    if value in presets:
        return dict(presets[value])
    try:
        mapping = json.loads(value)
    except json.JSONDecodeError:
        msg.fail(Errors.E012.format(name=value, known=", ".join(presets)), exits=1)
    if not isinstance(mapping, dict):
        msg.fail(Errors.E012.format(name=value, known=", ".join(presets)), exits=1)
    return mapping
