"""`spacy-biobert pretrain INPUT... --output DIR`: domain-adaptive pretraining."""

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import typer
from wasabi import msg

from ..corpora.formats import INPUT_FORMATS
from ..corpora.text import DEFAULT_TEXT_DOCS
from ._app import TEXT_DOCS_HELP, app


@app.command("pretrain")
def pretrain_cli(
    inputs: List[Path] = typer.Argument(
        ..., metavar="INPUT...",
        help="Corpus files (PubTator, BioC, ChemProt split, JSONL, .spacy) or plain text "
        "(see --text-docs); folders are walked",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the adapted model + tokenizer"),
    base_model: str = typer.Option(
        "minilm-offline", "--base-model", "-m", help="Folder, alias or hub id to continue from"
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", exists=True, dir_okay=False,
        help="A .cfg with a [pretraining] section (e.g. configs/pretrain/mlm_nsp.cfg)",
    ),
    objective: Optional[str] = typer.Option(None, "--objective", help="mlm+nsp or mlm"),
    whole_word_mask: Optional[bool] = typer.Option(
        None, "--whole-word-mask/--no-whole-word-mask", help="Mask whole words"
    ),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Adaptation steps"),
    head_warmup_steps: Optional[int] = typer.Option(
        None, "--head-warmup-steps", help="Steps training only new heads first"
    ),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b"),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Wordpieces per example"),
    learn_rate: Optional[float] = typer.Option(None, "--learn-rate"),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps", help="Linear LR warm-up steps"),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every"),
    eval_max_examples: Optional[int] = typer.Option(
        None, "--eval-max-examples", help="Held-out examples scored before and after"
    ),
    heldout_fraction: Optional[float] = typer.Option(
        None, "--heldout-fraction", help="Share of the documents held out (by content) for those scores"
    ),
    seed: Optional[int] = typer.Option(None, "--seed"),
    input_format: str = typer.Option(
        "auto", "--format", "-f", help=", ".join(("auto", "text") + INPUT_FORMATS)
    ),
    text_docs: str = typer.Option(
        DEFAULT_TEXT_DOCS, "--text-docs", help=TEXT_DOCS_HELP + " (BERT's pretraining text: blank-line)"
    ),
    metrics: Optional[Path] = typer.Option(
        None, "--metrics", help="Also copy the held-out before/after JSON here"
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUTPUT/checkpoint"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model already in OUTPUT"),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Continue pretraining a base model on your text with MLM (+ NSP), the
    BioBERT recipe; writes a model folder that the `biobert` factory loads
    (--paths.base_model OUTPUT), and held-out MLM perplexity / NSP accuracy
    before and after to OUTPUT/pretraining_metrics.json."""
    from ..pretraining import PretrainSettings, pretrain

    values: Dict[str, Any] = {}
    if config is not None:
        from thinc.api import Config

        values.update(Config().from_disk(config).get("pretraining", {}))
    cli_values = dict(
        objective=objective, whole_word_mask=whole_word_mask, max_steps=max_steps,
        head_warmup_steps=head_warmup_steps, batch_size=batch_size, max_length=max_length,
        learn_rate=learn_rate, warmup_steps=warmup_steps, checkpoint_every=checkpoint_every,
        eval_max_examples=eval_max_examples, heldout_fraction=heldout_fraction, seed=seed,
    )
    values.update({k: v for k, v in cli_values.items() if v is not None})
    try:
        settings = PretrainSettings.from_dict(values)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    if resume and overwrite:
        msg.fail("--resume and --overwrite exclude each other.", exits=1)
    if threads:
        import torch

        torch.set_num_threads(threads)
    device = f"cuda:{gpu_id}" if gpu_id >= 0 else "cpu"
    view = _Progress()
    started = time.time()
    try:
        result = pretrain(
            inputs, output, base_model, settings, format=input_format, text_docs=text_docs, resume=resume,
            overwrite=overwrite, device=device, progress=view,
        )
    except (ValueError, OSError) as err:
        view.close()
        msg.fail(str(err), exits=1)
    view.close()
    heldout = result.metrics["heldout"]
    if metrics is not None:
        metrics.parent.mkdir(parents=True, exist_ok=True)
        metrics.write_text(json.dumps(result.metrics, indent=2) + "\n", encoding="utf8")
    rows = [(when, _fmt(m)) for when, m in heldout.items()]
    if rows:
        msg.table(rows, header=("held-out", "MLM loss / perplexity / NSP accuracy"), divider=True)
    msg.good(
        f"Pretrained {result.steps} steps in {time.time() - started:.0f}s; model and tokenizer "
        f"in {output} (use it as --paths.base_model {output})"
    )


def _fmt(m: Dict[str, Any]) -> str:
    text = f"{m['mlm_loss']:.3f} / {m['mlm_perplexity']:.2f}"
    if "nsp_accuracy" in m:
        text += f" / {100 * m['nsp_accuracy']:.1f}%"
    return text


class _Progress:
    """Shows the library's progress events: a tqdm bar over the steps."""

    def __init__(self) -> None:
        self.bar = None

    def __call__(self, event: str, info: Dict[str, Any]) -> None:
        from tqdm import tqdm

        if event == "model":
            msg.info(f"Base model {info['base_model']}: {info['parameters']:,} parameters")
            if info["initialized"]:
                msg.warn(
                    "No pretrained weights for " + ", ".join(info["initialized"])
                    + ": initialized anew (MLM decoder tied to the word embeddings). "
                    "Use --head-warmup-steps to train them first with the encoder frozen."
                )
        elif event == "data":
            msg.info(
                f"Text: {info['documents']:,} documents, {info['sentences']:,} sentences from "
                f"{info['files']} file(s); train {info['train_documents']:,} docs / "
                f"{info['train_wordpieces']:,} wordpieces, held out {info['heldout_documents']:,} "
                f"docs / {info['heldout_wordpieces']:,} wordpieces"
            )
            if info["skipped_files"]:
                msg.warn(f"Skipped files of no known format: {', '.join(info['skipped_files'])}")
        elif event == "resume":
            msg.info(f"Resuming at step {info['step']}")
        elif event == "eval" and "metrics" in info:
            self._write(f"held-out {info['when']}: {_fmt(info['metrics'])}")
        elif event == "step":
            if self.bar is None:
                self.bar = tqdm(total=info["total"], initial=info["step"] - 1, unit="step",
                                dynamic_ncols=True, disable=None)
            self.bar.update(1)
            post = {"loss": f"{info['loss']:.3f}", "epoch": info["epoch"]}
            self.bar.set_postfix(post)
        elif event == "checkpoint":
            self._write(f"checkpoint at step {info['step']}: {info['path']}")

    def _write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text)
        else:
            msg.info(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
