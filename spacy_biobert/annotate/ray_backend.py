"""`annotate --backend ray`: the local backend's windows, their batches run
by a pool of Ray actors, with the local backend's guarantees.

1. The driver streams the input (flat memory) and cuts it into the local
   backend's windows (`window.windows`) and each window into the same
   `nlp.pipe` batches (`window.plan_window`: sorted by length, at most
   `--batch-size` documents and `BATCH_CHARS` characters).
2. Each batch goes to the least busy of `--ray-workers` actors
   (`BatchAnnotator`, `--ray-cpus-per-worker` CPUs and as many torch threads
   each), which loads the pipeline once (quantized if asked). Only plain data
   crosses the object store: (index, id, text, passages) tuples in, output
   chunks (text) and counts out; never Docs or tensors. Every actor holds two
   batches (one running, one queued), so none waits for the driver, and a
   window's batches are spread over all actors. The driver reads ahead at most
   `workers + 1` windows (bounded memory), so reading and writing overlap
   with the actors' work.
3. The driver puts each window's results back in input order and hands them to
   the runner's writer (`Checkpoint.write`) in window order: the checkpoint is
   written after each window exactly as with the local backend. The output is
   byte-identical to a local run's (the same batches through the same
   pipeline), and `--resume` works across backends. A killed run loses at most
   the windows in flight.

Nothing is written by the workers: on a cluster only the pipeline must be
reachable from every node (an installed package, or a folder at the same
path; a Language object passed to `annotate()` is saved to `OUTPUT.shards/`
for the workers, which must then be on a shared filesystem).
"""

import os
from collections import deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Hashable, Iterable, Iterator, List, Optional, Tuple

from ..errors import Errors
from .inputs import Item, Record, Reject
from .options import AnnotateOptions
from .window import Annotated, Result, WindowPlan, plan_window, window_results, windows

WriteWindow = Callable[[int, List[Result]], None]
# Batches each actor holds at once: one running, one queued behind it.
TASKS_PER_WORKER = 2
# Ray's local instance (started when no cluster is given): no dashboard (its
# processes take CPU time from the workers), and workers at the driver's
# priority. Ray starts workers at nice 15; on a machine shared with other work
# they then get a fraction of a core each (bench/ray_scale.py, docs/annotate.md).
LOCAL_RAY_INIT: Dict[str, Any] = {
    "include_dashboard": False,
    "_system_config": {"worker_niceness": 0},
}

BatchIn = List[Tuple[int, str, str, List[Tuple[str, int, str]]]]
BatchOut = List[Tuple[Any, ...]]


def batch_payload(records: List[Record]) -> BatchIn:
    """A batch as the plain tuples an actor receives."""
    return [(r.index, r.id, r.text, list(r.passages)) for r in records]


def result_to_tuple(res: Result) -> Tuple[Any, ...]:
    if isinstance(res, Reject):
        return ("reject", res.index, res.id, res.reason, res.kind)
    return ("doc", res.index, res.id, res.chunk, res.entities, res.relations)


def result_from_tuple(obj: Tuple[Any, ...]) -> Result:
    if obj[0] == "reject":
        return Reject(obj[1], obj[2], obj[3], obj[4])
    return Annotated(obj[1], obj[2], obj[3], obj[4], obj[5])


class BatchAnnotator:
    """One worker: loads the pipeline once, then annotates batches
    (`window.annotate_batch`). A plain class; the Ray backend runs it as an
    actor (`ray.remote(BatchAnnotator)`)."""

    def __init__(
        self,
        model: str,
        quantize: Optional[str],
        output_format: str,
        threshold: Optional[float],
        torch_threads: int,
        precision: Optional[str] = None,
    ) -> None:
        # Before torch is imported: its OpenMP and MKL pools take these sizes.
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(torch_threads)
        try:
            import torch

            torch.set_num_threads(torch_threads)
        except ImportError:  # a pipeline without torch
            pass
        from ..pipeline.relations import resolve_threshold
        from .window import load_annotation_pipeline

        self.nlp = load_annotation_pipeline(model, quantize, precision)
        self.output_format = output_format
        self.threshold = resolve_threshold(self.nlp, threshold)  # None: the pipeline's own

    def max_length(self) -> Optional[int]:
        value = getattr(self.nlp, "max_length", None)
        return value if isinstance(value, int) else None

    def annotate(self, batch: BatchIn) -> BatchOut:
        from .window import annotate_batch

        records = [
            Record(i, doc_id, text, [(t, o, x) for t, o, x in passages])
            for i, doc_id, text, passages in batch
        ]
        results = annotate_batch(
            self.nlp, records, output_format=self.output_format, threshold=self.threshold
        )
        return [result_to_tuple(r) for r in results]


