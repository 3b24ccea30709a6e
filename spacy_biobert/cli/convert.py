"""`spacy-biobert convert` and `spacy-biobert alignment`."""

from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from ..corpora.formats import INPUT_FORMATS, OUTPUT_FORMATS, RECORD_FORMATS
from ..corpora.text import DEFAULT_TEXT_DOCS
from ._app import TEXT_DOCS_HELP, app, label_map_option

# From the format table (corpora.formats): plain text is read when asked for.
_FORMATS_HELP = ", ".join(("auto",) + INPUT_FORMATS + ("text",))
_OUT_HELP = "auto (from OUTPUT's extension), " + ", ".join(OUTPUT_FORMATS)


def _print_stats(stats) -> None:
    rows = [
        ("documents", stats.documents),
        ("mentions", stats.mentions),
        ("relations", stats.relations),
        ("mentions expanded to token boundaries", stats.misaligned),
        ("mentions not in doc.ents (overlaps)", stats.not_flat),
        ("duplicate documents dropped", stats.duplicates),
        ("bad records skipped", stats.skipped),
        ("  of which whole documents", stats.skipped_documents),
        ("repeated lines dropped", stats.duplicate_lines),
        ("BioC texts with markup (text kept, tags dropped)", stats.markup),
    ] + [(f"not read: {kind}", n) for kind, n in sorted(stats.skipped_annotations.items())]
    msg.table(rows, header=("", "count"), divider=True, widths="auto", max_col=80)
    for err in stats.errors:
        msg.warn(str(err).split(" Fix:")[0])
    if stats.skipped > len(stats.errors):
        msg.warn(f"... and {stats.skipped - len(stats.errors)} more bad records")
    for missing in stats.missing_files:
        msg.warn(f"{missing} not found: the documents have no annotations from it")
    for example in stats.markup_examples[:3]:
        msg.warn(f"markup in BioC text, its text kept: {example}")
    if stats.misaligned:
        msg.info(
            f"{stats.misaligned} mention(s) did not fall on token boundaries and were "
            f"expanded, e.g. {'; '.join(stats.misaligned_examples[:3])}"
        )


@app.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(
        ..., help="Input file, ChemProt split folder / prefix, or brat folder (.txt + .ann)"
    ),
    output_path: Path = typer.Argument(
        ...,
        help=(
            "Output file (.spacy, .pubtator/.txt, .xml, .json, .jsonl) or folder (ChemProt; "
            "brat with --to brat)"
        ),
    ),
    fmt: str = typer.Option(
        "auto", "--format", "-f", help=f"Input format: {_FORMATS_HELP}"
    ),
    to: str = typer.Option("auto", "--to", "-t", help=f"Output format: {_OUT_HELP}"),
    skip_bad: bool = typer.Option(
        False,
        "--skip-bad",
        help="Skip and count bad records instead of stopping at the first",
    ),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N documents"),
    label_map: Optional[str] = typer.Option(
        None,
        "--label-map",
        help="Rename types in doc.ents: a preset (ncbi, chemprot-gene) or a JSON object",
    ),
    dedupe: bool = typer.Option(
        True, "--dedupe/--no-dedupe", help="Drop repeated identical PubTator documents"
    ),
    tokenizer: str = typer.Option(
        "biomedical",
        "--tokenizer",
        help="Tokenizer of the Docs: biomedical or default (spaCy English)",
    ),
    lang: str = typer.Option("en", "--lang", help="Language of the blank pipeline"),
    text_docs: str = typer.Option(
        DEFAULT_TEXT_DOCS, "--text-docs", help=TEXT_DOCS_HELP + " (with --format text)"
    ),
    allow_loss: bool = typer.Option(
        False,
        "--allow-loss",
        help="Write the output even when its format cannot hold everything the input has "
        "(e.g. ChemProt's relations in PubTator), and list what was dropped; without it "
        "such a conversion is refused (E121) with the counts",
    ),
) -> None:
    """Convert a biomedical corpus between PubTator, BioC XML/JSON, ChemProt
    TSV, JSONL and spaCy's .spacy (DocBin, with user data); plain text
    (--format text) in too."""
    from tqdm import tqdm

    from ..corpora import CorpusFormatError, CorpusStats
    from ..corpora.formats import (
        detect_format,
        make_tokenizer_nlp,
        output_format,
        read_corpus,
        write_corpus,
    )
    from ..corpora.losses import LossReport

    mapping = label_map_option(label_map)
    try:
        in_fmt = detect_format(input_path) if fmt == "auto" else fmt
        out_fmt = output_format(output_path) if to == "auto" else to
        nlp = make_tokenizer_nlp(tokenizer, lang)
    except (ValueError, FileNotFoundError) as err:
        msg.fail(str(err), exits=1)
    msg.info(
        f"{input_path} ({in_fmt}) -> {output_path} ({out_fmt}), tokenizer: {tokenizer}"
    )
    stats = CorpusStats()
    docs = read_corpus(
        input_path,
        nlp,
        format=in_fmt,
        on_error="skip" if skip_bad else "raise",
        limit=limit,
        label_map=mapping,
        dedupe=dedupe,
        stats=stats,
        text_docs=text_docs,
    )
    if out_fmt == "chemprot":
        output_path.mkdir(parents=True, exist_ok=True)  # FOLDER/FOLDERNAME_*.tsv
    losses = LossReport(out_fmt, source=f"'{input_path}' ({in_fmt})")
    try:
        n = write_corpus(
            tqdm(docs, unit="doc", desc="convert", leave=False, disable=None),
            output_path,
            out_fmt,
            allow_loss=allow_loss,
            losses=losses,
        )
    except (CorpusFormatError, ValueError, FileNotFoundError, OSError) as err:
        msg.fail(str(err), exits=1)
    _print_stats(stats)
    if losses:
        msg.warn(f"Not written: {out_fmt} cannot hold these (--allow-loss)")
        msg.table(losses.rows(), header=("dropped", "count", "documents"), divider=True,
                  widths="auto", max_col=80)
    msg.good(f"Wrote {n} document(s) to {output_path}")


