"""`annotate` at scale: int8 quantization, the Ray backend, the bench script."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy

from spacy_biobert.annotate import AnnotateOptions, OutputPaths, Record, Reject, annotate, iter_input
from spacy_biobert.annotate.quantize import iter_transformers, pick_engine, quantize_pipeline
from spacy_biobert.annotate.ray_backend import BatchAnnotator, RayBackend, Workers, batch_payload
from spacy_biobert.annotate.window import Annotated

PATTERNS = [
    {"label": "Chemical", "pattern": [{"LOWER": "cocaine"}]},
    {"label": "Disease", "pattern": [{"LOWER": "hypertension"}]},
]
WORDS = "cocaine induced hypertension in rats lithium was given to patients with acute pain".split()
ROOT = Path(__file__).resolve().parents[1]


def texts(n: int):
    return [
        f"Doc{i} " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + (i * 7) % 23)) + "."
        for i in range(n)
    ]


def write_input(path: Path, n: int = 40) -> Path:
    lines = texts(n)
    lines[3] = ""
    lines[20] = "x" * 500  # over max_chars=400
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    return path


def tiny_pipeline(tiny_bert):
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    ruler = nlp.add_pipe("entity_ruler")
    nlp.initialize()
    ruler.add_patterns(PATTERNS)
    return nlp


@pytest.fixture(scope="module")
def biobert_ruler_model(tiny_bert, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("biobert-ruler") / "model"
    tiny_pipeline(tiny_bert).to_disk(path)
    return str(path)


def _trf_output(nlp, text):
    return numpy.asarray(nlp(text)._.trf_data.model_output.last_hidden_state).reshape(-1)


# --- int8 ----------------------------------------------------------------------


def test_quantize_pipeline_replaces_the_linear_layers(tiny_bert):
    import torch

    nlp = tiny_pipeline(tiny_bert)
    text = "Cocaine induced hypertension in rats. " * 5
    before = _trf_output(nlp, text)
    names = quantize_pipeline(nlp, "int8", keep_fp32=["encoder.layer.1.*"])
    ((comp, hf),) = list(iter_transformers(nlp))
    modules = dict(hf.named_modules())
    assert comp == "biobert" and "biobert:encoder.layer.0.attention.self.query" in names
    assert type(modules["encoder.layer.1.output.dense"]) is torch.nn.Linear
    assert not any(n.startswith("biobert:encoder.layer.1.") for n in names)
    dense0 = modules["encoder.layer.0.output.dense"]
    assert type(dense0) is not torch.nn.Linear and "quantized" in type(dense0).__module__
    after = _trf_output(nlp, text)
    assert after.shape == before.shape and not numpy.array_equal(after, before)
    assert numpy.corrcoef(before, after)[0, 1] > 0.95
    assert [e.text for e in nlp(text).ents][:2] == ["Cocaine", "hypertension"]
    assert torch.backends.quantized.engine == pick_engine()


def test_int8_engine_follows_the_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_int8": True}, raising=False)
    assert pick_engine() == ("onednn" if "onednn" in torch.backends.quantized.supported_engines else "x86")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"amx_int8": False, "avx512_vnni": True})
    assert pick_engine() == "x86"


def test_quantize_errors():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler")
    with pytest.raises(ValueError, match=r"E308.*entity_ruler"):
        quantize_pipeline(nlp, "int8")
    with pytest.raises(ValueError, match=r"E304.*'int4'.*int8"):
        quantize_pipeline(nlp, "int4")


def test_annotate_int8_and_resume_checks_it(tmp_path, biobert_ruler_model):
    src = write_input(tmp_path / "in.txt")
    out = tmp_path / "out.jsonl"
    stats = annotate(biobert_ruler_model, src, out, max_chars=400, window=7, quantize="int8")
    assert stats.documents == 38 and stats.rejected == 2 and stats.entities > 30
    with pytest.raises(ValueError, match="E304"):
        annotate(biobert_ruler_model, src, tmp_path / "x.jsonl", quantize="int4")
    with pytest.raises(ValueError, match="E304.*backend"):
        annotate(biobert_ruler_model, src, tmp_path / "x.jsonl", backend="spark")

    # A run killed after a checkpoint resumes only with the same quantization.
    class Stop(Exception):
        pass

    def stop(stats):
        raise Stop

    with pytest.raises(Stop):
        annotate(biobert_ruler_model, src, tmp_path / "y.jsonl", max_chars=400, window=7, on_window=stop)
    with pytest.raises(ValueError, match=r"E303.*quantize"):
        annotate(biobert_ruler_model, src, tmp_path / "y.jsonl", max_chars=400, window=7,
                 quantize="int8", resume=True)


# --- the Ray backend's pieces, without Ray ---------------------------------------


class InProcessRay(RayBackend):
    """The Ray backend with its actors replaced by `BatchAnnotator`s in this
    process, whose batches finish in the reverse order of submission."""

    def available_workers(self):
        return 3

    def start_workers(self, model, count):
        actors = [BatchAnnotator(model, self.options.quantize, self.options.output_format,
                                 self.options.threshold, 1) for _ in range(count)]
        self.started = count
        self.max_pending = 0

        def submit(worker, batch):
            handle = object()
            outputs[handle] = actors[worker].annotate(batch)
            return handle

        def wait(handles):
            self.max_pending = max(self.max_pending, len(handles))
            handle = handles[-1]
            return handle, outputs.pop(handle)

        outputs = {}
        return Workers(count, actors[0].max_length(), submit, wait, lambda: None)


def test_ray_backend_logic_without_ray(tmp_path, biobert_ruler_model):
    """Batches spread over the workers and finishing out of order: every window
    written whole, in input order, equal to the local backend's."""
    src = write_input(tmp_path / "in.txt")
    options = dict(max_chars=400, window=7, batch_size=3)
    local = tmp_path / "local.json"  # BioC JSON: the separator between windows must be right
    annotate(biobert_ruler_model, src, local, **options)
    opts = AnnotateOptions(**options).resolved(src, local)
    written = []
    backend = InProcessRay(biobert_ruler_model, opts, tmp_path / "work")
    items = iter_input(src, opts.input_format, max_chars=400)
    backend.run(items, 0, lambda n, results: written.append((n, results)))
    assert backend.started == 3 and backend.max_pending == 6  # two batches a worker
    assert [n for n, _ in written] == [7] * 5 + [5]
    indices = [r.index for _, results in written for r in results]
    assert indices == list(range(40))
    rejects = [r for _, results in written for r in results if isinstance(r, Reject)]
    assert [(r.index, r.kind) for r in rejects] == [(3, "empty"), (20, "too-long")]
    # The same chunks as the local run (the first document's separator is the writer's to drop).
    chunks = "".join(r.chunk for _, results in written for r in results if isinstance(r, Annotated))
    docs = json.loads(local.read_text())["documents"]
    assert json.loads("[" + chunks[2:] + "]") == docs

    # From a checkpoint (input item 14): the remaining windows; a tiny input starts one worker.
    written.clear()
    backend.run(iter_input(src, opts.input_format, max_chars=400), 14, lambda n, r: written.append((n, r)))
    assert [n for n, _ in written] == [7, 7, 7, 5] and written[0][1][0].index == 14
    (tmp_path / "two.txt").write_text("cocaine\nhypertension\n")
    backend.run(iter_input(tmp_path / "two.txt", "text"), 0, lambda n, r: written.append((n, r)))
    assert backend.started == 1


