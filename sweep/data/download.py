"""Downloads that leave nothing behind when they fail and never write into a folder that holds data.

The rule, for every built-in data set that can download (MNIST, Fashion-MNIST, CIFAR-10):

- sweep downloads only when data.download is true, the data set's files are not in its folder (data.root,
  else $SWEEP_DATA_DIR/<dataset>, else ./data/<dataset>), and that folder does not exist or is empty.
  A folder that holds anything is only read: when the files are missing there, the error says so and
  how to fix it, and nothing is created in it;
- the download runs in a hidden staging folder inside the data set's folder (.sweep-download-XXXXXXXX);
  only when torchvision has fetched every file and checked its md5 sum is the result moved into place;
- on failure (no network, a full disk, Ctrl-C) the staging folder is removed, and so is every folder
  the download created, the data set's folder and its missing parents included; a folder that existed
  before is never removed. Only a process killed outright (kill -9) leaves its hidden staging folder,
  which blocks no later download and may be deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Sequence

STAGING_PREFIX = ".sweep-download-"


def may_download_into(folder: Path) -> bool:
    """Whether the rule lets sweep download into folder: it does not exist, or is an empty folder (another
    download's staging folder does not count: two jobs may start the same download at once)."""
    if not folder.exists():
        return True
    return folder.is_dir() and all(p.name.startswith(STAGING_PREFIX) for p in folder.iterdir())


def download_into(folder: Path, fetch: Callable[[Path], object], results: Sequence[str]) -> None:
    """Run fetch(staging folder), then move its `results` (names inside the staging folder) into folder.

    Any exception (Ctrl-C included) removes the staging folder and the folders made for it, and is
    raised again. When another download has put a result in place first, that one is kept."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # the deepest first
    done = False
    stage = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
        fetch(stage)
        for name in results:
            try:
                os.rename(stage / name, folder / name)
            except OSError:
                if not (folder / name).exists():
                    raise  # not another download's result: a real failure
        done = True
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if not done:
            for p in created:
                try:
                    p.rmdir()
                except OSError:  # not empty: another process is using it
                    break
