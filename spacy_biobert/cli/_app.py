import typer

app = typer.Typer(
    name="spacy-biobert",
    help="BioBERT-class transformers for biomedical text mining in spaCy.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """BioBERT-class transformers for biomedical text mining in spaCy."""