@dataclass
class _Window:
    plan: WindowPlan
    remaining: int


def run_ordered(
    plans: Iterator[WindowPlan],
    workers: int,
    submit: Callable[[int, BatchIn], Hashable],
    wait: Callable[[List[Hashable]], Tuple[Hashable, BatchOut]],
    write: Callable[[WindowPlan], None],
    *,
    max_windows: int,
    on_doc: Optional[Callable[[], None]] = None,
) -> None:
    """Run every batch of `plans` on `workers` workers and `write` each
    window, in order, once all its batches are back. `submit(worker,
    batch)` starts a batch and returns a handle; `wait(handles)` returns one
    finished handle and its results. At most `TASKS_PER_WORKER` batches per
    worker and `max_windows` windows are in flight."""
    in_flight: Deque[_Window] = deque()
    queued: Deque[Tuple[_Window, List[int]]] = deque()
    pending: Dict[Hashable, Tuple[_Window, List[int], int]] = {}
    load = [0] * workers
    exhausted = False

    def flush() -> None:
        while in_flight and in_flight[0].remaining == 0:
            write(in_flight.popleft().plan)

    while True:
        while len(pending) < workers * TASKS_PER_WORKER:
            if not queued:
                if exhausted or len(in_flight) >= max_windows:
                    break
                plan = next(plans, None)
                if plan is None:
                    exhausted = True
                    break
                win = _Window(plan, len(plan.batches))
                in_flight.append(win)
                queued.extend((win, batch) for batch in plan.batches)
                flush()  # a window of rejects only
                continue
            win, batch = queued.popleft()
            worker = min(range(workers), key=load.__getitem__)
            records = [win.plan.items[pos] for pos in batch]
            handle = submit(worker, batch_payload(records))  # type: ignore[arg-type]
            pending[handle] = (win, batch, worker)
            load[worker] += 1
        if not pending:
            break
        handle, out = wait(list(pending))
        win, batch, worker = pending.pop(handle)
        load[worker] -= 1
        if len(out) != len(batch):
            first, last = win.plan.items[batch[0]].index, win.plan.items[batch[-1]].index
            raise RuntimeError(
                Errors.E311.format(what=f"a batch of input items {first}-{last}",
                                   err=f"{len(out)} results for {len(batch)} documents")
            )
        for pos, obj in zip(batch, out):
            res = result_from_tuple(obj)
            win.plan.results[pos] = res
            if on_doc is not None and isinstance(res, Annotated):
                on_doc()
        win.remaining -= 1
        flush()
    flush()


def _model_location(nlp: Any, folder: Path) -> str:
    """A name or folder the workers can load."""
    import spacy

    if isinstance(nlp, (str, Path)):
        name = str(nlp)
        if Path(name).is_dir():
            return str(Path(name).resolve())
        if spacy.util.is_package(name):
            return name
        raise FileNotFoundError(Errors.E310.format(model=name))
    path = folder / "model"
    if not (path / "config.cfg").exists():
        nlp.to_disk(path)
    return str(path.resolve())


def init_ray(address: Optional[str]) -> Any:
    """`ray`, connected: to `address`, else to $RAY_ADDRESS, else to a new
    local instance (started with `LOCAL_RAY_INIT`)."""
    try:
        import ray
    except ImportError as err:
        raise ImportError(Errors.E309.format(err=err)) from None
    if not ray.is_initialized():
        local = (address is None and not os.environ.get("RAY_ADDRESS")) or address == "local"
        ray.init(address=address, log_to_driver=False, **(LOCAL_RAY_INIT if local else {}))
    return ray


