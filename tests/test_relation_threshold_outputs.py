"""A pipeline's own relation threshold reaches every output: `annotate` (every
format), the service, `render` and `show` write relations at the threshold
its `biobert_relations` was configured with, unless the user passes one.

The tiny relation pipeline is untrained, so every candidate pair scores near
0.5: saved with threshold 0.9 it writes none, and `--threshold 0.3` brings
them back (each scored under 0.9)."""
import json
from pathlib import Path

import pytest
from tiny_pipelines import save_tiny_relation_pipeline
from typer.testing import CliRunner

from spacy_biobert.cli import app
from spacy_biobert.models.base_models import load_pipeline
from spacy_biobert.pipeline.relations import DEFAULT_THRESHOLD, pipeline_threshold

TEXT = "cocaine induced seizures and lithium caused hypotension"


@pytest.fixture(scope="module")
def strict_pipeline(tiny_bert, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("strict") / "model"
    return Path(save_tiny_relation_pipeline(tiny_bert, folder, threshold=0.9))


@pytest.fixture(scope="module")
def text_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "in.txt"
    path.write_text(TEXT + "\n", encoding="utf8")
    return path


def _relations(jsonl: Path):
    return [r for line in jsonl.read_text(encoding="utf8").splitlines()
            for r in json.loads(line).get("predicted_relations", [])]


def test_the_saved_threshold_is_the_pipeline_threshold(strict_pipeline):
    nlp = load_pipeline(strict_pipeline)
    assert pipeline_threshold(nlp) == 0.9
    assert pipeline_threshold(load_pipeline(strict_pipeline, exclude=["biobert_relations"])) == (
        DEFAULT_THRESHOLD
    )


# brat is left out: it holds no document-level relation (the tiny pipeline's CID).
@pytest.mark.parametrize("fmt", ["jsonl", "pubtator", "bioc-xml", "bioc-json"])
def test_annotate_writes_at_the_pipeline_threshold_in_every_format(
    strict_pipeline, text_input, tmp_path, fmt
):
    out = tmp_path / f"out.{fmt}"
    args = ["annotate", str(strict_pipeline), str(text_input), str(out), "--output-format", fmt]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    loose = tmp_path / f"loose.{fmt}"
    res = CliRunner().invoke(app, args[:3] + [str(loose), "--output-format", fmt, "--threshold", "0.3"])
    assert res.exit_code == 0, res.output
    assert out.read_text() != loose.read_text()  # the relations are the difference


def test_annotate_jsonl_relations_are_filtered_by_the_saved_threshold(
    strict_pipeline, text_input, tmp_path
):
    out, loose = tmp_path / "o.jsonl", tmp_path / "l.jsonl"
    runner = CliRunner()
    assert runner.invoke(app, ["annotate", str(strict_pipeline), str(text_input), str(out)]).exit_code == 0
    res = runner.invoke(app, ["annotate", str(strict_pipeline), str(text_input), str(loose),
                              "--threshold", "0.3"])
    assert res.exit_code == 0, res.output
    assert _relations(out) == []
    scores = [r["score"] for r in _relations(loose)]
    assert scores and all(0.3 <= s < 0.9 for s in scores)


def test_the_service_answers_at_the_pipeline_threshold(strict_pipeline):
    from fastapi.testclient import TestClient

    from spacy_biobert.serve import create_app

    client = TestClient(create_app(str(strict_pipeline)))
    assert client.get("/health").json()["threshold"] == 0.9
    body = json.dumps({"id": "1", "text": TEXT})
    headers = {"Content-Type": "application/json"}
    answer = client.post("/annotate", content=body, headers=headers).json()
    assert answer["threshold"] == 0.9
    assert not any(d.get("predicted_relations") for d in answer["documents"])
    answer = client.post("/annotate?threshold=0.3", content=body, headers=headers).json()
    scores = [r["score"] for d in answer["documents"] for r in d.get("predicted_relations", [])]
    assert scores and all(s < 0.9 for s in scores)


def test_render_and_show_draw_at_the_pipeline_threshold(strict_pipeline, text_input, tmp_path):
    runner = CliRunner()
    strict, loose = tmp_path / "s.html", tmp_path / "l.html"
    res = runner.invoke(app, ["render", str(strict_pipeline), str(text_input), "-o", str(strict)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["render", str(strict_pipeline), str(text_input), "-o", str(loose),
                              "--threshold", "0.3"])
    assert res.exit_code == 0, res.output
    assert strict.read_text() != loose.read_text()
    res = runner.invoke(app, ["show", str(strict_pipeline), "--text", TEXT])
    assert res.exit_code == 0 and "relation" not in res.output, res.output
    res = runner.invoke(app, ["show", str(strict_pipeline), "--text", TEXT, "--threshold", "0.3"])
    assert res.exit_code == 0 and "relation" in res.output, res.output
