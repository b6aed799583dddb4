"""Loaders on files the tests write: the valid case and every bad case, each a one-line DataError
naming the file; splits and scaling; the parse cache."""

from __future__ import annotations

import gzip
import io
import os
import time
import zipfile

import numpy as np
import pytest

from conftest import idx_bytes, needs_fashion, write_idx_set, write_kaggle_csv
from digitlab.config import DataConfig
from digitlab.data import DataError, load_dataset, make_split
from digitlab.data.csv import read_kaggle_csv
from digitlab.data.idx import read_idx
from digitlab.nn.init import seed_streams


def _one_line(exc: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


# ---- IDX ------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_idx_set_loads_gzipped_or_raw(tmp_path, gz):
    root = write_idx_set(tmp_path / "mnist", gz=gz)
    ds = load_dataset(DataConfig(name="mnist", root=str(root)))
    assert ds.x_train.shape == (120, 784) and ds.x_test.shape == (40, 784)
    assert ds.y_train[:3].tolist() == [0, 1, 2] and len(ds.digest) == 64


def test_idx_digest_is_the_same_for_gzipped_and_raw_files(tmp_path):
    a = load_dataset(DataConfig(name="mnist", root=str(write_idx_set(tmp_path / "a", gz=True))))
    b = load_dataset(DataConfig(name="mnist", root=str(write_idx_set(tmp_path / "b", gz=False))))
    assert a.digest == b.digest


def test_idx_missing_folder_says_which_files_to_put_where(tmp_path):
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="mnist", root=str(tmp_path / "nowhere")))
    _one_line(exc, "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "data.root",
              "data.download=true")


def test_idx_one_missing_file_is_named(tmp_path):
    root = write_idx_set(tmp_path / "m")
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="mnist", root=str(root)))
    _one_line(exc, "Missing: t10k-labels-idx1-ubyte.gz")


def test_idx_wrong_magic(tmp_path):
    path = tmp_path / "x-images"
    path.write_bytes(idx_bytes(np.zeros(5), 2049))
    with pytest.raises(DataError) as exc:
        read_idx(path, "images")
    _one_line(exc, str(path), "expected IDX images (magic 2051)", "found magic 2049 (labels)")


def test_idx_truncated_and_overlong(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28)), 2051)
    (tmp_path / "short").write_bytes(data[:-10])
    (tmp_path / "long").write_bytes(data + b"\0")
    with pytest.raises(DataError) as exc:
        read_idx(tmp_path / "short", "images")
    _one_line(exc, "truncated", "(3, 28, 28)", "found 2342")
    with pytest.raises(DataError, match="longer than its header says"):
        read_idx(tmp_path / "long", "images")


def test_idx_empty_and_damaged_gzip(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(DataError, match="empty"):
        read_idx(tmp_path / "empty", "labels")
    with pytest.raises(DataError, match="gzip stream is damaged"):
        read_idx(tmp_path / "bad.gz", "labels")


def test_idx_wrong_dimensions(tmp_path):
    root = write_idx_set(tmp_path / "m")
    (root / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((120, 20, 20)), 2051)))
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="mnist", root=str(root)))
    _one_line(exc, "expected images of 28×28 pixels", "(120, 20, 20)")


def test_idx_image_label_count_mismatch(tmp_path):
    root = write_idx_set(tmp_path / "m")
    (root / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros(119), 2049)))
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="mnist", root=str(root)))
    _one_line(exc, "120 images but 119 labels")


def test_idx_label_outside_0_to_9(tmp_path):
    root = write_idx_set(tmp_path / "m")
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.full(40, 11), 2049)))
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="mnist", root=str(root)))
    _one_line(exc, "label 11 is outside 0–9")


def test_download_failure_offline_is_one_clear_message(tmp_path, monkeypatch):
    from urllib.error import URLError

    import sklearn.datasets

    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="mnist", root=str(tmp_path), download=True))
    _one_line(exc, "OpenML download failed", "URLError", "train-images-idx3-ubyte.gz")


def test_parsed_arrays_are_cached(tmp_path):
    root = write_idx_set(tmp_path / "m", n_train=2000)
    cfg = DataConfig(name="mnist", root=str(root), cache_dir=str(tmp_path / "cache"))
    first = load_dataset(cfg)
    start = time.perf_counter()
    second = load_dataset(cfg)
    assert time.perf_counter() - start < 0.5
    assert isinstance(second.x_train.base, np.memmap) or isinstance(second.x_train, np.memmap)
    assert first.digest == second.digest
    np.testing.assert_array_equal(first.x_train, second.x_train)


