"""sweep.optim against torch.optim: the same arithmetic, the same state_dict, and no torch._dynamo."""

import io
import subprocess
import sys

import pytest
import torch

from sweep import optim

SETTINGS = {
    "sgd": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3)),
    "sgd-plain": (lambda p: optim.SGD(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    "adam": (lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.999), weight_decay=1e-3),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.999), weight_decay=1e-3)),
}


def through_a_checkpoint(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def make_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def run_steps(model: torch.nn.Module, opt, steps: int, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(32, 8, generator=g), torch.randint(0, 3, (32,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@pytest.mark.parametrize("name", SETTINGS)
def test_steps_match_torch_optim_bit_for_bit(name):
    ours, theirs = SETTINGS[name]
    a, b = make_model(), make_model()
    run_steps(a, ours(a.parameters()), 25)
    run_steps(b, theirs(b.parameters()), 25)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", SETTINGS)
def test_state_dict_moves_between_sweep_and_torch_optim(name):
    """A checkpoint's optimizer state continues identically in torch.optim, and torch.optim's in ours."""
    ours, theirs = SETTINGS[name]
    model = make_model()
    opt = ours(model.parameters())
    run_steps(model, opt, 10)
    for seed, make_next in ((2, theirs), (3, ours)):
        follower = make_model()
        follower.load_state_dict(model.state_dict())
        follower_opt = make_next(follower.parameters())
        follower_opt.load_state_dict(through_a_checkpoint(opt.state_dict()))
        run_steps(model, opt, 5, seed=seed)
        run_steps(follower, follower_opt, 5, seed=seed)
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), follower.parameters()))
        model, opt = follower, follower_opt


def test_state_of_another_model_is_refused():
    opt = optim.SGD(make_model().parameters(), lr=0.1, momentum=0.9)
    other = optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="does not match"):
        opt.load_state_dict(other.state_dict())


def test_training_steps_leave_torch_dynamo_unimported():
    code = (
        "import sys, torch\n"
        "from sweep.optim import SGD, Adam\n"
        "m = torch.nn.Linear(4, 2)\n"
        "for opt in (SGD(m.parameters(), lr=0.1, momentum=0.9), Adam(m.parameters(), lr=0.01)):\n"
        "    m(torch.randn(3, 4)).sum().backward(); opt.step(); opt.zero_grad(); opt.state_dict()\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