def test_batch_annotator_sends_plain_data(biobert_ruler_model):
    worker = BatchAnnotator(biobert_ruler_model, None, "jsonl", 0.5, 1)
    assert worker.max_length() == 1_000_000
    records = [Record(i, str(i), t, [("text", 0, t)]) for i, t in enumerate(texts(3))]
    out = worker.annotate(batch_payload(records))
    assert [o[:3] for o in out] == [("doc", 0, "0"), ("doc", 1, "1"), ("doc", 2, "2")]
    assert all(type(v) in (str, int) for o in out for v in o)


# --- the Ray backend on a local Ray instance -------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install '.[ray]')")
    pytest.importorskip("ray.data")
    if not ray.is_initialized():
        # Ray gives its raylet a fixed 30 s to register; on a loaded 2-core
        # machine that can run out, so try again before failing.
        for attempt in range(3):
            try:
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                break
            except Exception as err:  # noqa: BLE001 (ray raises a bare Exception)
                ray.shutdown()
                if attempt == 2 or "timed out during startup" not in str(err):
                    raise
    ctx = ray.get_runtime_context()
    yield ctx.gcs_address
    ray.shutdown()


@pytest.mark.slow
def test_ray_backend_gives_the_local_bytes_and_resumes(tmp_path, biobert_ruler_model, ray_cluster):
    src = write_input(tmp_path / "in.txt")
    local = tmp_path / "local.json"  # BioC JSON: the separator between windows must be right
    annotate(biobert_ruler_model, src, local, max_chars=400, window=7, batch_size=3)

    out = tmp_path / "ray.json"
    paths = OutputPaths.for_output(out)
    seen = []

    class Stop(Exception):
        pass

    def stop_after_two(stats):
        seen.append(stats.processed)
        if len(seen) == 2:
            raise Stop

    with pytest.raises(Stop):
        annotate(biobert_ruler_model, src, out, max_chars=400, window=7, batch_size=3,
                 backend="ray", ray_workers=2, on_window=stop_after_two)
    assert seen == [7, 14] and paths.partial.exists() and paths.progress.exists()
    assert not out.exists()
    stats = annotate(biobert_ruler_model, src, out, max_chars=400, window=7, batch_size=3,
                     backend="ray", ray_workers=2, resume=True)
    assert stats.resumed_from == 14 and stats.documents == 38 and stats.rejected == 2
    assert out.read_bytes() == local.read_bytes()
    assert paths.rejects.read_bytes() == OutputPaths.for_output(local).rejects.read_bytes()
    assert not paths.shards.exists() and not paths.progress.exists()
    docs = json.loads(out.read_text())["documents"]
    assert [d["id"] for d in docs] == [str(i + 1) for i in range(40) if i not in (3, 20)]


