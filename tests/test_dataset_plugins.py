"""A user's data: register_dataset, file: datasets (.npz, .csv, .parquet), check_dataset, scikit-learn tables."""

import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

import losslab
from losslab.cli import main
from losslab.data import DATASETS, VALIDATION_SEED, load_dataset, register_dataset
from losslab.data.checks import check_dataset, stratified_split
from losslab.experiments.spec import SpecError, load_spec


@pytest.fixture
def registry(clean_registries):
    return DATASETS


def arrays(n_train=60, n_test=30, k=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y_train, y_test = np.arange(n_train) % k, np.arange(n_test) % k
    centres = rng.normal(0, 3, (k, d))
    return {
        "x_train": centres[y_train] + rng.normal(0, 1, (n_train, d)),
        "y_train": y_train,
        "x_test": centres[y_test] + rng.normal(0, 1, (n_test, d)),
        "y_test": y_test,
    }


# --- register_dataset ---------------------------------------------------------------------------------


def test_a_registered_loader_of_numpy_arrays_is_checked_split_and_standardised(registry):
    def my_data(seed=0, n_train=60):
        return {**arrays(n_train=n_train, seed=seed), "class_names": ["a", "b", "c"]}

    entry = losslab.register_dataset("my_data", my_data, summary="three Gaussian blobs")
    assert DATASETS["my_data"] is entry and entry.options == {"seed", "n_train"} and entry.origin == __name__
    ds = load_dataset("my_data", n_train=90)
    assert ds.class_names == ("a", "b", "c") and ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.x_train.shape == (68, 4) and ds.x_val.shape == (22, 4) and ds.x_test.shape == (30, 4)  # 22 = 90 // 4
    assert torch.bincount(ds.y_val).tolist() == [8, 7, 7]  # stratified
    torch.testing.assert_close(ds.x_train.mean(0), torch.zeros(4), atol=1e-6, rtol=0)
    assert ds.provenance["validation_seed"] == VALIDATION_SEED and ds.provenance["standardised"] == "per feature"
    with pytest.raises(
        ValueError, match=r"dataset 'my_data': unknown option\(s\) \['colour'\]; valid options: n_train, seed$"
    ):
        load_dataset("my_data", colour=1)


def test_a_loader_may_return_tensors_or_a_dataset(registry):
    def as_tensors():
        return {k: torch.as_tensor(v) for k, v in arrays().items()}

    register_dataset("tensors", as_tensors)
    plain = load_dataset("tensors", validation=0)
    assert plain.x_train.shape == (60, 4) and plain.x_val.shape == (0, 4)
    register_dataset("dataset", lambda: plain)
    again = load_dataset("dataset", validation=0)
    torch.testing.assert_close(again.x_train, plain.x_train, atol=1e-6, rtol=0)  # standardising twice is harmless


def test_register_dataset_rejects_bad_input(registry):
    with pytest.raises(ValueError, match=r"dataset name 'my data' is not valid; use letters, digits"):
        register_dataset("my data", lambda: None)
    with pytest.raises(ValueError, match=r"dataset 'digits' is already registered \(built-in\); choose another name"):
        register_dataset("digits", lambda: None)
    with pytest.raises(ValueError, match=r"dataset 'x': loader must be a function returning a Dataset or a mapping"):
        register_dataset("x", arrays())
    with pytest.raises(ValueError, match=r"dataset 'x': options \['size'\] are not parameters of the loader"):
        register_dataset("x", lambda seed=0: None, options=["seed", "size"])
    with pytest.raises(ValueError, match=r"dataset 'x': \['validation'\] are options of load_dataset itself"):
        register_dataset("x", lambda validation=0.1: None)
    register_dataset("digits", lambda: arrays(), replace=True)
    assert load_dataset("digits").num_classes == 3


def test_a_failing_loader_is_one_line_naming_its_file_and_line(registry):
    def broken():
        return {"x_train": np.zeros((4, 2))}["y_train"]

    register_dataset("broken", broken)
    with pytest.raises(
        ValueError,
        match=r"dataset 'broken': the loader raised KeyError: 'y_train' \(.*test_dataset_plugins.py, line \d+\)",
    ):
        load_dataset("broken")


# --- check_dataset: every failure one line, naming the split, the feature and the fix -------------------


def bad(**changes):
    data = arrays()
    data.update(changes)
    return data


NAN_FEATURES = bad(x_test=np.where((np.arange(30)[:, None] % 5 == 0) & (np.arange(4) == 2), np.nan, 1.0))


@pytest.mark.parametrize(
    "data, message",
    [
        (
            bad(y_test=np.arange(30) % 4),
            r"dataset 'mine': class 3 \('3'\) has 0 training example\(s\); every class needs at least 2 in the training split \(labels\): relabel the classes 0..K-1 without gaps",
        ),
        (
            {**bad(y_test=np.arange(30) % 4), "class_names": ["a", "b", "c"]},
            r"dataset 'mine': y_test \(labels\) has label 3 at example 3, outside \[0, 2\]: class_names lists 3 classes; labels must be 0..2",
        ),
        (
            bad(y_train=np.arange(60) % 3 - 1),
            r"dataset 'mine': y_train \(labels\) has label -1 at example 0; labels are class indices 0..K-1",
        ),
        (
            NAN_FEATURES,
            r"dataset 'mine': x_test has 6 NaN/inf value\(s\), 6 in feature 2 \(first at example 0\); remove or impute them before training",
        ),
        (
            bad(x_train=np.full((60, 4), np.inf)),
            r"x_train has 240 NaN/inf value\(s\), 60 in feature 0 and 3 other feature\(s\)",
        ),
        (
            bad(x_train=np.array([["a"] * 4] * 60, dtype=object)),
            r"x_train has dtype object \(objects \(text or mixed values\)\); losslab needs numeric features",
        ),
        (
            bad(x_train=np.zeros(60)),
            r"x_train must have shape \[n_examples, features\.\.\.\], got shape \[60\]; a single feature per example is x.reshape\(-1, 1\)",
        ),
        (
            bad(y_train=np.zeros((60, 3))),
            r"y_train \(labels\) must be 1-D class indices of shape \[n_examples\], got shape \[60, 3\]; flatten it",
        ),
        (
            bad(y_train=np.arange(59) % 3),
            r"x_train has 60 examples but y_train has 59 labels; give one label per example",
        ),
        (
            bad(x_test=np.zeros((30, 5))),
            r"x_test has input shape \[5\] but x_train has \[4\]; every split needs the same features",
        ),
        (
            bad(y_train=np.zeros(60, dtype=int), y_test=np.zeros(30, dtype=int)),
            r"only one class \('0'\) in labels; a classifier needs at least 2",
        ),
        (
            bad(y_train=np.r_[np.arange(59) % 2, 2]),
            r"class 2 \('2'\) has 1 training example\(s\); every class needs at least 2 in the training split \(labels\): add examples or drop the class",
        ),
        (
            bad(y_train=np.full(60, 0.5)),
            r"y_train \(labels\) must hold whole-number class indices, got 0\.5 at example 0",
        ),
        (
            bad(y_train=np.array(["cat"] * 60)),
            r"y_train \(labels\) has dtype <U3; labels must be integer class indices 0..K-1",
        ),
        ({"x_train": np.zeros((3, 2))}, r"dataset 'mine': missing y_train, x_test, y_test \(got x_train\)"),
        ([1, 2], r"dataset 'mine': the loader returned a list; return a mapping with x_train"),
    ],
)
def test_check_dataset_failures_are_pinned(data, message):
    with pytest.raises(ValueError, match=message) as info:
        check_dataset(data, name="mine")
    assert "\n" not in str(info.value)


def test_check_dataset_accepts_numpy_lists_bools_and_whole_floats():
    data = bad(y_train=(np.arange(60) % 3).astype(float), x_train=np.ones((60, 4), dtype=bool).tolist())
    clean = check_dataset(data)
    assert clean["y_train"].dtype == np.int64 and clean["x_train"].dtype == np.float64
    assert clean["class_names"] == ("0", "1", "2")


def test_stratified_split_is_seeded_proportional_and_keeps_a_member_of_each_class():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 2)
    kept, taken = stratified_split(labels, 40, seed=1)
    assert len(taken) == 40 and np.bincount(labels[taken]).tolist() == [24, 15, 1]
    assert np.array_equal(np.sort(np.r_[kept, taken]), np.arange(82))
    assert np.array_equal(stratified_split(labels, 40, seed=1)[1], taken)
    assert not np.array_equal(stratified_split(labels, 40, seed=2)[1], taken)


