import contextlib
import shutil
import signal
import time
from pathlib import Path
from typing import Iterator

import srsly
import typer
from spacy.cli._util import parse_config_overrides, show_validation_error
from wasabi import msg

from ._app import app


@app.command(
    "train",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def train_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., exists=True, dir_okay=False, help="Training config"),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder (model-best, model-last)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in OUTPUT"),
    resume_if_unfinished: bool = typer.Option(
        False, "--resume-if-unfinished",
        help="Continue the run in OUTPUT if these same settings started it and it stopped "
        "before max_steps; otherwise train from the start (for workflows run again after a kill)",
    ),
) -> None:
    """Train a pipeline (spacy train with progress, checkpoint state and --resume).

    Extra options override the config, as with `spacy train`:
    --paths.corpora ../shared/corpora --training.max_steps 2000

    Ctrl-C or SIGTERM stops the run at the step it reached, saved in
    OUTPUT/model-last; --resume continues from there. A finished run whose
    last step no evaluation covered (max_steps off the eval_frequency grid,
    or a resumed run) has that step evaluated, and kept as model-best if it
    scores at least as high.
    """
    from spacy.cli.train import train as spacy_train
    from spacy.util import load_config

    from ..training import (
        STATE_FILE,
        check_earlier_run,
        early_stoppers,
        follow_max_steps,
        record_finished,
        record_run,
        resume_config,
        set_aside_run,
    )
    from ..training.curve import untrained_best_warning
    from ..training.last_step import evaluate_last_step, unevaluated_last_step
    from ..training.memory import map_large_blocks

    if resume and resume_if_unfinished:
        msg.fail("--resume and --resume-if-unfinished exclude each other: choose one.", exits=1)
    overrides = follow_max_steps(config_path, parse_config_overrides(ctx.args))
    output.mkdir(parents=True, exist_ok=True)
    started = time.time()
    try:  # before the pipeline allocates: keeps resident memory near what is used
        map_large_blocks()
    except ValueError as err:
        msg.fail(str(err), exits=1)
    previous_best = None
    with show_validation_error(config_path):
        config = load_config(config_path, overrides=overrides, interpolate=True)
    max_steps = int(config["training"]["max_steps"])
    if resume_if_unfinished:
        earlier = check_earlier_run(config, output)
        resume = earlier.resume
        msg.info(("Resuming: " if resume else "Training from the start: ") + earlier.why)
        if earlier.set_aside:
            aside = set_aside_run(output)
            msg.info(f"The unfinished earlier run is kept in {aside}")
    if not resume:
        record_run(config, output)
    if resume:
        try:
            config, state = resume_config(config, output)
        except ValueError as err:
            msg.fail(str(err), exits=1)
        msg.info(f"Resuming from step {state['step']} (score {state['score']:.3f}) in {output}")
        if (output / "model-best").exists():
            previous_best = output / "model-best.before-resume"
            shutil.rmtree(previous_best, ignore_errors=True)
            shutil.copytree(output / "model-best", previous_best)
        config_path = output / "resume.cfg"
        config.to_disk(config_path)
        overrides = {}
    interrupted = False
    try:
        with _sigterm_as_interrupt():
            spacy_train(config_path, output, use_gpu=gpu_id, overrides=overrides)
    except KeyboardInterrupt:
        interrupted = True  # spaCy saved model-last on its way out
    if previous_best is not None:
        _keep_better_best(output, previous_best)
    if interrupted:
        _report_interrupted(output)
        raise typer.Exit(130)
    record_finished(output)
    last_step = unevaluated_last_step(output)
    if last_step is not None:
        msg.info(f"Evaluating step {last_step}: the run ended after its last evaluation")
        try:
            with _sigterm_as_interrupt():
                scored = evaluate_last_step(config, output)
        except KeyboardInterrupt:
            msg.warn(f"Interrupted while evaluating step {last_step}: {output / 'model-last'} holds "
                     "it unevaluated; model-best is the best evaluated step.")
            raise typer.Exit(130) from None
        kept = ("now model-best" if scored.is_best else
                f"model-best stays the earlier step (score {scored.best_score:.3f})")
        msg.info(f"Step {scored.step} scores {scored.score:.3f}: {kept}")
    state_path = output / STATE_FILE
    if state_path.exists():
        state = srsly.read_json(state_path)
        stopped_early = max_steps and state["step"] < max_steps
        early = f" (stopped early by {early_stoppers(config)})" if stopped_early else ""
        msg.good(
            f"Trained to step {state['step']}{early} in {time.time() - started:.0f}s "
            f"(peak memory {state['peak_rss_mb']:.0f} MB); pipeline in {output / 'model-best'}"
        )
    warning = untrained_best_warning(output)
    if warning is not None:
        msg.warn(warning)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (what `kill`, `timeout` and job schedulers send) raises
    KeyboardInterrupt in the training loop, as Ctrl-C does, so spaCy's loop
    ends through its `finally` and the run's last steps are saved."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report_interrupted(output: Path) -> None:
    from ..training import STATE_FILE

    state_path = output / STATE_FILE
    if not state_path.exists():
        msg.warn(f"Interrupted before the first checkpoint: nothing saved in {output}.")
        return
    state = srsly.read_json(state_path)
    msg.warn(
        f"Interrupted at step {state['step']}: saved in {output / 'model-last'} "
        f"(scores of step {state.get('evaluated_step', state['step'])}). Continue the run with "
        "the same command and --resume (or --resume-if-unfinished)."
    )


def _keep_better_best(output: Path, previous_best: Path) -> None:
    """A resumed run's model-best competes with the one saved before the resume."""
    from ..training import checkpoint_score

    best = output / "model-best"
    if not best.exists() or checkpoint_score(previous_best) > checkpoint_score(best):
        shutil.rmtree(best, ignore_errors=True)
        shutil.move(str(previous_best), str(best))
    else:
        shutil.rmtree(previous_best)