@pytest.mark.slow
def test_ray_cli_joins_the_cluster_of_ray_address(tmp_path, biobert_ruler_model, ray_cluster):
    src = write_input(tmp_path / "in.txt")
    local = tmp_path / "local.jsonl"
    annotate(biobert_ruler_model, src, local, max_chars=400, window=7, quantize="int8")
    out = tmp_path / "ray.jsonl"
    env = dict(os.environ, RAY_ADDRESS=ray_cluster, OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-m", "spacy_biobert", "annotate", biobert_ruler_model, src, out,
         "--max-chars", "400", "--window", "7", "--backend", "ray", "--quantize", "int8"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert "documents/s" in res.stdout
    assert out.read_bytes() == local.read_bytes()


# --- bench/ --------------------------------------------------------------------


def test_bench_script_writes_its_json(tmp_path, biobert_ruler_model, corpora_dir):
    out = tmp_path / "bench.json"
    res = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "throughput.py"), biobert_ruler_model,
         corpora_dir / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt", "--limit", "6",
         "--repeats", "1", "--output", out, "--biobert-docs", "0"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["documents"] == 6 and result["words"] > 100
    for key in ("pipeline", "encoder", "pipeline_int8", "pipeline_bf16"):
        assert result["words_per_second"][key] > 0
    assert set(result["ratios"]) == {"pipeline_vs_encoder", "int8_vs_fp32", "bf16_vs_fp32"}
    assert "f" in result["f1"]["fp32"] and "f" in result["f1"]["int8"] and "f" in result["f1"]["bf16"]
    assert "pipeline/encoder" in res.stdout