@needs_fashion
def test_fashion_mnist_comes_from_the_debian_package():
    ds = load_dataset(DataConfig(name="fashion_mnist"))
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert ds.source == "/usr/share/datasets/fashion-mnist"
    start = time.perf_counter()
    load_dataset(DataConfig(name="fashion_mnist"))
    assert time.perf_counter() - start < 1.0  # the second load is memory-mapped


# ---- Kaggle CSV -----------------------------------------------------------------------------

def test_kaggle_train_and_test_csv(tmp_path):
    train = write_kaggle_csv(tmp_path / "train.csv", n=50)
    ds = load_dataset(DataConfig(name="kaggle_csv", path=str(train)))
    assert ds.x_train.shape == (50, 784) and ds.y_train[:4].tolist() == [0, 1, 2, 3]
    assert ds.x_test is None
    unlabeled = read_kaggle_csv(write_kaggle_csv(tmp_path / "test.csv", n=7, labeled=False))
    assert unlabeled.shape == (7, 784)


def _edit_line(path, line_number, edit):
    lines = path.read_text().splitlines()
    lines[line_number - 1] = edit(lines[line_number - 1])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("edit,fragments", [
    (lambda line: line + ",7", ["line 4 has 786 cells, expected 785"]),
    (lambda line: line.rsplit(",", 1)[0], ["line 4 has fewer than 785 cells"]),
    (lambda line: line.replace(",", ",abc,", 1).rsplit(",", 1)[0], ["line 4", "'abc' is not a number"]),
    (lambda line: line.rsplit(",", 1)[0] + ",256", ["line 4", "pixel783", "256 is outside 0–255"]),
    (lambda line: line.rsplit(",", 1)[0] + ",-1", ["line 4", "-1 is outside 0–255"]),
    (lambda line: "12" + line[1:], ["line 4: label 12 is outside 0–9"]),
    (lambda line: line.rsplit(",", 1)[0] + ",3.5", ["line 4", "3.5 is not a whole number"]),
])
def test_kaggle_bad_rows(tmp_path, edit, fragments):
    path = write_kaggle_csv(tmp_path / "train.csv", n=10)
    _edit_line(path, 4, edit)
    with pytest.raises(DataError) as exc:
        read_kaggle_csv(path)
    _one_line(exc, str(path), *fragments)


def test_kaggle_bad_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n")
    wrong_header = tmp_path / "wrong.csv"
    wrong_header.write_text("label,a,b\n1,2,3\n")
    for path, fragment in ((empty, "the file is empty"), (header_only, "no data rows"),
                           (wrong_header, "found 3 columns"),
                           (tmp_path / "absent.csv", "file not found")):
        with pytest.raises(DataError) as exc:
            read_kaggle_csv(path)
        _one_line(exc, str(path), fragment)


def _header_quoted(text: str) -> str:
    header, rest = text.split("\n", 1)
    return ",".join(f'"{name}"' for name in header.split(",")) + "\n" + rest


