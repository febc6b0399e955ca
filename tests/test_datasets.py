import gzip
import shutil

import numpy as np
import pytest
import torch

from losslab.data import DATA_ENV, VALIDATION_SEED, load_dataset, read_idx, validation_size


def test_digits_split_is_stratified_and_standardised_on_train_only():
    ds = load_dataset("digits", seed=0)
    # 1,347 training examples before the validation split: 336 = max(round(0.1 x 1347), 1347 // 4) held out.
    assert ds.x_train.shape == (1011, 64) and ds.x_val.shape == (336, 64) and ds.x_test.shape == (450, 64)
    assert ds.num_classes == 10
    per_class = torch.bincount(torch.cat([ds.y_train, ds.y_val, ds.y_test]), minlength=10)
    counts = torch.bincount(ds.y_test, minlength=10)
    assert ((counts - per_class * 0.25).abs() <= 1).all()  # stratified: each class keeps its share
    train_counts = torch.bincount(torch.cat([ds.y_train, ds.y_val]), minlength=10)
    val_counts = torch.bincount(ds.y_val, minlength=10)
    assert ((val_counts - train_counts * 336 / 1347).abs() <= 1).all()  # the validation split too
    nonconstant = ds.x_train.std(0) > 0
    torch.testing.assert_close(ds.x_train.mean(0), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        ds.x_train.std(0, unbiased=False)[nonconstant], torch.ones(int(nonconstant.sum())), atol=1e-4, rtol=0
    )
    assert ds.x_test.mean(0).abs().max() > 1e-3  # test statistics were not used
    assert ds.x_val.mean(0).abs().max() > 1e-3  # nor the validation split's: carved before standardising
    assert ds.provenance["statistics_from"] == "train (after the validation split)"
    assert ds.provenance["validation_seed"] == VALIDATION_SEED and ds.provenance["n_val"] == 336
    assert torch.equal(load_dataset("digits", seed=0).x_train, ds.x_train)  # fixed split
    assert not torch.equal(load_dataset("digits", seed=1).x_train, ds.x_train)


def test_validation_split_sizes_and_switching_it_off():
    assert [validation_size(0.1, n) for n in (0, 100, 1347, 4000, 60000)] == [0, 25, 336, 1000, 6000]
    assert validation_size(0.0, 60000) == 0
    none = load_dataset("digits", validation=0)
    assert none.x_train.shape == (1347, 64) and none.x_val.shape == (0, 64) and none.y_val.shape == (0,)
    bigger = load_dataset("digits", validation=0.4)
    assert bigger.x_val.shape[0] == round(0.4 * 1347)
    # The held-out examples are training examples of the unsplit set, and none is used twice.
    full = load_dataset("digits", validation=0).x_train
    half = load_dataset("digits")
    assert full.shape[0] == half.x_train.shape[0] + half.x_val.shape[0]
    for bad in (0.5, -0.1, "0.1", True):
        with pytest.raises(ValueError, match=r"validation must be a fraction in \[0, 0\.5\) of the training split"):
            load_dataset("digits", validation=bad)


def test_mnist1d_is_generated_offline_with_the_reference_sizes():
    ds = load_dataset("mnist1d", validation=0)
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40) and ds.num_classes == 10
    assert torch.bincount(ds.y_train).min() > 300
    split = load_dataset("mnist1d")
    assert split.x_train.shape == (3000, 40) and split.x_val.shape == (1000, 40)


def test_blobs_have_any_number_of_classes():
    ds = load_dataset("blobs", num_classes=37, train_per_class=10, test_per_class=5, num_features=8)
    assert ds.num_classes == 37 and ds.x_test.shape == (185, 8)
    assert ds.x_train.shape[0] + ds.x_val.shape[0] == 370 and ds.x_val.shape[0] == 370 // 4
    assert torch.bincount(torch.cat([ds.y_train, ds.y_val])).tolist() == [10] * 37
    assert torch.bincount(ds.y_train).min() >= 7  # 2 or 3 of each class held out, never all