# --- files ----------------------------------------------------------------------------------------------


def test_an_npz_file_by_absolute_or_relative_path(tmp_path, monkeypatch):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays(), class_names=np.array(["x", "y", "z"]))
    ds = load_dataset(f"file:{path}")
    assert ds.name == "file:data.npz" and ds.class_names == ("x", "y", "z")
    assert ds.provenance["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    monkeypatch.chdir(tmp_path)
    assert torch.equal(load_dataset("file:data.npz").x_train, ds.x_train)
    with pytest.raises(
        ValueError,
        match=r"dataset 'file:data.npz': unknown option\(s\) \['seed'\]; valid options: none \(a .npz file carries its own split\)",
    ):
        load_dataset("file:data.npz", seed=1)
    with pytest.raises(ValueError, match=r"dataset 'file:missing.npz': no file missing.npz; check the path"):
        load_dataset("file:missing.npz")
    (tmp_path / "data.txt").write_text("1,2\n")
    with pytest.raises(ValueError, match=r"dataset 'file:data.txt': data.txt is not a .npz, .csv or .parquet file"):
        load_dataset("file:data.txt")
    np.savez(tmp_path / "extra.npz", **arrays(), weights=np.ones(3))
    with pytest.raises(ValueError, match=r"extra.npz: unexpected array\(s\) \['weights'\]; a .npz dataset holds"):
        load_dataset("file:extra.npz")


def test_an_npz_with_labels_out_of_range_names_the_file(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, **bad(y_test=np.arange(30) % 3 + 5), class_names=np.array(["x", "y", "z"]))
    with pytest.raises(ValueError, match=rf"^{path}: y_test \(labels\) has label 5 at example 0, outside \[0, 2\]"):
        load_dataset(f"file:{path}")


def table(n=40, seed=0):
    rng = np.random.default_rng(seed)
    species = np.array(["setosa", "versicolor"])[np.arange(n) % 2]
    return pd.DataFrame(
        {"width": rng.normal(size=n) + (species == "setosa") * 3, "height": rng.normal(size=n), "species": species}
    )


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_a_population_on_a_data_file_equals_the_plain_loop_float64(tmp_path, suffix):
    """Data from a file trains like built-in data: every member equals the same network trained alone,
    the plain way (nn.Module + torch.optim + autograd), in float64."""
    from losslab.train import Member, TrainConfig, train_population
    from losslab.train.reference import train_reference

    path = tmp_path / f"data{suffix}"
    if suffix == ".npz":
        np.savez(path, **arrays(n_train=120, n_test=45))
    else:
        frame = table(n=160)
        frame["label"] = frame.pop("species")
        frame.to_csv(path, index=False)
    data = load_dataset(f"file:{path}", validation=0)
    members = [Member("cross_entropy", seed=0, lr=0.05), Member("mse", seed=1, lr=0.5, init_scale=3.0)]
    config = TrainConfig(model="mlp", hidden=[8], epochs=3, batch_size=20, dtype="float64")
    result = train_population(data, members, config, progress=False)
    final = result.frame[result.frame.step == result.frame.step.max()]
    for i, member in enumerate(members):
        plain, accuracy = train_reference(data, member, config)
        linears = [m for m in plain if isinstance(m, torch.nn.Linear)]
        for (w, b), layer in zip(result.model.member_layers(i), linears):
            torch.testing.assert_close(w, layer.weight.detach().T, rtol=1e-9, atol=1e-11)
            torch.testing.assert_close(b, layer.bias.detach()[None], rtol=1e-9, atol=1e-11)
        assert final[final.member == i].test_accuracy.item() == pytest.approx(accuracy, abs=1e-12)


def test_a_csv_with_text_labels_and_a_seeded_stratified_split(tmp_path):
    path = tmp_path / "flowers.csv"
    table().to_csv(path, index=False)
    ds = load_dataset(f"file:{path}", label="species", validation=0)
    assert ds.class_names == ("setosa", "versicolor") and ds.x_train.shape == (30, 2) and ds.x_test.shape == (10, 2)
    assert torch.bincount(ds.y_test).tolist() == [5, 5]
    assert ds.provenance["features"] == ["width", "height"] and ds.provenance["split"] == "stratified"
    other = load_dataset(f"file:{path}", label="species", validation=0, seed=3, test_fraction=0.5)
    assert other.x_test.shape == (20, 2)
    with pytest.raises(
        ValueError,
        match=rf"{path}: no label column 'label'; columns are: width, height, species; name the label column",
    ):
        load_dataset(f"file:{path}")


def test_a_csv_or_parquet_split_column_fixes_the_split(tmp_path):
    frame = table()
    frame["split"] = np.where(np.arange(40) < 30, "train", "test")
    for path in (tmp_path / "d.csv", tmp_path / "d.parquet"):
        frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)
        ds = load_dataset(f"file:{path}", label="species", validation=0)
        assert ds.x_train.shape == (30, 2) and ds.x_test.shape == (10, 2)
        assert ds.provenance["split"] == "column 'split'" and ds.provenance["format"] == path.suffix[1:]
    with pytest.raises(
        ValueError, match=r"the split column 'split' fixes the test split, so test_fraction and seed do not apply"
    ):
        load_dataset(f"file:{tmp_path / 'd.csv'}", label="species", seed=1)
    frame["split"] = np.where(np.arange(40) < 30, "train", "holdout")
    frame.to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(
        ValueError, match=r"e.csv: split column 'split' has value\(s\) \['holdout'\]; use 'train' or 'test'"
    ):
        load_dataset(f"file:{tmp_path / 'e.csv'}", label="species")


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda f: f.assign(colour="red"),
            r"bad.csv: column 'colour' is not numeric \(values such as 'red'\); encode it as numbers or drop the column",
        ),
        (
            lambda f: f.assign(height=np.where(np.arange(40) == 6, np.nan, f.height)),
            r"bad.csv: column 'height' has 1 empty, NaN or infinite value\(s\) \(first on line 8\); fill them in or drop those rows",
        ),
        (
            lambda f: f.assign(species=np.where(np.arange(40) == 2, None, f.species)),
            r"bad.csv: label column 'species' has 1 empty value\(s\) \(first on line 4\)",
        ),
        (
            lambda f: f.assign(species=np.arange(40) % 2 + 3),
            r"bad.csv: class 0 \('0'\) has 0 training example\(s\) \(and 2 other class\(es\)\); every class needs at least 2 in the training split \(column 'species'\): relabel the classes 0..K-1 without gaps",
        ),
        (lambda f: f[["species"]], r"bad.csv: no feature columns besides 'species'; add at least one numeric column"),
    ],
)
def test_bad_csv_files_name_the_file_column_and_line(tmp_path, edit, message):
    path = tmp_path / "bad.csv"
    edit(table()).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message) as info:
        load_dataset(f"file:{path}", label="species")
    assert "\n" not in str(info.value)


