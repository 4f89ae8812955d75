"""The config schema and its checks: defaults, groups, and the one-line refusals of sweep.config."""

import collections.abc
import re
from pathlib import Path
from typing import Literal, Optional, Sequence

import pytest
import torch

from conftest import tiny
from sweep.config import _fits, compose, locate
from sweep.errors import ConfigError, UserError
from sweep.build import prepare


def test_defaults_are_the_seed_experiment():
    cfg = compose()
    m, o, d = cfg.model, cfg.optimizer, cfg.data
    assert m._target_ == "sweep.models.Pigeon" and (m.num_hidden, m.num_layers, m.activation) == (30, 1, "relu")
    assert o._target_ == "torch.optim.SGD" and o.lr == 0.005 and o.momentum == 0.9 and o.weight_decay == 0.0
    assert cfg.scheduler._target_ is None
    assert d._target_ == "sweep.data.idx.MNIST"
    assert (d.batch_size, d.train_size, d.val_size, d.test_size) == (32, 1024, 1024, None)
    assert (d.task, d.threshold, d.shuffle, d.download) == ("binary", 3, False, True)
    t = cfg.trainer
    assert t.epochs == 15 and t.monitor is None and t.device == "auto" and t.precision == "32"
    assert cfg.seed == 1 and cfg.resume is False


def test_groups_compose():
    cfg = compose(["optimizer=adam", "data=fashion_mnist", "model.num_layers=2", "scheduler=cosine"])
    assert cfg.optimizer._target_ == "torch.optim.Adam"
    assert cfg.data._target_ == "sweep.data.idx.FashionMNIST" and cfg.data.task == "multiclass"
    assert cfg.model.num_layers == 2
    assert cfg.scheduler._target_ == "torch.optim.lr_scheduler.CosineAnnealingLR" and cfg.scheduler.T_max is None
    assert compose(["model=cnn"]).model._target_ == "sweep.models.SmallCNN"


def test_types_are_coerced_and_checked():
    assert compose(["optimizer.lr=1e-2"]).optimizer.lr == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="wrong type for 'model.num_hidden'"):
        compose(["model.num_hidden=lots"])
    with pytest.raises(ConfigError, match=r"wrong type for 'optimizer.lr': torch.optim.SGD takes float"):
        compose(["optimizer.lr=fast"])  # annotated float | Tensor: a string fits neither
    with pytest.raises(ConfigError, match="wrong type for 'model.channels'"):
        compose(["model=cnn", "model.channels=3"])
    with pytest.raises(ConfigError, match="wrong type for 'trainer.epochs'"):
        compose(["trainer.epochs=many"])


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown config key 'model.num_hiden'.*did you mean model.num_hidden\?"):
        compose(["+model.num_hiden=3"])
    with pytest.raises(ConfigError, match=r"unknown config key 'trainer.epoch'"):
        compose(["+trainer.epoch=3"])


def test_moved_keys_point_to_their_new_home():
    with pytest.raises(ConfigError, match="optimizer.schedule is gone: .*scheduler=cosine"):
        compose(["+optimizer.schedule=cosine"])


def test_a_missing_required_value_is_named():
    with pytest.raises(ConfigError, match=r"data.path has no value .*data.path=\.\.\."):
        compose(["data=csv", "data.target=y"])


@pytest.mark.parametrize("override, key", [
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=-0.1", "optimizer.lr"),
    ("optimizer.momentum=1.5", "optimizer.momentum"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay"),
    ("trainer.epochs=0", "trainer.epochs"),
    ("seed=-1", "seed"),
    ("seed=99999999999999999999", "seed"),
    ("trainer.monitor=test_acc", "trainer.monitor"),
    ("trainer.keep_checkpoints=-1", "trainer.keep_checkpoints"),
    ("trainer.keep_checkpoints=some", "trainer.keep_checkpoints"),
    ("trainer.keep_checkpoints=1.5", "trainer.keep_checkpoints"),
    ("trainer.eval_every=0", "trainer.eval_every"),
    ("trainer.threads=0", "trainer.threads"),
    ("trainer.device=tpu", "trainer.device"),
    ("trainer.precision=64", "trainer.precision"),
    ("scheduler=cosine scheduler.interval=week", "scheduler.interval"),
])
def test_out_of_range_values_are_refused(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose(override.split())


def test_a_target_that_does_not_import_is_one_line():
    with pytest.raises(ConfigError, match=r"model._target_=nope.Net cannot be imported \(ModuleNotFoundError"):
        compose(["model._target_=nope.Net"])
    with pytest.raises(ConfigError, match=r"torch.nn.Nope cannot be imported \(AttributeError"):
        locate("model", "torch.nn.Nope")
    assert locate("optimizer", "torch.optim.SGD") is torch.optim.SGD


@pytest.mark.parametrize("value, hint, fits", [
    ([1, 2], Sequence[int], True),
    ([1, "a"], Sequence[int], False),
    (3, collections.abc.Sequence[int], False),
    ([4], collections.abc.Sequence, True),
    ("ab", Sequence[str], False),  # a string is a sequence, but never the list a config meant
    ((1, 2), tuple[int, int], True),
    ([1], tuple[int, int], False),
    ([1.0, 2], tuple[float, ...], True),
    ("fast", float | torch.Tensor, False),
    (0.1, float | torch.Tensor, True),
    (None, Optional[int], True),
    (True, int, False),
    (3, float, True),
    ("cos", Literal["cos", "linear"], True),
    ("tan", Literal["cos", "linear"], False),
    ("/data", Path, True),
    ({"a": 1}, dict[str, int], True),
    (1, dict, False),
    (object(), torch.nn.Module, True),  # not understood: the constructor checks it
])
def test_annotation_checks(value, hint, fits):
    assert _fits(value, hint) is fits


@pytest.mark.parametrize("override, message", [
    ("data.batch_size=0", "data.batch_size=0 is out of range"),
    ("data.batch_size=many", "wrong type for 'data.batch_size'"),
    ("data.num_workers=-1", "data.num_workers=-1 is out of range"),
    ("data.train_size=-5", "data.train_size=-5 is out of range"),
    ("data.val_size=0", "data.val_size=0 is out of range"),
    ("data.test_size=0", "data.test_size=0 is out of range"),
    ("data.task=regression", "data.task='regression' is not a task of mnist"),
    ("data.threshold=10", "data.threshold=10 is out of range"),
    ("model.num_hidden=0", "model.num_hidden=0 is out of range"),
    ("model.num_layers=0", "model.num_layers=0 is out of range"),
    ("model.dropout=1.0", "model.dropout=1.0 is out of range"),
    ("model.activation=swish", "model.activation=swish is not supported"),
])
def test_constructor_arguments_are_refused_naming_the_key(idx_root, override, message):
    """Checked by the classes themselves when the run is prepared, and reported with the config key."""
    with pytest.raises(UserError, match=re.escape(message)):
        prepare(compose(tiny(idx_root, override)))