def _zipped(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # Kaggle's own download: train.csv in a zip
        archive.writestr("train.csv", text)
    return buffer.getvalue()


@pytest.mark.parametrize("name,transform", [
    ("bom.csv", lambda t: ("\ufeff" + t).encode()),  # spreadsheet programs' "CSV UTF-8"
    ("crlf.csv", lambda t: t.replace("\n", "\r\n").encode()),
    ("blank-end.csv", lambda t: (t + "\n\n\n").encode()),
    ("quoted.csv", lambda t: _header_quoted(t).encode()),  # R's write.csv
    ("train.csv.gz", lambda t: gzip.compress(t.encode())),
    ("train.zip", lambda t: _zipped(t)),
])
def test_kaggle_csv_as_users_have_it_reads_as_the_plain_file(tmp_path, name, transform):
    plain = write_kaggle_csv(tmp_path / "train.csv", n=30)
    (tmp_path / name).write_bytes(transform(plain.read_text()))
    assert np.array_equal(read_kaggle_csv(tmp_path / name), read_kaggle_csv(plain))


@pytest.mark.parametrize("content,fragment", [
    (b"\x1f\x8b\x08\x00broken", "gzip data that does not decompress"),
    (b"PK\x03\x04broken", "a zip archive that does not open"),
    (bytes(range(256)) * 4, "binary data, not CSV text"),
])
def test_kaggle_csv_that_is_not_csv_text_says_what_it_is(tmp_path, content, fragment):
    path = tmp_path / "train.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as exc:
        read_kaggle_csv(path)
    _one_line(exc, str(path), fragment)


def test_kaggle_csv_names_nan_cells_and_inner_blank_lines(tmp_path):
    path = write_kaggle_csv(tmp_path / "train.csv", n=10)
    _edit_line(path, 4, lambda line: line.rsplit(",", 1)[0] + ",NaN")
    with pytest.raises(DataError) as exc:
        read_kaggle_csv(path)
    _one_line(exc, "line 4", "pixel783", "'NaN' is a missing value (NaN)")
    path = write_kaggle_csv(tmp_path / "train.csv", n=10)
    _edit_line(path, 4, lambda line: "")
    with pytest.raises(DataError) as exc:
        read_kaggle_csv(path)
    _one_line(exc, "line 4 is blank")


def test_a_file_changed_under_its_old_size_and_mtime_is_read_again(tmp_path):
    """cp -p, rsync -t, tar x and touch -r give a changed file its old modification time: the
    data a run trains on, and the digest it logs, must still be the new bytes'."""
    path = write_kaggle_csv(tmp_path / "train.csv", n=30)
    cfg = DataConfig(name="kaggle_csv", path=str(path))
    before = load_dataset(cfg)
    stat = path.stat()
    text = path.read_text()
    swapped = text.replace("\n0,", "\n9,", 1)  # one label changed, the size kept
    assert len(swapped) == len(text) and swapped != text
    path.write_text(swapped)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # touch -r
    after = load_dataset(cfg)
    assert after.y_train[0] == 9 and before.y_train[0] == 0
    assert after.digest != before.digest


def test_kaggle_missing_file_is_one_clear_message(tmp_path):
    with pytest.raises(DataError) as exc:
        load_dataset(DataConfig(name="kaggle_csv", path=str(tmp_path / "nope.csv")))
    _one_line(exc, "nope.csv: file not found", "data.path")


def test_kaggle_test_csv_is_refused_for_training(tmp_path):
    path = write_kaggle_csv(tmp_path / "test.csv", labeled=False)
    with pytest.raises(DataError, match="unlabeled test.csv"):
        load_dataset(DataConfig(name="kaggle_csv", path=str(path)))


# ---- splits and scaling ---------------------------------------------------------------------

def _split(cfg, seed=0):
    return make_split(load_dataset(cfg), cfg, seed_streams(seed).split)


def test_digits_stratified_split_is_seeded_and_disjoint():
    cfg = DataConfig()
    a, b, c = _split(cfg, 0), _split(cfg, 0), _split(cfg, 1)
    assert a.sizes() == {"train": 1293, "val": 144, "test": 360}
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.x_train.dtype == np.float32 and a.x_train.max() == 1.0
    rows = {r.tobytes() for r in np.concatenate([a.x_train, a.x_val, a.x_test])}
    assert len(rows) >= 1790  # the few duplicate images of load_digits aside, no row twice


def test_nielsen_last_validation_and_first_n(tmp_path):
    root = write_idx_set(tmp_path / "m", n_train=100)
    cfg = DataConfig(name="mnist", root=str(root), val_mode="last", val_size=20, train_limit=30)
    split = _split(cfg)
    ds = load_dataset(cfg)
    assert split.sizes() == {"train": 30, "val": 20, "test": 40}
    np.testing.assert_array_equal(split.y_val, ds.y_train[80:])
    np.testing.assert_array_equal(split.y_train, ds.y_train[:30])


def test_bernoulli_split_of_the_seed(tmp_path):
    path = write_kaggle_csv(tmp_path / "train.csv", n=1000)
    cfg = DataConfig(name="kaggle_csv", path=str(path), test_split="bernoulli", val_mode="none",
                     scale="raw")
    split = _split(cfg)
    assert 740 < split.sizes()["train"] < 860 and split.sizes()["val"] == 0
    assert split.sizes()["train"] + split.sizes()["test"] == 1000
    assert split.x_train.max() == 230  # raw pixels, as the blog network feeds them


@pytest.mark.parametrize("scale,low,high", [("unit", 0, 1), ("rashid", 0.01, 1.0),
                                            ("minmax", 0, 1), ("raw", 0, 16)])
def test_scalings(scale, low, high):
    split = _split(DataConfig(scale=scale))
    assert split.x_train.min() == pytest.approx(low, abs=1e-6)
    assert split.x_train.max() == pytest.approx(high, abs=1e-6)


def test_standardisation_uses_training_rows_only():
    split = _split(DataConfig(scale="standard"))
    means = split.x_train.mean(axis=0)
    assert np.abs(means).max() < 1e-5  # exactly centred on the training rows...
    assert np.abs(split.x_test.mean(axis=0)).max() > 1e-3  # ...and not on the test rows


@pytest.mark.parametrize("kw", [{}, {"val_mode": "stratified", "val_size": 0.25}])
def test_a_cached_split_is_the_split_scikit_learn_gives(tmp_path, kw):
    from sklearn.model_selection import train_test_split

    cfg = DataConfig(cache_dir=str(tmp_path), **kw)
    ds = load_dataset(cfg)
    first = make_split(ds, cfg, seed_streams(3).split)
    assert list((tmp_path / "splits").glob("*.npz"))  # the row indices, cached
    again = make_split(ds, cfg, seed_streams(3).split)
    rng = seed_streams(3).split
    _, x_test, _, y_test = train_test_split(
        ds.x_train, ds.y_train, test_size=cfg.test_size, stratify=ds.y_train,
        random_state=int(rng.integers(2**31 - 1)))
    assert np.array_equal(first.raw_test, x_test) and np.array_equal(again.raw_test, x_test)
    assert np.array_equal(first.y_test, y_test) and np.array_equal(again.y_test, y_test)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    other = make_split(ds, cfg, seed_streams(4).split)  # another seed, another split
    assert not np.array_equal(other.y_test, first.y_test)


def test_a_damaged_split_cache_is_split_again(tmp_path):
    cfg = DataConfig(cache_dir=str(tmp_path))
    ds = load_dataset(cfg)
    first = make_split(ds, cfg, seed_streams(0).split)
    for cached in (tmp_path / "splits").glob("*.npz"):
        cached.write_bytes(b"PK\x03\x04 not a zip")
    again = make_split(ds, cfg, seed_streams(0).split)
    assert np.array_equal(first.y_test, again.y_test)
    assert np.array_equal(first.x_train, again.x_train)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_scaling_gives_the_bits_of_the_cast_rows_times_the_factor_plus_the_shift(dtype):
    from digitlab.data.split import SCALERS

    x = np.random.default_rng(0).integers(0, 256, (50, 64)).astype(np.uint8)
    for name, make in SCALERS.items():
        scaling = make(x, 255.0)
        expected = np.asarray(x, dtype=dtype) * scaling.factor.astype(dtype)
        expected += scaling.shift.astype(dtype)
        got = scaling(x, dtype)
        assert got.dtype == np.dtype(dtype) and np.array_equal(got, expected), name


def test_a_file_replaced_while_it_is_parsed_is_cached_under_the_bytes_parsed(tmp_path):
    """The cache parses the bytes it hashed: a file swapped between the two never puts one
    file's array under the other's key (a later run on the first file would train on the
    second and log its digest)."""
    from digitlab.data.cache import cached_array

    first = write_kaggle_csv(tmp_path / "train.csv", n=30, seed=0).read_bytes()
    second = write_kaggle_csv(tmp_path / "other.csv", n=30, seed=1).read_bytes()
    path = tmp_path / "train.csv"

    def swapped_while_parsing(p, raw):
        path.write_bytes(second)  # replaced once the cache has read it
        return read_kaggle_csv(p, raw=raw)

    array, digest = cached_array(path, swapped_while_parsing, str(tmp_path / "cache"))
    assert np.array_equal(array, read_kaggle_csv(tmp_path / "train.csv", raw=first))
    path.write_bytes(first)
    again, again_digest = cached_array(path, lambda p, raw: pytest.fail("parsed twice"),
                                       str(tmp_path / "cache"))
    assert np.array_equal(again, array) and again_digest == digest
    path.write_bytes(second)
    other, other_digest = cached_array(path, lambda p, raw: read_kaggle_csv(p, raw=raw),
                                       str(tmp_path / "cache"))
    assert other_digest != digest
    assert np.array_equal(other, read_kaggle_csv(tmp_path / "other.csv"))


@pytest.mark.parametrize("ending", ["\r", "\r\n"])
def test_a_csv_with_cr_or_crlf_line_endings_reads_as_lf(tmp_path, ending):
    lf = write_kaggle_csv(tmp_path / "lf.csv", n=20)
    other = tmp_path / "other.csv"
    other.write_bytes(lf.read_bytes().replace(b"\n", ending.encode()))
    assert np.array_equal(read_kaggle_csv(other), read_kaggle_csv(lf))
