"""The pretraining loop: load a base model with pretraining heads, continue
training it on MLM (+ NSP), evaluate a held-out slice before and after,
checkpoint, resume, and write a Hugging Face model folder.

A model without pretrained heads (the offline MiniLM ships only the encoder)
gets them initialized by transformers: the MLM decoder is tied to the word
embeddings (so only the small transform layer and a zero bias are new) and
the NSP classifier is random. `head_warmup_steps` first trains those heads
alone, encoder frozen; the held-out figures after that warm-up are the fair
baseline to compare the adapted model with.
"""

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ..corpora.text import DEFAULT_TEXT_DOCS, check_text_docs
from ..errors import Errors
from .data import TextStats, is_heldout, iter_documents, tokenize_documents
from .examples import Collator, make_instances

OBJECTIVES = ("mlm", "mlm+nsp")
CHECKPOINT_DIR = "checkpoint"
METRICS_FILE = "pretraining_metrics.json"
_STATE_FILE = "trainer_state.pt"

Progress = Callable[[str, Dict[str, Any]], None]


@dataclass
class PretrainSettings:
    """Every knob of a run (the [pretraining] section of configs/pretrain/mlm_nsp.cfg)."""

    objective: str = "mlm+nsp"
    whole_word_mask: bool = False
    mlm_probability: float = 0.15
    max_length: int = 128
    short_seq_prob: float = 0.1
    batch_size: int = 32
    max_steps: int = 1000
    head_warmup_steps: int = 0
    head_learn_rate: float = 1e-3
    learn_rate: float = 5e-5
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    heldout_fraction: float = 0.05
    eval_max_examples: Optional[int] = 1000
    eval_batch_size: int = 64
    checkpoint_every: int = 100
    keep_checkpoint: bool = False
    seed: int = 0

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "PretrainSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                Errors.E606.format(name=unknown[0], value=values[unknown[0]],
                                   reason=f"not a setting (known: {', '.join(sorted(known))})")
            )
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        def bad(name: str, reason: str) -> None:
            raise ValueError(Errors.E606.format(name=name, value=getattr(self, name), reason=reason))

        if self.objective not in OBJECTIVES:
            bad("objective", f"use one of {', '.join(OBJECTIVES)}")
        if not 0 < self.mlm_probability < 1:
            bad("mlm_probability", "it must be between 0 and 1")
        if not 0 <= self.short_seq_prob <= 1:
            bad("short_seq_prob", "it must be between 0 and 1")
        if not 0 <= self.heldout_fraction < 1:
            bad("heldout_fraction", "it must be >= 0 and < 1")
        for name in ("batch_size", "eval_batch_size", "checkpoint_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                bad(name, "it must be an integer >= 1")
        for name in ("max_steps", "head_warmup_steps", "warmup_steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                bad(name, "it must be an integer >= 0")
        if not isinstance(self.max_length, int) or not 8 <= self.max_length <= 4096:
            bad("max_length", "it must be an integer between 8 and the model's max_position_embeddings")
        if self.eval_max_examples is not None and self.eval_max_examples < 1:
            bad("eval_max_examples", "it must be None (all) or an integer >= 1")

    @property
    def nsp(self) -> bool:
        return self.objective == "mlm+nsp"

    @property
    def total_steps(self) -> int:
        return self.head_warmup_steps + self.max_steps


@dataclass
class PretrainResult:
    output: Path
    steps: int
    metrics: Dict[str, Any]


# --- model -------------------------------------------------------------------------


def load_pretraining_model(name: str, objective: str):
    """(model, tokenizer, newly initialized weight names) for `name` (folder,
    alias or hub id, resolved like the `biobert` factory's base models).
    BERT models load as BertForPreTraining (MLM + NSP heads), others as
    AutoModelForMaskedLM (mlm only)."""
    from transformers import AutoModelForMaskedLM, BertForPreTraining

    from ..models.base_models import load_base_model

    def model_class(config):
        if config.model_type == "bert":
            return BertForPreTraining
        if objective == "mlm+nsp":
            raise ValueError(Errors.E605.format(name=name, model_type=config.model_type))
        return AutoModelForMaskedLM

    # the one guarded loader: folder checks, no remote code, safetensors
    # preferred, E005 for a pickle, E604 for a model that cannot be loaded
    tokenizer, _, model, info = load_base_model(name, model_class, error=Errors.E604)
    tokenizer.padding_side = "right"
    initialized = sorted(k for k in info.get("missing_keys", []) if "position_ids" not in k)
    return model, tokenizer, initialized


def _head_parameter_ids(model) -> set:
    base = {id(p) for p in model.base_model.parameters()}
    return {id(p) for p in model.parameters() if id(p) not in base}


def _forward_losses(model, batch, nsp: bool):
    """(mlm loss sum, masked count, nsp loss sum, nsp correct, pairs).
    For BERT the MLM decoder runs on the masked positions only (as BERT's
    own pretraining code gathers them), not on every position."""
    import torch
    from torch.nn.functional import cross_entropy

    labels = batch["labels"]
    selected = labels != -100
    if hasattr(model, "cls") and hasattr(model, "bert"):
        out = model.bert(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
        )
        seq, pooled = out[0], out[1]
        logits = model.cls.predictions(seq[selected])
        nsp_logits = model.cls.seq_relationship(pooled) if nsp else None
    else:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = out.logits[selected]
        nsp_logits = None
    mlm_sum = cross_entropy(logits.float(), labels[selected], reduction="sum")
    n_masked = int(selected.sum())
    if nsp_logits is not None:
        target = batch["next_sentence_label"]
        nsp_sum = cross_entropy(nsp_logits.float(), target, reduction="sum")
        correct = int((nsp_logits.argmax(-1) == target).sum())
        pairs = len(target)
    else:
        nsp_sum, correct, pairs = torch.zeros(()), 0, 0
    return mlm_sum, n_masked, nsp_sum, correct, pairs


def evaluate(model, batches: Sequence[Dict[str, Any]], nsp: bool, device) -> Dict[str, Any]:
    """Held-out MLM loss (mean over masked wordpieces), perplexity, NSP loss and accuracy."""
    import torch

    was_training = model.training
    model.eval()
    mlm_total, masked, nsp_total, correct, pairs = 0.0, 0, 0.0, 0, 0
    with torch.no_grad():
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            m, n, s, c, p = _forward_losses(model, batch, nsp)
            mlm_total += float(m)
            masked += n
            nsp_total += float(s)
            correct += c
            pairs += p
    model.train(was_training)
    loss = mlm_total / max(masked, 1)
    result: Dict[str, Any] = {
        "mlm_loss": round(loss, 4),
        "mlm_perplexity": round(math.exp(min(loss, 50.0)), 2),
        "masked_tokens": masked,
        "examples": sum(len(b["input_ids"]) for b in batches),
    }
    if nsp:
        result["nsp_loss"] = round(nsp_total / max(pairs, 1), 4)
        result["nsp_accuracy"] = round(correct / max(pairs, 1), 4)
    return result


# --- the run -------------------------------------------------------------------------


def pretrain(
    inputs: Sequence[Union[str, Path]],
    output: Union[str, Path],
    base_model: str,
    settings: Optional[PretrainSettings] = None,
    *,
    format: str = "auto",
    text_docs: str = DEFAULT_TEXT_DOCS,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "cpu",
    progress: Optional[Progress] = None,
) -> PretrainResult:
    """Continue pretraining `base_model` on the text of `inputs`; write the
    adapted model + tokenizer to `output` (loadable by the `biobert` factory)
    and held-out metrics to `output/pretraining_metrics.json`. `format`: of
    every input ("auto": detected per file); `text_docs`: how plain text holds
    its documents ("line" or "blank-line", `spacy_biobert.corpora.text`).

    `progress(event, info)` is called with "data", "model", "eval", "step" and
    "checkpoint" events (the CLI shows them; the library prints nothing)."""
    import torch

    settings = settings or PretrainSettings()
    settings.validate()
    check_text_docs(text_docs)
    notify = progress or (lambda event, info: None)
    output = Path(output)
    checkpoint = output / CHECKPOINT_DIR
    if resume:
        if not (checkpoint / _STATE_FILE).exists():
            raise ValueError(Errors.E607.format(output=output))
    elif output.exists() and ((output / "config.json").exists() or checkpoint.exists()):
        if not overwrite:
            raise ValueError(Errors.E609.format(output=output))
        shutil.rmtree(checkpoint, ignore_errors=True)
    started = time.time()

    # Model first: a bad name fails before the text is read.
    state = None
    if resume:
        state = torch.load(checkpoint / _STATE_FILE, weights_only=True)
        _check_same(output, "settings", state["settings"], asdict(settings))
        _check_same(output, "base_model", state["base_model"], base_model)
        model, tokenizer, _ = load_pretraining_model(str(checkpoint), settings.objective)
        initialized = state["initialized"]
    else:
        torch.manual_seed(settings.seed)  # new heads are initialized from it
        model, tokenizer, initialized = load_pretraining_model(base_model, settings.objective)
    max_pos = getattr(model.config, "max_position_embeddings", None)
    if max_pos is not None and settings.max_length > max_pos:
        raise ValueError(Errors.E606.format(
            name="max_length", value=settings.max_length,
            reason=f"the model has {max_pos} positions"))
    model.to(device)
    notify("model", {"base_model": base_model, "initialized": initialized,
                     "parameters": sum(p.numel() for p in model.parameters())})

    # Text: streamed, split by document content, tokenized.
    text_stats = TextStats()
    train_docs: List = []
    heldout_docs: List = []
    for doc in iter_documents(inputs, format=format, stats=text_stats, text_docs=text_docs):
        (heldout_docs if is_heldout(doc, settings.heldout_fraction) else train_docs).append(doc)
    if text_stats.documents == 0:
        raise ValueError(Errors.E601.format(
            detail=f"{', '.join(map(str, inputs))} hold no document with text"))
    max_segment = settings.max_length - (3 if settings.nsp else 2)
    train, train_hash = tokenize_documents(train_docs, tokenizer, max_segment)
    heldout, _ = tokenize_documents(heldout_docs, tokenizer, max_segment)
    del train_docs, heldout_docs
    min_docs = 2 if settings.nsp else 1
    if len(train) < min_docs:
        raise ValueError(Errors.E610.format(part="training", documents=text_stats.documents,
                                            fraction=settings.heldout_fraction))
    if settings.heldout_fraction > 0 and len(heldout) < min_docs:
        raise ValueError(Errors.E610.format(part="held-out", documents=text_stats.documents,
                                            fraction=settings.heldout_fraction))
    data_info = dict(
        text_stats.as_dict(),
        train_documents=len(train), heldout_documents=len(heldout),
        train_wordpieces=int(sum(len(d.ids) for d in train)),
        heldout_wordpieces=int(sum(len(d.ids) for d in heldout)),
        fingerprint=train_hash.hexdigest(),
    )
    if state is not None:
        _check_same(output, "inputs (text fingerprint)", state["data"]["fingerprint"],
                    data_info["fingerprint"])
    notify("data", data_info)

    special = dict(cls_id=tokenizer.cls_token_id, sep_id=tokenizer.sep_token_id)
    # Held-out batches: built and masked once, from their own seeds, so the
    # figures before and after are computed on the very same masked positions.
    eval_batches: List[Dict[str, Any]] = []
    if heldout:
        eval_instances = make_instances(
            heldout, random.Random(settings.seed + 7919), max_length=settings.max_length,
            nsp=settings.nsp, short_seq_prob=0.0, **special)[: settings.eval_max_examples]
        eval_collator = Collator(tokenizer, mlm_probability=settings.mlm_probability,
                                 whole_word=settings.whole_word_mask, seed=settings.seed + 104729)
        eval_batches = [eval_collator(eval_instances[i : i + settings.eval_batch_size])
                        for i in range(0, len(eval_instances), settings.eval_batch_size)]

    metrics: Dict[str, Any] = state["metrics"] if state else {}
    if eval_batches and "before" not in metrics:
        notify("eval", {"when": "before"})
        metrics["before"] = evaluate(model, eval_batches, settings.nsp, device)
        notify("eval", {"when": "before", "metrics": metrics["before"]})

    # Optimizer: heads (new weights) and encoder in separate groups, so the
    # head warm-up can train the heads alone.
    head_ids = _head_parameter_ids(model)
    groups: Dict[str, List] = {"head": [], "head_nd": [], "body": [], "body_nd": []}
    for pname, param in model.named_parameters():
        nd = pname.endswith("bias") or "LayerNorm" in pname or "layer_norm" in pname
        key = ("head" if id(param) in head_ids else "body") + ("_nd" if nd else "")
        groups[key].append(param)
    param_groups = [
        {"params": groups[k], "weight_decay": 0.0 if k.endswith("_nd") else settings.weight_decay}
        for k in ("head", "head_nd", "body", "body_nd")
    ]
    optimizer = torch.optim.AdamW(param_groups, lr=settings.learn_rate)
    head_factor = settings.head_learn_rate / settings.learn_rate
    H, W, T = settings.head_warmup_steps, settings.warmup_steps, settings.total_steps

    def main_schedule(step: int) -> float:
        s = step - H
        if s < W:
            return (s + 1) / (W + 1)
        return max(0.0, (T - step) / max(1, T - H - W))

    def head_schedule(step: int) -> float:
        return head_factor if step < H else main_schedule(step)

    def body_schedule(step: int) -> float:
        return 0.0 if step < H else main_schedule(step)

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, [head_schedule, head_schedule, body_schedule, body_schedule])
    collator = Collator(tokenizer, mlm_probability=settings.mlm_probability,
                        whole_word=settings.whole_word_mask, seed=settings.seed)
    step, epoch, batch_index = 0, 0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        collator.set_state(state["collator_rng"])
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and str(device).startswith("cuda"):
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        step, epoch, batch_index = state["step"], state["epoch"], state["batch_index"]
        notify("resume", {"step": step})
    else:
        torch.manual_seed(settings.seed)

    def save_checkpoint() -> None:
        tmp = output / (CHECKPOINT_DIR + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        torch.save({
            "step": step, "epoch": epoch, "batch_index": batch_index,
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "collator_rng": collator.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if str(device).startswith("cuda") else None,
            "settings": asdict(settings), "base_model": base_model, "data": data_info,
            "metrics": metrics, "initialized": initialized,
        }, tmp / _STATE_FILE)
        shutil.rmtree(checkpoint, ignore_errors=True)
        tmp.rename(checkpoint)
        notify("checkpoint", {"step": step, "path": str(checkpoint)})

    output.mkdir(parents=True, exist_ok=True)
    model.train()
    body_params = [p for k in ("body", "body_nd") for p in groups[k]]
    instances = None
    while step < T:
        if instances is None:
            instances = make_instances(
                train, random.Random(settings.seed * 100003 + epoch),
                max_length=settings.max_length, nsp=settings.nsp,
                short_seq_prob=settings.short_seq_prob, **special)
        start = batch_index * settings.batch_size
        if start >= len(instances):
            epoch, batch_index, instances = epoch + 1, 0, None
            continue
        batch = collator(instances[start : start + settings.batch_size])
        batch = {k: v.to(device) for k, v in batch.items()}
        for p in body_params:  # the encoder is frozen during the head warm-up
            p.requires_grad_(step >= H)
        mlm_sum, n_masked, nsp_sum, correct, pairs = _forward_losses(model, batch, settings.nsp)
        loss = mlm_sum / max(n_masked, 1)
        if pairs:
            loss = loss + nsp_sum / pairs
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(
                [p for p in model.parameters() if p.grad is not None], settings.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        batch_index += 1
        notify("step", {"step": step, "total": T, "loss": loss.item(), "epoch": epoch,
                        "mlm_loss": mlm_sum.item() / max(n_masked, 1),
                        "nsp_accuracy": correct / pairs if pairs else None})
        if H and step == H and eval_batches and "after_head_warmup" not in metrics:
            metrics["after_head_warmup"] = evaluate(model, eval_batches, settings.nsp, device)
            notify("eval", {"when": "after_head_warmup", "metrics": metrics["after_head_warmup"]})
        if step % settings.checkpoint_every == 0 and step < T:
            save_checkpoint()

    if eval_batches:
        metrics["after"] = evaluate(model, eval_batches, settings.nsp, device)
        notify("eval", {"when": "after", "metrics": metrics["after"]})
    model.save_pretrained(str(output), safe_serialization=True)
    tokenizer.save_pretrained(str(output))
    summary = {
        "base_model": base_model,
        "objective": settings.objective,
        "steps": step,
        "epoch": epoch,
        "seconds_this_run": round(time.time() - started, 1),
        "initialized_heads": initialized,
        "data": data_info,
        "settings": asdict(settings),
        "heldout": metrics,
    }
    (output / METRICS_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    if settings.keep_checkpoint:
        save_checkpoint()
    else:
        shutil.rmtree(checkpoint, ignore_errors=True)
    return PretrainResult(output=output, steps=step, metrics=summary)


def _check_same(output: Path, key: str, old: Any, new: Any) -> None:
    if old != new:
        raise ValueError(Errors.E608.format(output=output, key=key, old=old, new=new))
