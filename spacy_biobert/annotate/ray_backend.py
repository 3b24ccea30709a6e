"""`annotate --backend ray`: the same per-window step (`annotate_window`) on
Ray Data, with the local backend's guarantees.

1. Split: the driver streams the input (flat memory) into shard files
   `OUTPUT.shards/in-NNNNNN.jsonl`, one per window of the local backend
   (`window.windows`: `window` input items, fewer when their texts reach
   `WINDOW_CHARS`; documents and rejects, with their input positions), each
   written to a temporary name and renamed, and `split.json` when all are
   written.
2. Annotate: a Ray Dataset of the pending shards' names goes through
   `map_batches` with `ShardAnnotator`, a callable class run by a pool of
   actors; each actor loads the pipeline once (quantized if asked), and for
   each shard reads it, runs `annotate_window` and writes
   `out-NNNNNN.jsonl` (temporary name, fsync, rename). A shard whose output
   already exists (an interrupted run) is not annotated again.
3. Merge: the driver consumes the results in shard order
   (`preserve_order`) and hands each shard's results to the runner's writer
   (`Checkpoint.write`), which checkpoints after each shard exactly as after
   each window of the local backend; so the output is byte-identical to a
   local run's, and `--resume` works across backends.

The shard folder must be readable and writable by every worker: on a cluster,
put OUTPUT on a filesystem all nodes mount. It is removed at the end.
"""

import json
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..errors import Errors
from .checkpoint import read_jsonl, write_json_atomic, write_jsonl_atomic
from .inputs import Item, Record, Reject
from .options import AnnotateOptions
from .window import Annotated, Result, annotate_window, load_annotation_pipeline, windows

SPLIT_VERSION = 2
WriteWindow = Callable[[int, List[Result]], None]


def _item_to_json(item: Item) -> Dict[str, Any]:
    if isinstance(item, Reject):
        return {"reject": item.as_dict()}
    return {"index": item.index, "id": item.id, "text": item.text, "passages": item.passages}


def _item_from_json(obj: Dict[str, Any]) -> Item:
    if "reject" in obj:
        r = obj["reject"]
        return Reject(r["index"], r["id"], r["reason"], r["kind"])
    passages = [(t, o, x) for t, o, x in obj["passages"]]
    return Record(obj["index"], obj["id"], obj["text"], passages)


def _result_to_json(res: Result) -> Dict[str, Any]:
    if isinstance(res, Reject):
        return {"reject": res.as_dict()}
    return {
        "index": res.index,
        "id": res.id,
        "chunk": res.chunk,
        "entities": res.entities,
        "relations": res.relations,
    }


def _result_from_json(obj: Dict[str, Any]) -> Result:
    if "reject" in obj:
        r = obj["reject"]
        return Reject(r["index"], r["id"], r["reason"], r["kind"])
    return Annotated(obj["index"], obj["id"], obj["chunk"], obj["entities"], obj["relations"])


def shard_paths(folder: Path, k: int) -> Tuple[Path, Path]:
    return folder / f"in-{k:06d}.jsonl", folder / f"out-{k:06d}.jsonl"


def _first_shard(counts: List[int], done: int, folder: Path) -> int:
    """The shard that starts at input item `done`."""
    start = 0
    for k, count in enumerate(counts + [0]):
        if start == done:
            return k
        start += count
    raise ValueError(
        Errors.E312.format(partial=folder, problem=f"no shard of the Ray work folder starts at item {done}")
    )


