"""`annotate()`: a stream of documents through a pipeline, with flat memory,
input order kept, atomic output and resume.

The concerns live in one module each:

- `options.AnnotateOptions`: the settings of a run;
- `window`: the unit of work, a window of input items through `nlp.pipe`
  (`windows`, `annotate_window`);
- `checkpoint`: the partial files, the progress file and resume
  (`Checkpoint`, `OutputPaths`, `AnnotateStats`);
- `backends`: where the windows run, `LocalBackend` or `ray_backend.RayBackend`
  behind one interface (`Backend.run`).

This module joins them: options checked, backend made (the local one loads the
pipeline), checkpoint opened (fresh or resumed), the backend's windows written
through the checkpoint, the checkpoint finished.
"""

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Union

from ..errors import Errors
from .backends import make_backend
from .checkpoint import AnnotateStats, Checkpoint, OutputPaths, input_fingerprint
from .inputs import iter_input
from .options import BACKENDS, AnnotateOptions

# Re-exported: these names were first defined here.
from .window import BATCH_CHARS, WINDOW_CHARS, Annotated, annotate_window, windows  # noqa: F401


def annotate(
    nlp: Any,
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    options: Optional[AnnotateOptions] = None,
    *,
    on_doc: Optional[Callable[[], None]] = None,
    on_window: Optional[Callable[[AnnotateStats], None]] = None,
    **option_values: Any,
) -> AnnotateStats:
    """Annotate every document of `input_path` with `nlp` (a Language or a
    path to load) and write `output_path` (see docs/annotate.md). The settings
    are `options` (an `AnnotateOptions`), with any of its fields given as
    keywords overriding it (`annotate(nlp, src, out, window=500, resume=True)`).
    `on_doc` is called after each document (or reject) is processed,
    `on_window` after each checkpoint. Returns the totals."""
    opts = (options or AnnotateOptions()).replace(**option_values)
    opts = opts.resolved(input_path, output_path)
    paths = OutputPaths.for_output(output_path)
    backend = make_backend(nlp, opts, paths.shards)
    items = iter_input(
        input_path, opts.input_format, max_chars=opts.max_chars, text_docs=opts.text_docs
    )
    checkpoint = Checkpoint.open(
        paths,
        opts.recorded(input_path),
        input_fingerprint(input_path),
        resume=opts.resume,
        overwrite=opts.overwrite,
        on_doc=on_doc,
        on_window=on_window,
    )
    try:
        items = _no_fewer_than(items, checkpoint.done, input_path, paths.progress)
        backend.run(items, checkpoint.done, checkpoint.write, on_doc)
    except BaseException:
        checkpoint.close()
        raise
    return checkpoint.finish()


def _no_fewer_than(items: Iterable[Any], done: int, input_path: Any, progress: Path) -> Iterator[Any]:
    """`items`, raising E314 at their end when there are fewer than the
    `done` a resumed run's progress file records: that progress file is not
    this input's, and the run must not "finish" with part of the output."""
    found = 0
    for item in items:
        found += 1
        yield item
    if found < done:
        raise ValueError(Errors.E314.format(progress=progress, done=done, input=input_path, found=found))


__all__ = [
    "BACKENDS",
    "Annotated",
    "AnnotateOptions",
    "AnnotateStats",
    "OutputPaths",
    "annotate",
    "annotate_window",
]
