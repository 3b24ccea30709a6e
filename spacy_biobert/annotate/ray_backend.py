"""`annotate --backend ray`: the same per-window step (`annotate_window`) on
Ray Data, with the local backend's guarantees.

1. Split: the driver streams the input (flat memory) into shard files
   `OUTPUT.shards/in-NNNNNN.jsonl`, one per window of the local backend
   (`runner.windows`: `window` input items, fewer when their texts reach
   `WINDOW_CHARS`; documents and rejects, with their input positions), each
   written to a temporary name and renamed, and `split.json` when all are
   written.
2. Annotate: a Ray Dataset of the pending shards' names goes through
   `map_batches` with `_ShardAnnotator`, a callable class run by a pool of
   actors; each actor loads the pipeline once (quantized if asked), and for
   each shard reads it, runs `annotate_window` and writes
   `out-NNNNNN.jsonl` (temporary name, fsync, rename). A shard whose output
   already exists (an interrupted run) is not annotated again.
3. Merge: the driver consumes the results in shard order
   (`preserve_order`) and appends each shard's chunks and rejects to
   `OUTPUT.partial` / `OUTPUT.rejects.jsonl.partial`, checkpointing after each
   shard exactly as the local backend does after each window; so the output
   is byte-identical to a local run's, and `--resume` works across backends.

The shard folder must be readable and writable by every worker: on a cluster,
put OUTPUT on a filesystem all nodes mount. It is removed at the end.
"""

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from ..errors import Errors
from .inputs import Item, Record, Reject

SPLIT_VERSION = 2


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


def _result_to_json(res: Any) -> Dict[str, Any]:
    if isinstance(res, Reject):
        return {"reject": res.as_dict()}
    return {
        "index": res.index,
        "id": res.id,
        "chunk": res.chunk,
        "entities": res.entities,
        "relations": res.relations,
    }


def _result_from_json(obj: Dict[str, Any]) -> Any:
    from .runner import Annotated

    if "reject" in obj:
        r = obj["reject"]
        return Reject(r["index"], r["id"], r["reason"], r["kind"])
    return Annotated(obj["index"], obj["id"], obj["chunk"], obj["entities"], obj["relations"])


def _write_atomic(path: Path, lines: Iterable[Dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf8") as fp:
        for obj in lines:
            fp.write(json.dumps(obj, ensure_ascii=False) + "\n")
        fp.flush()
        os.fsync(fp.fileno())
    os.replace(tmp, path)


def _read_jsonl(path: Path) -> List[Dict[str, Any]]:
    with open(path, encoding="utf8") as fp:
        return [json.loads(line) for line in fp if line.strip()]


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
    """Write the input's windows (`runner.windows`) from input item `done` on
    as shard files (reusing a completed split of an interrupted run); returns
    the number of the first shard written and the item count of every shard
    from it on."""
    from .runner import WINDOW_CHARS, windows

    manifest = folder / "split.json"
    if manifest.exists():
        with open(manifest, encoding="utf8") as fp:
            state = json.load(fp)
        if (state.get("version"), state.get("window"), state.get("window_chars")) == (
            SPLIT_VERSION, window, WINDOW_CHARS
        ):
            counts = list(state["counts"])
            first = _first_shard(counts, done, folder)
            return first, counts[first:]
    folder.mkdir(parents=True, exist_ok=True)
    counts: List[int] = []
    start = 0
    for k, chunk in enumerate(windows(items, window)):
        if start >= done:
            _write_atomic(shard_paths(folder, k)[0], (_item_to_json(x) for x in chunk))
        counts.append(len(chunk))
        start += len(chunk)
    tmp = folder / "split.json.tmp"
    with open(tmp, "w", encoding="utf8") as fp:
        json.dump(
            {"version": SPLIT_VERSION, "window": window, "window_chars": WINDOW_CHARS, "counts": counts}, fp
        )
        fp.flush()
        os.fsync(fp.fileno())
    os.replace(tmp, manifest)
    first = _first_shard(counts, done, folder)
    return first, counts[first:]


class _ShardAnnotator:
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
        import spacy

        try:
            import torch

            torch.set_num_threads(torch_threads)
        except ImportError:  # a pipeline without torch
            pass
        from .runner import _load

        self.nlp = _load(spacy.load(model), quantize)
        self.output_format = output_format
        self.threshold = threshold
        self.batch_size = batch_size

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        from .runner import annotate_window

        for in_path, out_path in zip(batch["input"], batch["output"]):
            out = Path(out_path)
            if out.exists():
                continue
            items = [_item_from_json(obj) for obj in _read_jsonl(Path(in_path))]
            results = annotate_window(
                self.nlp,
                items,
                output_format=self.output_format,
                threshold=self.threshold,
                batch_size=self.batch_size,
                # Not known here: the driver drops the separator of the output's first document.
                first=False,
            )
            _write_atomic(out, (_result_to_json(r) for r in results))
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


def annotate_on_ray(
    nlp: Any,
    items: Iterable[Item],
    paths: Any,
    write: Callable[[int, List[Union[Any, Reject]]], None],
    *,
    done: int,
    window: int,
    output_format: str,
    threshold: float,
    batch_size: int,
    quantize: Optional[str] = None,
    address: Optional[str] = None,
    workers: Optional[int] = None,
    cpus_per_worker: int = 1,
    on_doc: Optional[Callable[[], None]] = None,
) -> None:
    """Annotate the input's windows from item `done` on with Ray Data and hand
    each window's results, in order, to `write(n_items, results)` (the
    runner's checkpointing writer)."""
    folder = paths.shards
    folder.mkdir(parents=True, exist_ok=True)
    model = _model_location(nlp, folder)
    ray = _init_ray(address)
    first_shard, counts = split_input(items, folder, window, done)
    if not counts:
        return
    shards = list(range(first_shard, first_shard + len(counts)))
    n_items = dict(zip(shards, counts))
    rows = []
    for k in shards:
        in_path, out_path = shard_paths(folder, k)
        rows.append({"shard": k, "input": str(in_path.resolve()), "output": str(out_path.resolve())})
    if workers is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = max(1, cpus // cpus_per_worker)
    workers = min(workers, len(rows))
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        _ShardAnnotator,
        fn_constructor_kwargs={
            "model": model,
            "quantize": quantize,
            "output_format": output_format,
            "threshold": threshold,
            "batch_size": batch_size,
            "torch_threads": cpus_per_worker,
        },
        batch_size=1,
        concurrency=workers,
        num_cpus=cpus_per_worker,
    )
    for row in ds.iter_rows():
        k = int(row["shard"])
        in_path, out_path = shard_paths(folder, k)
        results = [_result_from_json(obj) for obj in _read_jsonl(out_path)]
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


__all__ = ["annotate_on_ray", "split_input", "shard_paths"]
