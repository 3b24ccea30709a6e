"""`spacy-biobert.TrainingLogger.v1`: spaCy's console logger (with its
progress bar) that also records each saved checkpoint, so a run can resume
(`spacy-biobert train --resume`) and reports its wall time and peak memory.
Every evaluation is also a line of OUTPUT/training_curve.jsonl (training/curve.py):
the dev curve of the run, resumes included.

The progress bar only draws on a terminal; when stderr is a file (a training
run in the background) the logger writes a plain line every `progress_every`
steps instead, so a log shows progress between evaluations.

Freed heap memory goes back to the system after every evaluation and every
`release_every` steps (50; null: after evaluations only; see
training/memory.py).

`step_offset` and `seconds_offset` are set by `spacy-biobert train --resume`
(the steps and seconds of the run before the resume), so the state and the
progress lines count from the start of the whole run.

Steps after the last evaluation are not lost: spaCy saves model-last however
its loop ends (finished between two evaluations, interrupted by Ctrl-C or by
`spacy-biobert train`'s SIGTERM handler, or stopped by an error), and the
logger's finalizer, which spaCy calls just before, saves it first and then
records the step it holds (`"evaluated_step"`: the step the scores are of),
so a resume continues from the step the run reached, not from its last
evaluation with the later steps' weights."""
import resource
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Tuple

import srsly
from spacy.language import Language
from spacy.util import registry

from ..errors import Errors
from .curve import append_point, curve_point
from .memory import release_freed_memory

STATE_FILE = "training_state.json"
# Steps between two returns of freed heap memory to the system (see
# `release_freed_memory`), unless the config's `release_every` says otherwise;
# evaluations return it too.
RELEASE_EVERY = 50


@registry.loggers("spacy-biobert.TrainingLogger.v1")
def create_training_logger(
    progress_bar: bool = True,
    console_output: bool = True,
    output_file: Optional[str] = None,
    progress_every: int = 50,
    step_offset: int = 0,
    seconds_offset: float = 0.0,
    release_every: Optional[int] = RELEASE_EVERY,
) -> Callable[[Language, IO, IO], Tuple[Callable[[Optional[Dict[str, Any]]], None], Callable[[], None]]]:
    if release_every is not None and release_every < 1:
        raise ValueError(Errors.E014.format(value=release_every))

    def setup(nlp: Language, stdout: IO = None, stderr: IO = None):
        err = stderr if stderr is not None else sys.stderr
        # spaCy's bar only on a terminal: in a log file it is a mess of
        # carriage returns (plain progress lines are written instead)
        console = registry.loggers.get("spacy.ConsoleLogger.v3")(
            progress_bar="eval" if progress_bar and _is_tty(err) else None,
            console_output=console_output,
            output_file=output_file,
        )
        log_console, finalize_console = console(_ScoreColumns(nlp), stdout, stderr)
        predict_gold_relations_only_in_score(nlp)
        plain_progress = progress_bar and progress_every > 0 and not _is_tty(err)
        started = time.time()
        step = 0
        # OUTPUT, the step model-last holds and the state saved with it (known
        # from the first evaluation, which spaCy makes at step 0)
        output: Optional[Path] = None
        saved_step = 0
        saved_state: Dict[str, Any] = {}

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            # spaCy calls this once per step, with info only at evaluations.
            nonlocal step, output, saved_step, saved_state
            # The table's step column counts from the start of the whole run too.
            log_console(dict(info, step=info["step"] + step_offset) if info and step_offset else info)
            step = info["step"] if info is not None else step + 1
            if info is not None or (release_every and step % release_every == 0):
                release_freed_memory()
            if plain_progress and info is None and step % progress_every == 0:
                elapsed = time.time() - started
                err.write(
                    f"step {step + step_offset}: {elapsed + seconds_offset:.0f} s, "
                    f"{elapsed / step:.2f} s/step\n"
                )
                err.flush()
            if info is None or not info.get("output_path"):
                return
            # info["output_path"] is OUTPUT/model-last, just saved.
            output = Path(info["output_path"]).parent
            seconds, peak = time.time() - started + seconds_offset, peak_rss_mb()
            state = {
                "step": info["step"] + step_offset,
                "epoch": info["epoch"],
                "score": info["score"],
                "other_scores": info.get("other_scores", {}),
                "seconds": round(seconds, 1),
                "peak_rss_mb": peak,
            }
            srsly.write_json(output / STATE_FILE, state)
            append_point(output, curve_point(state["step"], info, seconds, peak))
            saved_step, saved_state = info["step"], state

        def finalize() -> None:
            finalize_console()
            if output is None or step <= saved_step:
                return
            # The loop ended after steps no evaluation saved: save them, then
            # say so (model-last first, so the state never runs ahead of it).
            nlp.to_disk(output / "model-last")
            state = dict(
                saved_state,
                step=step + step_offset,
                evaluated_step=saved_step + step_offset,
                seconds=round(time.time() - started + seconds_offset, 1),
                peak_rss_mb=peak_rss_mb(),
            )
            srsly.write_json(output / STATE_FILE, state)

        return log_step, finalize

    return setup


class _ScoreColumns:
    """What spaCy's console logger reads of the pipeline (its `pipeline` and
    `config`), with the score columns no component can fill left out: the
    relation scores of a level at which no `biobert_relations` has a label
    (rel_doc_* when every label is mention level; rel_micro_* when every one
    is document level) would read 0.00 at every evaluation, which looks like
    a failure. Only the table changes: the training score is spaCy's own."""

    def __init__(self, nlp: Language):
        self.pipeline = nlp.pipeline
        self.config = nlp.config
        relations = [
            pipe for name, pipe in nlp.pipeline
            if nlp.get_pipe_meta(name).factory == "biobert_relations"
        ]
        if not relations:
            return
        unused = []
        if not any(pipe.concept_labels for pipe in relations):
            unused.append("rel_doc_")
        if not any(pipe.mention_labels for pipe in relations):
            unused.append("rel_micro_")
        weights = dict(nlp.config["training"]["score_weights"])
        shown = {k: (None if k.startswith(tuple(unused)) else v) for k, v in weights.items()}
        if unused:
            config = nlp.config.copy()
            config["training"]["score_weights"] = shown
            self.config = config


def predict_gold_relations_only_in_score(nlp: Language) -> None:
    """A relation component trained on gold entities is scored on them: its
    `score` puts the reference's entities on the docs and predicts again. So
    in this run's evaluations its pipeline pass (relations of the entities
    `ner` predicted, then overwritten unread) is skipped: with a per-pair
    model it costs as much as the scoring pass. The scores are the same."""
    for name, pipe in nlp.pipeline:
        if nlp.get_pipe_meta(name).factory == "biobert_relations" and pipe.cfg.get("gold_entities"):
            pipe.predict_only_in_score = True


def _is_tty(stream: IO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
