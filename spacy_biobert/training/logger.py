"""`spacy-biobert.TrainingLogger.v1`: spaCy's console logger (with its
progress bar) that also records each saved checkpoint, so a run can resume
(`spacy-biobert train --resume`) and reports its wall time and peak memory.

The progress bar only draws on a terminal; when stderr is a file (a training
run in the background) the logger writes a plain line every `progress_every`
steps instead, so a log shows progress between evaluations.

`step_offset` and `seconds_offset` are set by `spacy-biobert train --resume`
(the steps and seconds of the run before the resume), so the state and the
progress lines count from the start of the whole run."""
import resource
import sys
import time
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Tuple

import srsly
from spacy.language import Language
from spacy.util import registry

STATE_FILE = "training_state.json"


@registry.loggers("spacy-biobert.TrainingLogger.v1")
def create_training_logger(
    progress_bar: bool = True,
    console_output: bool = True,
    output_file: Optional[str] = None,
    progress_every: int = 50,
    step_offset: int = 0,
    seconds_offset: float = 0.0,
) -> Callable[[Language, IO, IO], Tuple[Callable[[Optional[Dict[str, Any]]], None], Callable[[], None]]]:
    console = registry.loggers.get("spacy.ConsoleLogger.v3")(
        progress_bar="eval" if progress_bar else None,
        console_output=console_output,
        output_file=output_file,
    )

    def setup(nlp: Language, stdout: IO = None, stderr: IO = None):
        log_console, finalize_console = console(nlp, stdout, stderr)
        err = stderr if stderr is not None else sys.stderr
        plain_progress = progress_bar and progress_every > 0 and not _is_tty(err)
        started = time.time()
        step = 0

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            # spaCy calls this once per step, with info only at evaluations.
            nonlocal step
            # The table's step column counts from the start of the whole run too.
            log_console(dict(info, step=info["step"] + step_offset) if info and step_offset else info)
            step = info["step"] if info is not None else step + 1
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
            state = {
                "step": info["step"] + step_offset,
                "epoch": info["epoch"],
                "score": info["score"],
                "other_scores": info.get("other_scores", {}),
                "seconds": round(time.time() - started + seconds_offset, 1),
                "peak_rss_mb": _peak_rss_mb(),
            }
            srsly.write_json(Path(info["output_path"]).parent / STATE_FILE, state)

        return log_step, finalize_console

    return setup


def _is_tty(stream: IO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