# --- scikit-learn tables, specs, the CLI ----------------------------------------------------------------


@pytest.mark.parametrize("name, k, d, n", [("iris", 3, 4, 150), ("wine", 3, 13, 178), ("breast_cancer", 2, 30, 569)])
def test_scikit_learn_tables_by_name(name, k, d, n):
    ds = load_dataset(name, seed=0)
    assert ds.num_classes == k and ds.input_shape == (d,)
    assert ds.x_train.shape[0] + ds.x_val.shape[0] + ds.x_test.shape[0] == n
    assert ds.x_test.shape[0] == round(0.25 * n) or ds.x_test.shape[0] == int(np.ceil(0.25 * n))
    assert set(torch.unique(ds.y_val).tolist()) == set(range(k))  # stratified: every class held out
    assert not torch.equal(load_dataset(name, seed=1).x_test, ds.x_test)


SPEC = """
name = "mine"
[train]
model = "linear"
epochs = 1
batch_size = 16
[[grid]]
label = "own"
dataset = "{dataset}"
dataset_options = {options}
losses = ["cross_entropy", "squentropy"]
seeds = 1
"""


def write_spec(folder, dataset, options="{}"):
    path = folder / "spec.toml"
    path.write_text(textwrap.dedent(SPEC.format(dataset=dataset, options=options)), encoding="utf-8")
    return path