def test_binary_subset_relabels():
    ds = load_dataset("digits", classes=[3, 8])
    assert ds.name == "digits[3,8]" and ds.class_names == ("3", "8") and set(ds.y_train.tolist()) == {0, 1}
    assert set(ds.y_val.tolist()) == {0, 1}  # the validation split keeps the same classes, relabelled
    full = load_dataset("digits")
    assert ds.x_val.shape[0] == int(((full.y_val == 3) | (full.y_val == 8)).sum())
    with pytest.raises(ValueError, match=r"classes \[12\] are not in dataset 'digits', which has classes 0\.\.9"):
        load_dataset("digits", classes=[1, 12])
    with pytest.raises(ValueError, match=r"classes must list at least 2 distinct class indices, got \[1, 1\]"):
        load_dataset("digits", classes=[1, 1])


def test_unknown_dataset_and_option():
    with pytest.raises(
        ValueError, match=r"unknown dataset 'cifar10'; valid datasets: digits, iris, wine, breast_cancer"
    ):
        load_dataset("cifar10")
    with pytest.raises(
        ValueError, match=r"dataset 'digits': unknown option\(s\) \['colour'\]; valid options: seed, test_fraction$"
    ):
        load_dataset("digits", colour=True)


def test_mnist_from_the_shared_idx_files(shared_data):
    ds = load_dataset("mnist", data_dir=shared_data, validation=0)
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]  # the well-known first MNIST labels
    assert ds.provenance["standardised"] == "one scalar"
    assert ds.provenance["sha256_verified"] is True
    fashion = load_dataset("fashion-mnist", data_dir=shared_data)
    assert fashion.class_names[9] == "Ankle boot" and fashion.y_test.shape == (10000,)


def test_data_dir_from_the_environment(shared_data, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(shared_data))
    assert load_dataset("mnist").x_test.shape[0] == 10000


def test_missing_files_name_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(
        FileNotFoundError, match=r"dataset 'mnist' needs its IDX files: pass data_dir .* set LOSSLAB_DATA"
    ):
        load_dataset("mnist")
    with pytest.raises(FileNotFoundError, match=r"dataset 'fashion-mnist': missing file train-images-idx3-ubyte.gz in"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


def test_corrupt_and_truncated_files_are_errors(shared_data, tmp_path):
    source = shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz"
    digest = "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
    assert read_idx(source, digest).shape == (10000,)
    corrupt = tmp_path / "corrupt.gz"
    data = bytearray(source.read_bytes())
    data[100] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"corrupt.gz: SHA-256 is [0-9a-f]{64}, expected f7ae60f9.*download it again"):
        read_idx(corrupt, digest)
    with pytest.raises(ValueError, match=r"not a readable gzip file"):
        read_idx(corrupt)  # without the checksum the gzip CRC still catches it
    raw = gzip.decompress(source.read_bytes())
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(ValueError, match=r"truncated or padded IDX file: header says \(10000,\) = 10000 bytes"):
        read_idx(truncated)
    not_idx = tmp_path / "not-idx.gz"
    not_idx.write_bytes(gzip.compress(b"\x01\x02\x03\x04hello"))
    with pytest.raises(ValueError, match=r"not a uint8 IDX file"):
        read_idx(not_idx)
    # A folder with one corrupted file fails the whole dataset before any parsing.
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for f in (shared_data / "mnist").iterdir():
        shutil.copy(f, folder / f.name)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: SHA-256 is"):
        load_dataset("mnist", data_dir=tmp_path / "data")
    assert np.array_equal(read_idx(source)[:5], [7, 2, 1, 0, 4])


def test_standardise_false_keeps_the_loaders_inputs():
    raw = load_dataset("mnist1d", validation=0, standardise=False)
    scaled = load_dataset("mnist1d", validation=0)
    from mnist1d.data import get_dataset_args, make_dataset

    reference = make_dataset(get_dataset_args())  # the MNIST-1D authors' own arrays, as their training reads them
    assert torch.equal(raw.x_train, torch.as_tensor(reference["x"], dtype=torch.float32))
    assert raw.provenance["standardised"] == "no" and scaled.provenance["standardised"] == "per feature"
    assert abs(float(scaled.x_train.mean())) < 1e-5
    with pytest.raises(ValueError, match=r"standardise must be true or false, got 'no'"):
        load_dataset("digits", standardise="no")
