"""The GPU config where a GPU is visible: `configs/ner_gpu.cfg` (mixed
precision, spacy-transformers' grad scaler, `--gpu-id`) trains its first
steps on a CUDA device. Marked `gpu`; skips with the reason elsewhere (these
CPU machines and CI have no GPU)."""
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

ROOT = Path(__file__).resolve().parents[1]
PUBTATOR = (Path(__file__).parent / "data" / "tiny.pubtator").read_text(encoding="utf8")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(
    not _cuda_available(), reason="no CUDA device visible (torch.cuda.is_available() is False)"
)
def test_gpu_config_trains_its_first_steps_on_the_gpu(tiny_bert, tmp_path):
    corpora = tmp_path / "corpora" / "bc5cdr"
    corpora.mkdir(parents=True)
    for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt"):
        (corpora / name).write_text(PUBTATOR, encoding="utf8")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "spacy_biobert", "train", str(ROOT / "configs" / "ner_gpu.cfg"),
         "--output", str(out), "--gpu-id", "0",
         "--paths.corpora", str(tmp_path / "corpora"), "--paths.base_model", tiny_bert,
         "--training.max_steps", "4", "--training.eval_frequency", "2"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    nlp = spacy.load(out / "model-last")
    assert nlp.pipe_names == ["biobert", "ner"]
    assert nlp.config["components"]["biobert"]["model"]["mixed_precision"] is True
    assert nlp("Cocaine induced seizures.").text  # predicts after training on the GPU
