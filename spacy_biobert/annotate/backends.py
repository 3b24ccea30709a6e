"""Where `annotate` runs the windows: one small interface, two backends.

A backend takes the input items and the number already done (a resumed run),
annotates the rest window by window (`window.windows`, `window.annotate_window`)
and hands each window's results, in input order, to `write(n_items, results)`
(`Checkpoint.write`). Output, order, rejects and resume are therefore the
runner's and the checkpoint's business, the same for every backend.

- `LocalBackend`: `nlp.pipe` in this process.
- `RayBackend` (`ray_backend.py`): Ray actors, each loading the pipeline once.
"""

from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, List, Optional, Protocol

from ..pipeline.relations import resolve_threshold
from .inputs import Item
from .options import AnnotateOptions
from .window import Result, annotate_window, load_annotation_pipeline, windows

WriteWindow = Callable[[int, List[Result]], None]


class Backend(Protocol):
    def run(
        self,
        items: Iterable[Item],
        done: int,
        write: WriteWindow,
        on_doc: Optional[Callable[[], None]] = None,
    ) -> None:
        """Annotate `items` from input item `done` on; call
        `write(n_items, results)` once per window, in input order, and
        `on_doc()` once per annotated document."""


class LocalBackend:
    """`nlp.pipe` in this process (on the GPU when spaCy was told to use one)."""

    def __init__(self, nlp: Any, options: AnnotateOptions) -> None:
        self.nlp = load_annotation_pipeline(nlp, options.quantize, options.precision)
        self.options = options
        self.threshold = resolve_threshold(self.nlp, options.threshold)

    def run(
        self,
        items: Iterable[Item],
        done: int,
        write: WriteWindow,
        on_doc: Optional[Callable[[], None]] = None,
    ) -> None:
        opts = self.options
        for chunk in windows(islice(items, done, None), opts.window):
            results = annotate_window(
                self.nlp,
                chunk,
                output_format=opts.output_format or "jsonl",
                threshold=self.threshold,
                batch_size=opts.batch_size,
                # The checkpoint drops the BioC JSON separator of the output's first document.
                first=False,
                on_doc=on_doc,
            )
            write(len(chunk), results)


def make_backend(nlp: Any, options: AnnotateOptions, work_dir: Path) -> Backend:
    """The backend `options.backend` names; `work_dir`: a folder the Ray
    backend may use for its shards (every worker must reach it)."""
    if options.backend == "ray":
        from .ray_backend import RayBackend

        return RayBackend(nlp, options, work_dir)
    return LocalBackend(nlp, options)


__all__ = ["Backend", "LocalBackend", "WriteWindow", "make_backend"]