@app.command("alignment")
def alignment_cli(
    corpora: List[Path] = typer.Argument(
        ..., help="Corpus files or ChemProt split folders"
    ),
    tokenizer: str = typer.Option(
        "biomedical", "--tokenizer", help="default (spaCy English) or biomedical"
    ),
    fmt: str = typer.Option(
        "auto", "--format", "-f", help="Input format: " + ", ".join(("auto",) + RECORD_FORMATS)
    ),
    show: int = typer.Option(0, "--show", help="List the first N misaligned mentions"),
    by_type: bool = typer.Option(
        False, "--by-type", help="Break the counts down by mention type"
    ),
    lang: str = typer.Option("en", "--lang", help="Language of the blank pipeline"),
) -> None:
    """Count gold mentions that do not fall on token boundaries of a tokenizer
    (the readers expand them to the enclosing tokens)."""
    from ..corpora import CorpusFormatError
    from ..corpora.formats import count_misaligned, iter_records, make_tokenizer_nlp

    try:
        nlp = make_tokenizer_nlp(tokenizer, lang)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    rows = []
    total_m = total_mis = 0
    reports = []
    for path in corpora:
        try:
            records = iter_records(path, None if fmt == "auto" else fmt)
            report = count_misaligned(
                records,
                nlp.make_doc,
                path=str(path),
                tokenizer=tokenizer,
                max_examples=show,
            )
        except (CorpusFormatError, ValueError, FileNotFoundError) as err:
            msg.fail(str(err), exits=1)
        reports.append(report)
        total_m += report.mentions
        total_mis += report.misaligned
        rows.append(
            (
                str(path),
                report.documents,
                report.mentions,
                report.misaligned,
                f"{report.percent:.2f}%",
            )
        )
        if by_type:
            for label, (mis, tot) in sorted(report.by_type.items()):
                rows.append(
                    (f"  {label}", "", tot, mis, f"{100.0 * mis / tot if tot else 0:.2f}%")
                )
    if len(corpora) > 1:
        pct = 100.0 * total_mis / total_m if total_m else 0.0
        rows.append(
            ("total", sum(r.documents for r in reports), total_m, total_mis, f"{pct:.2f}%")
        )
    msg.table(
        rows,
        header=("corpus", "docs", "mentions", "misaligned", "%"),
        divider=True,
        widths="auto",
        max_col=80,
    )
    msg.info(f"tokenizer: {tokenizer}")
    for report in reports:
        for example in report.examples[:show]:
            msg.text(f"  {Path(report.path).name}: {example}")
