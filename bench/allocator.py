"""A training run's speed and memory under allocator settings (glibc, torch).

A long CPU run's resident memory creeps up (biomed stage 2: 5.7-7.0 GB while
training, 9.6 GB peak after its step-600 evaluation) while the tensors alive
at any moment take far less: the freed blocks stay in glibc's heap, and
`malloc_trim` in the training logger only returns them until the next step
allocates again. glibc's mmap threshold (`glibc.malloc.mmap_threshold`)
maps large blocks on their own, so freeing them returns them, but every new
block is then faulted in page by page; transparent huge pages
(`glibc.malloc.hugetlb=1`, torch's `THP_MEM_ALLOC_ENABLE=1`) fault 2 MiB at
a time. Which trade is worth it is measured here:

    python bench/allocator.py configs/biomed_joint.cfg --paths.corpora ../shared/corpora \\
        --paths.dev_limit 20            # -> metrics/bench_allocator.json

Each setting runs `spacy-biobert train CONFIG` for `--steps` steps in its own
process, with the same seed and so the same batches; the steps after `--skip`
(past the first evaluation, which spaCy makes after step 0) are timed by the
arrival of the train log's progress lines. Resident memory is sampled every second over
those steps (median and maximum), the process's peak (VmHWM) covers the whole
run, and the kernel's share of the CPU time (page faults, zeroing, unmapping)
comes from /proc/PID/stat over the timed steps. Extra `--section.key value`
options go to every run; a setting's own `--section.key=VALUE` items to its
run only (`trim-10:--training.logger.release_every=10`: freed heap memory
returned every 10 steps instead of 50). Linux only (/proc).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import typer

PROGRESS = re.compile(r"^step (\d+): ")
DEFAULT_SETTINGS = [
    "default:",
    "mmap-1MiB:GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576",
    "mmap-1MiB-glibc-thp:GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576:glibc.malloc.hugetlb=1",
    "torch-thp:THP_MEM_ALLOC_ENABLE=1",
    "mmap-1MiB-torch-thp:GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576,THP_MEM_ALLOC_ENABLE=1",
    "mmap-8MiB:GLIBC_TUNABLES=glibc.malloc.mmap_threshold=8388608",
]

app = typer.Typer(add_completion=False)


def parse_setting(text: str) -> Tuple[str, Dict[str, str], List[str]]:
    """'NAME:VAR=VALUE,--section.key=VALUE' (no items after the colon: the
    defaults): environment variables, and config overrides for this run only."""
    name, sep, rest = text.partition(":")
    if not name or not sep:
        raise typer.BadParameter(f"{text!r}: expected NAME:VAR=VALUE[,VAR=VALUE...] (or NAME: for none)")
    env: Dict[str, str] = {}
    overrides: List[str] = []
    for item in filter(None, rest.split(",")):
        var, eq, value = item.partition("=")
        if not var or not eq:
            raise typer.BadParameter(f"{text!r}: {item!r} is not VAR=VALUE or --section.key=VALUE")
        if var.startswith("--"):
            overrides += [var, value]
        else:
            env[var] = value
    return name, env, overrides


def _proc_status(pid: int) -> Dict[str, int]:
    """VmRSS and VmHWM in MiB (/proc gives kB)."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) // 1024
    return values


def _cpu_ticks(pid: int) -> Tuple[int, int]:
    """utime and stime of the process and its threads, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def run_setting(command: List[str], env: Dict[str, str], skip: int, steps: int) -> Dict[str, object]:
    """One training run under ENV: its timed steps, memory and kernel share."""
    proc = subprocess.Popen(command, env=dict(os.environ, **env), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    marks: Dict[int, Tuple[float, Tuple[int, int]]] = {}  # step -> (arrival, cpu ticks)
    tail: List[str] = []

    def read_progress() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail[:] = (tail + [line])[-40:]
            match = PROGRESS.match(line)
            if match:
                try:
                    marks[int(match.group(1))] = (time.monotonic(), _cpu_ticks(proc.pid))
                except OSError:
                    pass

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    rss: List[int] = []
    hwm = 0
    while proc.poll() is None:
        try:
            status = _proc_status(proc.pid)
        except OSError:
            break
        hwm = max(hwm, status.get("VmHWM", 0))
        if skip in marks and steps not in marks:
            rss.append(status.get("VmRSS", 0))
        time.sleep(1.0)
    proc.wait()
    reader.join(timeout=10)
    result: Dict[str, object] = {"env": env, "returncode": proc.returncode, "peak_rss_mb": hwm}
    if skip not in marks or steps not in marks:
        result["error"] = "no progress lines at steps %d and %d; log tail:\n%s" % (skip, steps, "".join(tail))
        return result
    (t0, (u0, s0)), (t1, (u1, s1)) = marks[skip], marks[steps]
    ticks = (u1 - u0) + (s1 - s0)
    result.update(
        seconds_per_step=round((t1 - t0) / (steps - skip), 3),
        rss_median_mb=int(statistics.median(rss)) if rss else None,
        rss_max_mb=max(rss) if rss else None,
        kernel_share=round((s1 - s0) / ticks, 3) if ticks else None,
    )
    return result


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def main(
    ctx: typer.Context,
    config: Path = typer.Argument(..., exists=True, dir_okay=False, help="training config"),
    setting: Optional[List[str]] = typer.Option(
        None, "--setting",
        help="NAME:VAR=VALUE[,--section.key=VALUE...]; repeat for more (default: the list above)"),
    steps: int = typer.Option(40, help="steps per run"),
    skip: int = typer.Option(10, help="steps left untimed at the start (the step-0 evaluation among them)"),
    every: int = typer.Option(5, help="progress line every N steps (skip and steps must be multiples)"),
    output: Path = typer.Option(Path("metrics/bench_allocator.json"), help="JSON written here"),
) -> None:
    if not 0 < skip < steps or skip % every or steps % every:
        raise typer.BadParameter("need 0 < --skip < --steps, both multiples of --every")
    settings = [parse_setting(s) for s in (setting or DEFAULT_SETTINGS)]
    results: Dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, env, overrides in settings:
            command = [
                sys.executable, "-m", "spacy_biobert", "train", str(config),
                "--output", str(Path(tmp) / name),
                "--training.max_steps", str(steps), "--training.eval_frequency", str(steps * 10),
                "--training.logger.progress_every", str(every), *ctx.args, *overrides,
            ]
            typer.echo(f"{name}: {env or 'no variables'} {' '.join(overrides)}")
            results[name] = run_setting(command, env, skip, steps)
            if overrides:
                results[name]["overrides"] = overrides
            typer.echo(f"  {json.dumps(results[name])}")
    base = results.get(settings[0][0], {})
    for result in results.values():
        if isinstance(result, dict) and result.get("seconds_per_step") and base.get("seconds_per_step"):
            result["time_vs_first"] = round(result["seconds_per_step"] / base["seconds_per_step"], 3)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"config": str(config), "steps": steps, "skip": skip, "overrides": ctx.args,
                                  "settings": results}, indent=2))
    typer.echo(f"written {output}")


if __name__ == "__main__":
    app()
