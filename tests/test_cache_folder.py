"""A cache only the user can write: a folder or file another user could change is not used, so
nobody can plant a split whose test rows are training rows."""

from __future__ import annotations

import logging
import os
import stat

import numpy as np
import pytest

from digitlab.data.cache import cached_arrays
from digitlab.files import private_folder


def _split(calls):
    def compute():
        calls.append(1)
        return {"train": np.arange(5), "test": np.arange(5, 8)}
    return compute


def _plant(root, key):
    planted = root / "splits" / f"{key}.npz"
    planted.parent.mkdir(parents=True, exist_ok=True)
    np.savez(planted, train=np.arange(8), test=np.arange(5, 8))  # test rows among training rows
    return planted


def test_new_cache_folders_are_the_users_alone(tmp_path):
    root = tmp_path / "cache"
    calls = []
    cached_arrays("splits", "k", _split(calls), str(root))
    for folder in (root, root / "splits"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    again = cached_arrays("splits", "k", _split(calls), str(root))
    assert calls == [1] and list(again["train"]) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("writable", ["root", "folder", "file"])
def test_a_cache_others_can_write_is_not_used(tmp_path, caplog, writable):
    root = tmp_path / "cache"
    planted = _plant(root, "k")
    for path in (root, root / "splits", planted):
        path.chmod(0o700 if path.is_dir() else 0o600)
    {"root": root, "folder": root / "splits", "file": planted}[writable].chmod(0o777)
    calls = []
    with caplog.at_level(logging.WARNING, logger="digitlab"):
        split = cached_arrays("splits", "k", _split(calls), str(root))
    assert calls == [1] and list(split["train"]) == [0, 1, 2, 3, 4]  # computed, not the plant
    assert "writable by other users" in caplog.text and "chmod go-w" in caplog.text


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file to another user")
def test_a_cache_folder_of_another_user_is_not_used(tmp_path):
    root = tmp_path / "cache"
    planted = _plant(root, "k")
    os.chown(root / "splits", 4242, -1)
    calls = []
    assert list(cached_arrays("splits", "k", _split(calls), str(root))["train"]) == [0, 1, 2, 3, 4]
    assert calls == [1] and private_folder(root / "splits", root) is None
    assert planted.exists()
