"""The transformer's parameter update (CheckedHFShim.finish_update): thinc's
arithmetic, without the chain of old tensors thinc's method leaves behind."""
import gc
import weakref

import spacy
import torch
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Adam
from thinc.shims.pytorch import PyTorchShim


def _shim(tiny_bert: str) -> HFShim:
    nlp = spacy.blank("en")
    nlp.add_pipe("biobert", config={"model": {"name": tiny_bert}})
    nlp.initialize()
    shim = nlp.get_pipe("biobert").model.layers[0].shims[0]
    assert isinstance(shim, HFShim)
    return shim


def _set_gradients(shim: HFShim, step: int) -> None:
    generator = torch.Generator().manual_seed(step)
    for param in shim._model.parameters():
        param.grad = torch.randn(param.shape, generator=generator)


class _RecordingOptimizer:
    """An optimizer that keeps a weak reference to every weights array it is given."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.seen = []

    def __call__(self, key, weights, gradient, **kwargs):
        self.seen.append(weakref.ref(weights))
        return self.optimizer(key, weights, gradient, **kwargs)


def _adam():
    return Adam(learn_rate=0.001, L2=0.01, L2_is_weight_decay=True, grad_clip=1.0)


def test_parameter_update_matches_thincs_arithmetic(tiny_bert):
    ours, thincs = _shim(tiny_bert), _shim(tiny_bert)
    ours_adam, thincs_adam = _adam(), _adam()
    for step in range(4):
        _set_gradients(ours, step)
        _set_gradients(thincs, step)
        ours.finish_update(ours_adam)
        PyTorchShim.finish_update(thincs, thincs_adam)
    pairs = list(zip(ours._model.named_parameters(), thincs._model.named_parameters()))
    assert pairs
    for (name, a), (_, b) in pairs:
        assert torch.equal(a, b), name
        assert a.grad is not None and not a.grad.any(), name  # gradients zeroed


def test_parameter_update_keeps_no_old_weights_alive(tiny_bert):
    shim = _shim(tiny_bert)
    optimizer = _RecordingOptimizer(_adam())
    for step in range(3):
        _set_gradients(shim, step)
        shim.finish_update(optimizer)
    gc.collect()
    assert optimizer.seen
    assert not [ref for ref in optimizer.seen if ref() is not None]


def test_thincs_update_keeps_old_weights_alive(tiny_bert):
    # Control: the check above sees the chain thinc's own method builds.
    shim = _shim(tiny_bert)
    optimizer = _RecordingOptimizer(_adam())
    for step in range(3):
        _set_gradients(shim, step)
        PyTorchShim.finish_update(shim, optimizer)
    gc.collect()
    alive = [ref for ref in optimizer.seen if ref() is not None]
    assert len(alive) == len(optimizer.seen)


def test_parameter_update_copies_in_an_optimizer_result_in_new_memory(tiny_bert):
    shim = _shim(tiny_bert)
    before = {name: param.detach().clone() for name, param in shim._model.named_parameters()}

    def returns_new_memory(key, weights, gradient, **kwargs):
        return weights + 1.0, gradient

    _set_gradients(shim, 0)
    shim.finish_update(returns_new_memory)
    for name, param in shim._model.named_parameters():
        assert torch.equal(param, before[name] + 1.0), name


def test_parameter_update_skipped_when_a_gradient_overflowed(tiny_bert):
    shim = _shim(tiny_bert)
    before = {name: param.detach().clone() for name, param in shim._model.named_parameters()}
    shim._grad_scaler._found_inf = True  # what unscale() sets on an overflow
    _set_gradients(shim, 0)
    shim.finish_update(_adam())
    for name, param in shim._model.named_parameters():
        assert torch.equal(param, before[name]), name
        assert not param.grad.any(), name
