"""digitlab.files: a file written whole or not at all, the file a SQLite URI names, and a name
as a folder that stays inside its parent."""

from __future__ import annotations

import pytest

from digitlab.files import folder_name, sqlite_path, sqlite_uri, write_atomic

NAMES = ["../../../../var/x", "..", ".", "a/b", "a\\b", "/etc", "~root", "a b", "ünïcode",
         ".hidden", "", "digitlab-digits", "x" * 300, "..\\..\\x", "a\x00b"]


@pytest.mark.parametrize("name", NAMES)
def test_a_name_becomes_one_folder_inside_its_parent(tmp_path, name):
    folder = (tmp_path / folder_name(name)).resolve()
    assert folder.parent == tmp_path.resolve()
    folder.mkdir()  # a name the file system takes
    assert folder_name(name) not in ("", ".", "..")


def test_a_write_that_fails_leaves_the_earlier_file_and_no_partial_one(tmp_path):
    target = tmp_path / "table.csv"
    write_atomic(target, "old\n")

    def fail(partial):
        partial.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, fail)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_sqlite_uris_and_their_files():
    assert sqlite_path("sqlite:////srv/mlflow.db").as_posix() == "/srv/mlflow.db"
    assert sqlite_path("sqlite:///rel/mlflow.db").as_posix() == "rel/mlflow.db"
    assert sqlite_path("http://host:5000") is None and sqlite_path(None) is None
    assert sqlite_uri("/srv/mlflow.db") == "sqlite:////srv/mlflow.db"