def test_a_spec_names_a_file_relative_to_its_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "mine.npz", **arrays())
    monkeypatch.chdir("/")  # the path is found from the spec's folder, not the current one
    spec = load_spec(write_spec(tmp_path, "file:data/mine.npz"))
    (cell,) = spec.cells()
    assert cell.dataset == f"file:{tmp_path / 'data' / 'mine.npz'}"
    with pytest.raises(
        SpecError,
        match=r"spec.toml: grid\[0\].dataset: dataset 'file:data/other.npz': no file .*other.npz \(relative to .*\); check the path",
    ):
        load_spec(write_spec(tmp_path, "file:data/other.npz"))
    with pytest.raises(
        SpecError, match=r"grid\[0\].dataset_options: unknown key\(s\) \['label'\]; valid keys: standardise, validation"
    ):
        load_spec(write_spec(tmp_path, "file:data/mine.npz", '{ label = "y" }'))
    table().to_csv(tmp_path / "data" / "t.csv", index=False)
    spec = load_spec(write_spec(tmp_path, "file:data/t.csv", '{ label = "species", validation = 0.2 }'))
    assert spec.cells()[0].dataset_options == {"label": "species", "validation": 0.2}


def test_run_a_spec_on_an_npz_and_bad_data_exits_2_in_one_line(tmp_path, capsys):
    np.savez(tmp_path / "good.npz", **arrays())
    out = tmp_path / "results"
    assert main(["run", str(write_spec(tmp_path, "file:good.npz")), "--out", str(out)]) == 0
    capsys.readouterr()
    np.savez(tmp_path / "bad.npz", **bad(y_test=np.arange(30) % 3 + 5), class_names=np.array(["x", "y", "z"]))
    assert main(["run", str(write_spec(tmp_path, "file:bad.npz")), "--out", str(tmp_path / "bad-results")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.npz: y_test (labels) has label 5 at example 0, outside [0, 2]" in err


def test_list_shows_built_ins_and_plugins(tmp_path, capsys, registry, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # rich wraps to 80 columns when not on a terminal
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            """
            import numpy as np
            import torch
            import losslab

            def tempered(z, y, t=2.0):
                return -(y * torch.log_softmax(z / t, dim=-1)).sum(dim=-1)

            def noise(seed=0):
                rng = np.random.default_rng(seed)
                return {"x_train": rng.normal(size=(20, 2)), "y_train": np.arange(20) % 2,
                        "x_test": rng.normal(size=(10, 2)), "y_test": np.arange(10) % 2}

            losslab.register_loss("tempered", values=tempered, summary="cross-entropy of softmax(z / t)")
            losslab.register_dataset("noise", noise, summary="two classes of pure noise")
            """
        ),
        encoding="utf-8",
    )
    assert main(["list", "losses", "--plugin", str(plugin)]) == 0
    out = capsys.readouterr().out
    assert "squentropy" in out and "tempered" in out and "my_plugin.py" in out and "t=2.0" in out
    assert main(["list", "datasets", "--plugin", str(plugin)]) == 0
    out = capsys.readouterr().out
    assert "iris" in out and "noise" in out and "file:PATH" in out
    assert main(["list", "models"]) == 0
    assert "mlp" in capsys.readouterr().out
    assert main(["list", "datasets", "--plugin", str(tmp_path / "nope.py")]) == 2
    assert "plugin file" in capsys.readouterr().err