def split_input(items: Iterable[Item], folder: Path, window: int, done: int = 0) -> Tuple[int, List[int]]:
    """Write the input's windows (`window.windows`) from input item `done` on
    as shard files (reusing a completed split of an interrupted run); returns
    the number of the first shard written and the item count of every shard
    from it on."""
    from . import window as window_module  # WINDOW_CHARS read now (tests patch it)

    window_chars = window_module.WINDOW_CHARS
    manifest = folder / "split.json"
    if manifest.exists():
        with open(manifest, encoding="utf8") as fp:
            state = json.load(fp)
        if (state.get("version"), state.get("window"), state.get("window_chars")) == (
            SPLIT_VERSION, window, window_chars
        ):
            counts = list(state["counts"])
            first = _first_shard(counts, done, folder)
            return first, counts[first:]
    folder.mkdir(parents=True, exist_ok=True)
    counts = []
    start = 0
    for k, chunk in enumerate(windows(items, window, window_chars)):
        if start >= done:
            write_jsonl_atomic(shard_paths(folder, k)[0], (_item_to_json(x) for x in chunk))
        counts.append(len(chunk))
        start += len(chunk)
    write_json_atomic(
        manifest,
        {"version": SPLIT_VERSION, "window": window, "window_chars": window_chars, "counts": counts},
    )
    first = _first_shard(counts, done, folder)
    return first, counts[first:]


class ShardAnnotator:
    """Ray Data callable class: one per actor, loading the pipeline once."""

    def __init__(
        self,
        model: str,
        quantize: Optional[str],
        output_format: str,
        threshold: float,
        batch_size: int,
        torch_threads: int,
    ) -> None:
        try:
            import torch

            torch.set_num_threads(torch_threads)
        except ImportError:  # a pipeline without torch
            pass
        self.nlp = load_annotation_pipeline(model, quantize)
        self.output_format = output_format
        self.threshold = threshold
        self.batch_size = batch_size

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        for in_path, out_path in zip(batch["input"], batch["output"]):
            out = Path(out_path)
            if out.exists():
                continue
            items = [_item_from_json(obj) for obj in read_jsonl(in_path)]
            results = annotate_window(
                self.nlp,
                items,
                output_format=self.output_format,
                threshold=self.threshold,
                batch_size=self.batch_size,
                # Not known here: the checkpoint drops the separator of the output's first document.
                first=False,
            )
            write_jsonl_atomic(out, (_result_to_json(r) for r in results))
        return {"shard": batch["shard"], "output": batch["output"]}


def _model_location(nlp: Any, folder: Path) -> str:
    """A name or folder the workers can `spacy.load`."""
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


def _init_ray(address: Optional[str]) -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ImportError(Errors.E309.format(err=err)) from None
    if not ray.is_initialized():
        # address None: $RAY_ADDRESS if set, else a new local instance.
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return ray


class RayBackend:
    """The windows as shards, annotated by a pool of Ray actors (see the
    module docs); `work_dir` holds the shards and must be reachable by every
    worker."""

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
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        model = _model_location(self.nlp, folder)
        ray = _init_ray(opts.ray_address)
        first_shard, counts = split_input(items, folder, opts.window, done)
        if not counts:
            return
        shards = list(range(first_shard, first_shard + len(counts)))
        n_items = dict(zip(shards, counts))
        rows = []
        for k in shards:
            in_path, out_path = shard_paths(folder, k)
            rows.append({"shard": k, "input": str(in_path.resolve()), "output": str(out_path.resolve())})
        workers = opts.ray_workers
        cpus_per_worker = opts.ray_cpus_per_worker
        if workers is None:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            workers = max(1, cpus // cpus_per_worker)
        workers = min(workers, len(rows))
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            ShardAnnotator,
            fn_constructor_kwargs={
                "model": model,
                "quantize": opts.quantize,
                "output_format": opts.output_format,
                "threshold": opts.threshold,
                "batch_size": opts.batch_size,
                "torch_threads": cpus_per_worker,
            },
            batch_size=1,
            concurrency=workers,
            num_cpus=cpus_per_worker,
        )
        for row in ds.iter_rows():
            k = int(row["shard"])
            in_path, out_path = shard_paths(folder, k)
            results = [_result_from_json(obj) for obj in read_jsonl(out_path)]
            if len(results) != n_items[k]:
                raise RuntimeError(
                    Errors.E311.format(
                        shard=k, path=out_path, err=f"{len(results)} results for {n_items[k]} items"
                    )
                )
            if on_doc is not None:
                for res in results:
                    if not isinstance(res, Reject):
                        on_doc()
            write(n_items[k], results)
            in_path.unlink()
            out_path.unlink()


__all__ = ["RayBackend", "ShardAnnotator", "split_input", "shard_paths"]
