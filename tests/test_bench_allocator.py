"""bench/allocator.py: a short training run per allocator setting, timed and
its memory sampled, on the tiny BERT."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from allocator import parse_setting  # noqa: E402
from tiny_pipelines import JOINT_PUBTATOR, write_bc5cdr_corpora  # noqa: E402


def test_each_setting_runs_in_its_own_process_and_is_measured(tiny_bert, tmp_path):
    out = tmp_path / "allocator.json"
    corpora = write_bc5cdr_corpora(tmp_path, JOINT_PUBTATOR)
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "allocator.py"), str(ROOT / "configs" / "ner.cfg"),
         "--setting", "default:", "--setting", "mmap-1MiB:GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576",
         "--steps", "6", "--skip", "2", "--every", "2", "--output", str(out),
         "--paths.corpora", str(corpora), "--paths.base_model", tiny_bert],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert list(report["settings"]) == ["default", "mmap-1MiB"]
    default, mapped = report["settings"]["default"], report["settings"]["mmap-1MiB"]
    assert mapped["env"] == {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=1048576"}
    for row in (default, mapped):
        assert row["returncode"] == 0 and "error" not in row
        assert row["seconds_per_step"] > 0 and row["peak_rss_mb"] > 0
        assert row["kernel_share"] is None or 0 <= row["kernel_share"] <= 1
    assert mapped["time_vs_first"] == round(mapped["seconds_per_step"] / default["seconds_per_step"], 3)
    assert report["overrides"][:2] == ["--paths.corpora", str(tmp_path / "corpora")]


def test_a_run_that_fails_is_reported_with_its_log(tmp_path):
    out = tmp_path / "allocator.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "allocator.py"), str(ROOT / "configs" / "ner.cfg"),
         "--setting", "default:", "--steps", "4", "--skip", "2", "--every", "2", "--output", str(out),
         "--paths.corpora", str(tmp_path / "missing")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0
    row = json.loads(out.read_text())["settings"]["default"]
    assert row["returncode"] != 0 and "no progress lines" in row["error"]


@pytest.mark.parametrize("text,expected", [
    ("default:", ("default", {}, [])),
    ("both:A=1,B=x=y", ("both", {"A": "1", "B": "x=y"}, [])),
    ("trim-10:--training.logger.release_every=10,A=1",
     ("trim-10", {"A": "1"}, ["--training.logger.release_every", "10"])),
])
def test_settings_are_parsed(text, expected):
    assert parse_setting(text) == expected


@pytest.mark.parametrize("text", ["nocolon", ":A=1", "bad:A", "bad:--training.x"])
def test_malformed_settings_are_refused(text):
    import typer

    with pytest.raises(typer.BadParameter):
        parse_setting(text)
