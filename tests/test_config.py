import pytest

from sweep.config import compose
from sweep.errors import ConfigError


def test_defaults_are_the_seed_experiment():
    cfg = compose()
    assert cfg.model.name == "pigeon" and cfg.model.num_hidden == 30 and cfg.model.num_layers == 1
    assert cfg.model.activation == "relu"
    assert cfg.optimizer.name == "sgd" and cfg.optimizer.lr == 0.005 and cfg.optimizer.momentum == 0.9
    d = cfg.data
    assert (d.name, d.batch_size, d.train_size, d.val_size, d.test_size) == ("mnist", 32, 1024, 1024, None)
    assert (d.task, d.threshold, d.shuffle, d.download) == ("binary", 3, False, True)
    assert cfg.trainer.epochs == 15 and cfg.trainer.monitor == "val_acc"
    assert cfg.seed == 1 and cfg.resume is False


def test_groups_compose():
    cfg = compose(["optimizer=adam", "data=fashion_mnist", "model.num_layers=2"])
    assert cfg.optimizer.name == "adam"
    assert cfg.data.name == "fashion_mnist" and cfg.data.task == "multiclass"
    assert cfg.model.num_layers == 2


def test_types_are_coerced_and_checked():
    assert compose(["optimizer.lr=1e-2"]).optimizer.lr == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="wrong type for 'model.num_hidden'"):
        compose(["model.num_hidden=lots"])


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match="unknown config key 'model.num_hiden'"):
        compose(["+model.num_hiden=3"])


@pytest.mark.parametrize("override, key", [
    ("optimizer.lr=0", "optimizer.lr"),
    ("optimizer.lr=-0.1", "optimizer.lr"),
    ("optimizer.momentum=1.5", "optimizer.momentum"),
    ("model.num_hidden=0", "model.num_hidden"),
    ("model.num_layers=0", "model.num_layers"),
    ("model.dropout=1.0", "model.dropout"),
    ("model.activation=swish", "model.activation"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.train_size=-5", "data.train_size"),
    ("data.val_size=0", "data.val_size"),
    ("data.test_size=0", "data.test_size"),
    ("data.task=regression", "data.task"),
    ("data.threshold=10", "data.threshold"),
    ("trainer.epochs=0", "trainer.epochs"),
    ("trainer.monitor=test_acc", "trainer.monitor"),
    ("trainer.keep_checkpoints=0", "trainer.keep_checkpoints"),
])
def test_out_of_range_values_are_refused(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose([override])