@dataclass
class Workers:
    """A started pool: `count` workers, the pipeline's `max_length`,
    `submit(worker, batch) -> handle`, `wait(handles) -> (handle, results)`
    and `close()`."""

    count: int
    max_length: Optional[int]
    submit: Callable[[int, BatchIn], Any]
    wait: Callable[[List[Any]], Tuple[Any, BatchOut]]
    close: Callable[[], None]


class RayBackend:
    """The windows' batches on a pool of Ray actors (see the module docs);
    `work_dir` holds a copy of a Language object's pipeline for the workers."""

    def __init__(self, nlp: Any, options: AnnotateOptions, work_dir: Path) -> None:
        self.nlp = nlp  # a name or folder (the workers load it), or a Language (saved for them)
        self.options = options
        self.folder = Path(work_dir)

    def run(
        self,
        items: Iterable[Item],
        done: int,
        write: WriteWindow,
        on_doc: Optional[Callable[[], None]] = None,
    ) -> None:
        opts = self.options
        model = _model_location(self.nlp, self.folder)
        chunks = windows(islice(items, done, None), opts.window)
        ahead = list(islice(chunks, 1))
        if not ahead:
            return
        workers = opts.ray_workers or self.available_workers()
        # A small input needs fewer workers: read ahead (at most one batch a
        # worker) before starting them.
        n_docs = sum(isinstance(it, Record) for it in ahead[0])
        while n_docs < workers * opts.batch_size:
            chunk = next(chunks, None)
            if chunk is None:
                break
            ahead.append(chunk)
            n_docs += sum(isinstance(it, Record) for it in chunk)
        workers = max(1, min(workers, -(-n_docs // opts.batch_size)))
        pool = self.start_workers(model, workers)
        fmt = opts.output_format or "jsonl"
        try:

            def plans() -> Iterator[WindowPlan]:
                while ahead:
                    yield plan_window(ahead.pop(0), batch_size=opts.batch_size, max_length=pool.max_length)
                for chunk in chunks:
                    yield plan_window(chunk, batch_size=opts.batch_size, max_length=pool.max_length)

            def write_plan(plan: WindowPlan) -> None:
                write(len(plan.items), window_results(plan, output_format=fmt, first=False))

            run_ordered(
                plans(), pool.count, pool.submit, pool.wait, write_plan,
                max_windows=pool.count + 1, on_doc=on_doc,
            )
        finally:
            pool.close()

    def available_workers(self) -> int:
        """The cluster's CPUs divided by `--ray-cpus-per-worker` (connects to Ray)."""
        ray = init_ray(self.options.ray_address)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        return max(1, cpus // self.options.ray_cpus_per_worker)

    def start_workers(self, model: str, count: int) -> Workers:
        """`count` `BatchAnnotator` actors, each loading `model`."""
        opts = self.options
        ray = init_ray(opts.ray_address)
        cpus = opts.ray_cpus_per_worker
        actor_cls = ray.remote(BatchAnnotator).options(num_cpus=cpus, max_restarts=2, max_task_retries=2)
        args = (model, opts.quantize, opts.output_format or "jsonl", opts.threshold, cpus, opts.precision)
        actors = [actor_cls.remote(*args) for _ in range(count)]

        def close() -> None:
            for actor in actors:
                ray.kill(actor)

        try:
            max_length = ray.get(actors[0].max_length.remote())
        except ray.exceptions.RayError as err:
            close()
            what = f"loading the pipeline '{model}'"
            raise RuntimeError(Errors.E311.format(what=what, err=err)) from None

        def submit(worker: int, batch: BatchIn) -> Any:
            return actors[worker].annotate.remote(batch)

        def wait(handles: List[Any]) -> Tuple[Any, BatchOut]:
            (ready,), _ = ray.wait(handles, num_returns=1)
            try:
                return ready, ray.get(ready)
            except ray.exceptions.RayError as err:
                raise RuntimeError(Errors.E311.format(what="a batch", err=err)) from None

        return Workers(count, max_length, submit, wait, close)


__all__ = ["BatchAnnotator", "RayBackend", "Workers", "batch_payload", "init_ray", "run_ordered"]
