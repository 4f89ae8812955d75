"""A table in a CSV file: numeric feature columns and one target column, held in memory (the fast path).

Rows are split into train/val/test by a fixed permutation (numpy, from data.split_seed), or by a column
whose values are train, val and test. Features are standardised with the training rows' statistics
only, so nothing about the val and test rows leaks into the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from sweep.errors import DataError, first_line
from sweep.tasks import TASKS

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class _Table:
    """The file as numpy arrays, read and checked once: features float64 [N, F], targets [N]
    (float64 for regression, int64 class indices otherwise), and each split's row indices."""

    x: Any
    y: Any
    rows: dict[str, Any]
    classes: Optional[list[Any]]
    mean: Any
    std: Any


class CSV:
    """A CSV table. task regression gives float32 targets [N]; binary and multiclass map the target's
    distinct values, sorted, to class indices 0..K-1 (`classes` lists them)."""

    def __init__(self, path: str, target: str, features: Optional[Sequence[str]] = None, task: str = "regression",
                 val_fraction: float = 0.15, test_fraction: float = 0.15, split_seed: int = 0,
                 split_column: Optional[str] = None, standardize: bool = True) -> None:
        self.path = Path(str(path)).expanduser()
        if task not in TASKS:
            raise DataError(f"data.task={task!r} is not a task of the CSV data: use {', '.join(TASKS)}")
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise DataError(f"data.{key}={value!r} is out of range for {self.path}: it must be at least 0 "
                                "and below 1")
        if split_column is None and val_fraction + test_fraction >= 1:
            raise DataError(f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no "
                            f"training rows in {self.path}: make their sum below 1")
        if isinstance(split_seed, bool) or not isinstance(split_seed, int) or split_seed < 0:
            raise DataError(f"data.split_seed={split_seed!r} is not a whole number of at least 0: give one")
        if isinstance(features, str):
            features = [features]
        self.target = str(target)
        self.features: Optional[list[str]] = None if features is None else [str(f) for f in features]
        self.task = task
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.split_seed = split_seed
        self.split_column = None if split_column is None else str(split_column)
        self.standardize = bool(standardize)
        self._table: Optional[_Table] = None

    # ---------------------------------------------------------------------------------------- reading

    def _read(self) -> Any:
        """The file as a pandas DataFrame, or a DataError naming it."""
        import pandas as pd

        if self.path.is_dir():
            raise DataError(f"CSV file {self.path} is a folder: set data.path to the table file in it")
        if not self.path.is_file():
            raise DataError(f"CSV file {self.path} does not exist: set data.path to your table")
        try:
            return pd.read_csv(self.path)
        except pd.errors.EmptyDataError:
            raise DataError(f"CSV file {self.path} is empty: give it a header row and data rows") from None
        except UnicodeDecodeError as e:
            raise DataError(f"CSV file {self.path} is not UTF-8 text ({e.reason}): save it as "
                            "UTF-8 CSV") from None
        except OSError as e:
            raise DataError(f"cannot read CSV file {self.path} ({e.strerror or first_line(e)}): check its "
                            "permissions") from None
        except (pd.errors.ParserError, ValueError) as e:
            raise DataError(f"cannot parse CSV file {self.path} ({first_line(e)}): fix the file") from None

    def _feature_names(self, columns: list[str]) -> list[str]:
        """data.features, checked against the file, or every column but the target and split column."""
        if self.target not in columns:
            raise DataError(f"data.target={self.target} is not a column of {self.path}: use one of {', '.join(columns)}")
        if self.split_column is not None and self.split_column not in columns:
            raise DataError(f"data.split_column={self.split_column} is not a column of {self.path}: use one of "
                            f"{', '.join(columns)}, or null to split by fraction")
        if self.features is None:
            names = [c for c in columns if c not in (self.target, self.split_column)]
        else:
            missing = [f for f in self.features if f not in columns]
            if missing:
                raise DataError(f"data.features lists {', '.join(missing)}, not columns of {self.path}: use some of "
                                f"{', '.join(columns)}")
            clash = [f for f in self.features if f in (self.target, self.split_column)]
            if clash:
                raise DataError(f"data.features lists {', '.join(clash)}, the target or split column of "
                                f"{self.path}: remove it from data.features")
            names = list(dict.fromkeys(self.features))
        if not names:
            raise DataError(f"{self.path} has no feature columns besides the target {self.target}: add columns or "
                            "list them in data.features")
        return names

    @staticmethod
    def _first_missing(column: Any) -> str:
        missing = column.isna()
        return f"{int(missing.sum())} missing value(s), the first in data row {int(missing.to_numpy().argmax()) + 1}"

    def _split_rows(self, frame: Any) -> dict[str, Any]:
        """Each split's row indices (sorted): by the split column's values, or by a fixed permutation."""
        import numpy as np

        n = len(frame)
        if self.split_column is not None:
            values = frame[self.split_column].astype(str).str.strip()
            unknown = sorted(set(values) - set(SPLITS))
            if unknown:
                seen = sorted(set(values))
                found = ", ".join(seen[:10]) + (f" and {len(seen) - 10} more" if len(seen) > 10 else "")
                raise DataError(f"column {self.split_column} of {self.path} holds {found}: each row's value must be "
                                "train, val or test")
            rows = {s: np.flatnonzero((values == s).to_numpy()) for s in SPLITS}
            how = f"column {self.split_column}"
        else:
            order = np.random.default_rng(self.split_seed).permutation(n)
            n_test, n_val = round(n * self.test_fraction), round(n * self.val_fraction)
            rows = {"test": np.sort(order[:n_test]), "val": np.sort(order[n_test:n_test + n_val]),
                    "train": np.sort(order[n_test + n_val:])}
            how = f"data.val_fraction={self.val_fraction:g} and data.test_fraction={self.test_fraction:g}"
        for s in SPLITS:
            if len(rows[s]) == 0:
                raise DataError(f"the {s} split of {self.path} ({n} rows, split by {how}) is empty: add rows or "
                                "change the split")
        return rows

    def _targets(self, column: Any, train_rows: Any) -> tuple[Any, Optional[list[Any]]]:
        """Regression: the numbers. Classification: indices of the training rows' sorted distinct values
        (the classes come from training rows only: the test rows must not shape the model)."""
        import numpy as np
        import pandas as pd

        if self.task == "regression":
            if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                raise DataError(f"target column {self.target} of {self.path} is not numeric: encode it as numbers, "
                                "or set data.task=multiclass (or binary) to predict its values as classes")
            return column.to_numpy(dtype=np.float64), None
        values = column.tolist()
        seen = {values[i] for i in train_rows}
        try:
            classes = sorted(seen)
        except TypeError:  # mixed types: order by their text
            classes = sorted(seen, key=str)
        unseen = sorted({str(v) for v in values} - {str(c) for c in classes})
        if unseen:
            raise DataError(f"target column {self.target} of {self.path} has value(s) {', '.join(unseen[:5])} in "
                            "validation or test rows but not in training rows: a classifier cannot predict a class "
                            "it never saw; move such rows into training, or change data.split_seed")
        if self.task == "binary" and len(classes) != 2:
            raise DataError(f"target column {self.target} of {self.path} has {len(classes)} distinct values, but the "
                            "binary task needs exactly 2: set data.task=multiclass (or regression)")
        if len(classes) < 2:
            raise DataError(f"target column {self.target} of {self.path} has a single value: a classifier needs "
                            "at least 2 classes")
        index = {c: i for i, c in enumerate(classes)}
        return np.array([index[v] for v in values], dtype=np.int64), classes

    def _load(self) -> _Table:
        """Read and check the file once per instance."""
        if self._table is not None:
            return self._table
        import numpy as np
        import pandas as pd

        frame = self._read()
        frame.columns = [str(c) for c in frame.columns]
        names = self._feature_names(list(frame.columns))
        if len(frame) == 0:
            raise DataError(f"CSV file {self.path} has a header but no data rows: add rows")
        bad = [c for c in names if not pd.api.types.is_numeric_dtype(frame[c])]
        if bad:
            raise DataError(f"feature column(s) {', '.join(bad)} of {self.path} are not numeric: drop them (list the "
                            "others in data.features) or encode them as numbers")
        for c in [*names, self.target]:
            if frame[c].isna().any():
                raise DataError(f"column {c} of {self.path} has {self._first_missing(frame[c])}: fill or drop "
                                "those rows")
        numeric_target = self.task == "regression" and pd.api.types.is_numeric_dtype(frame[self.target])
        for c in [*names, *([self.target] if numeric_target else [])]:  # a non-numeric target is said later
            infinite = np.isinf(frame[c].to_numpy(dtype=np.float64))
            if infinite.any():
                raise DataError(f"column {c} of {self.path} has {int(infinite.sum())} infinite value(s), the first in "
                                f"data row {int(infinite.argmax()) + 1}: replace or drop those rows")
        if self.task == "regression":  # checked before splitting: a bad target is the first thing to say
            y, classes = self._targets(frame[self.target], ())
            rows = self._split_rows(frame)
        else:  # the classes come from the training rows
            rows = self._split_rows(frame)
            y, classes = self._targets(frame[self.target], rows["train"])
        x = frame[names].to_numpy(dtype=np.float64)
        if self.standardize:
            train = x[rows["train"]]
            mean, std = train.mean(axis=0), train.std(axis=0)
            std[std == 0] = 1.0
        else:
            mean, std = np.zeros(x.shape[1]), np.ones(x.shape[1])
        self.features = names
        self._table = _Table(x=x, y=y, rows=rows, classes=classes, mean=mean, std=std)
        return self._table

    # ----------------------------------------------------------------------------------------- public

    @property
    def classes(self) -> Optional[list[Any]]:
        """The target's distinct values, sorted: class k is classes[k] (None for regression)."""
        return self._load().classes

    @property
    def num_classes(self) -> Optional[int]:
        """K for binary and multiclass, None for regression."""
        classes = self._load().classes
        return None if classes is None else len(classes)

    @property
    def feature_mean(self) -> torch.Tensor:
        """What is subtracted from each feature: the training rows' mean (zeros without standardize)."""
        return torch.from_numpy(self._load().mean).float()

    @property
    def feature_std(self) -> torch.Tensor:
        """What each feature is divided by: the training rows' std, 0 taken as 1 (ones without standardize)."""
        return torch.from_numpy(self._load().std).float()

    def _tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        table = self._load()
        idx = table.rows[split]
        x = torch.from_numpy((table.x[idx] - table.mean) / table.std).to(torch.float32)
        y = torch.from_numpy(table.y[idx])
        return x, (y.to(torch.float32) if self.task == "regression" else y)

    def train_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training rows; reads and checks the whole file, so a bad test split fails here."""
        return self._tensors("train")

    def val_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._tensors("val")

    def test_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._tensors("test")
