"""What keeps a long training run's resident memory near what its tensors use
(spacy_biobert/training/memory.py): freed heap pages returned, large blocks
mapped on their own."""
import io
import os
import subprocess
import sys

import numpy
import pytest

from spacy_biobert.training.memory import release_freed_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

# Freed after a first large block (which raises glibc's own threshold past
# them), 12 MiB blocks stay in the heap between the live blocks allocated
# after each, unless mapped on their own. Its own process: mallopt lasts for
# the process.
LARGE_BLOCKS_SCRIPT = """
import sys, numpy
from spacy_biobert.training.memory import map_large_blocks
def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
mapped = map_large_blocks() if sys.argv[1] == "mapped" else None
first = numpy.ones((16 << 20) // 8); del first
blocks, pins = [], []
for _ in range(20):  # 240 MiB
    blocks.append(numpy.ones((12 << 20) // 8))
    pins.append(numpy.ones((256 << 10) // 8))
before = rss_mb(); del blocks
print(mapped, round(before - rss_mb()))
"""


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_freed_heap_memory_is_returned_to_the_system():
    """Memory freed between live allocations stays resident until trimmed."""
    blocks = [numpy.ones(64 * 1024 // 8) for _ in range(4000)]  # 256 MB in 64 KB heap blocks
    del blocks[::2]  # half freed, each between two live blocks: not trimmed by free()
    before = _rss_mb()
    assert release_freed_memory()
    assert _rss_mb() < before - 64, "the freed half (128 MB) stayed resident"
    del blocks


def _returned(mode: str, **env: str):
    out = subprocess.run([sys.executable, "-c", LARGE_BLOCKS_SCRIPT, mode], capture_output=True, text=True,
                         env=dict(os.environ, **env), check=True).stdout.split()
    return out[0], int(out[1])


def test_large_blocks_are_returned_as_soon_as_they_are_freed():
    """`spacy-biobert train` maps blocks over 8 MiB on their own: freed, they
    leave at once, where glibc's default keeps them resident in its heap."""
    assert _returned("default") == ("None", 0)
    mapped, freed = _returned("mapped")
    assert mapped == "True" and freed >= 230


def test_a_threshold_the_user_chose_is_kept():
    assert _returned("mapped", MALLOC_MMAP_THRESHOLD_="1073741824") == ("False", 0)
    assert _returned("mapped", GLIBC_TUNABLES="glibc.malloc.mmap_threshold=1073741824") == ("False", 0)
    # 0: glibc's own behaviour; a size over the blocks': they stay in the heap
    assert _returned("mapped", SPACY_BIOBERT_MMAP_THRESHOLD="0") == ("False", 0)
    assert _returned("mapped", SPACY_BIOBERT_MMAP_THRESHOLD=str(16 << 20)) == ("True", 0)


@pytest.mark.parametrize("value", ["8M", "-1", "1.5"])
def test_a_threshold_that_is_not_a_size_is_a_coded_error(monkeypatch, value):
    from spacy_biobert.training.memory import map_large_blocks

    monkeypatch.setenv("SPACY_BIOBERT_MMAP_THRESHOLD", value)
    with pytest.raises(ValueError, match=r"E013.*SPACY_BIOBERT_MMAP_THRESHOLD"):
        map_large_blocks()


def test_train_maps_large_blocks_before_it_loads_anything(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from spacy_biobert.cli import app
    from spacy_biobert.training import memory

    def called(*args, **kwargs):
        raise RuntimeError("map_large_blocks called")

    monkeypatch.setattr(memory, "map_large_blocks", called)
    config = os.path.join(os.path.dirname(__file__), "..", "configs", "ner.cfg")
    result = CliRunner().invoke(app, ["train", config, "--output", str(tmp_path / "out")])
    assert isinstance(result.exception, RuntimeError) and "map_large_blocks" in str(result.exception)


def _logged_steps(monkeypatch, steps, **logger_options):
    """Which of STEPS (spaCy's per-step calls, no evaluation among them) the
    training logger returned freed memory after."""
    import spacy
    from spacy.util import registry

    from spacy_biobert.training import logger as training_logger

    released, step = [], 0
    monkeypatch.setattr(training_logger, "release_freed_memory", lambda: released.append(step) or True)
    nlp = spacy.blank("en")
    setup = registry.loggers.get("spacy-biobert.TrainingLogger.v1")(progress_bar=False, **logger_options)
    log_step, _ = setup(nlp, io.StringIO(), io.StringIO())
    while step < steps:
        step += 1
        log_step(None)
    return released


def test_freed_memory_is_returned_every_release_every_steps(monkeypatch):
    assert _logged_steps(monkeypatch, 120) == [50, 100]
    assert _logged_steps(monkeypatch, 12, release_every=5) == [5, 10]
    assert _logged_steps(monkeypatch, 120, release_every=None) == []


@pytest.mark.parametrize("value", [0, -5])
def test_a_release_interval_under_one_step_is_a_coded_error(value):
    from spacy.util import registry

    with pytest.raises(ValueError, match=r"E014.*release_every = %d" % value):
        registry.loggers.get("spacy-biobert.TrainingLogger.v1")(release_every=value)
