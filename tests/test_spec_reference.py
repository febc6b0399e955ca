"""A researcher's first hour: losslab init, the spec reference (docs/spec.md), losslab schema, KEY=VALUE overrides."""

import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest

from losslab.cli import main
from losslab.commands import run_command
from losslab.experiments import runner
from losslab.experiments.spec import SpecError, builtin_specs, load_spec
from losslab.experiments.spec_docs import json_schema, reference_markdown, starter_spec
from losslab.experiments.spec_keys import GRID_PARAMS, ROLES, SPEC_TRAIN_PARAMS, TOP_PARAMS

ROOT = Path(__file__).resolve().parents[1]
TINY = """
name = "tiny"
[train]
epochs = 1
batch_size = 20
model = "linear"
[[grid]]
label = "a"
dataset = "digits"
classes = [0, 1]
losses = ["mse", "binary_cross_entropy"]
lrs = { mse = [1.0], binary_cross_entropy = [0.1] }
seeds = 2
train = { epochs = 2 }
[[grid]]
label = "b"
dataset = "blobs"
dataset_options = { num_classes = [3, 4], train_per_class = 20, test_per_class = 10 }
losses = ["cross_entropy", { name = "square_logits", k = 2.0 }]
seeds = [7]
[sizes.smoke]
seeds = 1
train = { epochs = 1 }
"""


def example_specs() -> list[Path]:
    return sorted(builtin_specs().values()) + sorted((ROOT / "examples").rglob("*.toml"))


# --- the reference ------------------------------------------------------------------------------------


def test_docs_spec_md_is_generated_from_the_declarations():
    path = ROOT / "docs" / "spec.md"
    assert path.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/spec.md is out of date; run: losslab schema --markdown --out docs/spec.md"
    )


def test_the_reference_lists_every_key_and_role_with_its_default():
    text = reference_markdown()
    sections = {part.split("\n", 1)[0]: part for part in text.split("\n## ")}
    for title, params in (("Top level", TOP_PARAMS), ("`[train]`", SPEC_TRAIN_PARAMS), ("`[[grid]]`", GRID_PARAMS)):
        for name, p in params.items():
            rows = sections[title].splitlines()
            row = next((line for line in rows if line.startswith(f"| `{name}` |")), None)
            assert row is not None, (title, name)
            assert p.meaning.replace("|", "\\|") in row
    for role in ROLES:
        assert f"| `{role}` |" in text
    assert "| `margin` | an odds ratio >= 1" in text and "| `1.25` |" in text
    assert "cross_entropy where the grid trains it" in text  # the baseline's computed default
    assert "the report judges claim C4 from it" in text  # what a role makes the report do
    assert "README" not in text or "docs/spec.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_links_the_reference_and_shows_the_editor_hook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/spec.md" in readme and "#:schema" in readme
    for command in ("losslab init", "losslab schema", "KEY=VALUE"):
        assert command in readme


# --- the schema ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", example_specs(), ids=lambda p: p.name)
def test_every_built_in_and_example_spec_validates(validator, path):
    errors = [e.message for e in validator.iter_errors(tomllib.loads(path.read_text(encoding="utf-8")))]
    assert errors == []


@pytest.mark.parametrize(
    "change, unexpected",
    [
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["train"].update(epoch=3), "epoch"),
        (lambda d: d["grid"][0].update(losess=["mse"]), "losess"),
        (lambda d: d["grid"][1]["dataset_options"].update(num_clases=3), "num_clases"),
        (lambda d: d["sizes"]["smoke"].update(seed=1), "seed"),
        (lambda d: d["grid"][0].update(warmstart={"epoch": 3}), "epoch"),
    ],
)
def test_a_misspelt_key_does_not_validate(validator, change, unexpected):
    data = tomllib.loads(TINY)
    assert list(validator.iter_errors(data)) == []
    change(data)
    messages = [e.message for e in validator.iter_errors(data)]
    assert any(unexpected in m for m in messages), messages


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["train"].update(epochs=0),
        lambda d: d["grid"][0].update(margin=0.5),
        lambda d: d["grid"][0].update(role="saturation"),
        lambda d: d["grid"][1]["losses"][1].update(k=-1),
        lambda d: d["grid"][1]["dataset_options"].update(num_classes=[1]),
    ],
)
def test_a_bad_value_does_not_validate(validator, change):
    data = tomllib.loads(TINY)
    change(data)
    assert list(validator.iter_errors(data))


def test_losslab_schema_prints_and_writes_it(tmp_path, capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()
    assert main(["schema", "--markdown", "--out", str(tmp_path / "spec.md")]) == 0
    assert (tmp_path / "spec.md").read_text(encoding="utf-8") == reference_markdown()


# --- losslab init ------------------------------------------------------------------------------------------


def test_the_starter_spec_names_every_key_with_its_meaning_and_validates(validator):
    text = starter_spec()
    for params in (TOP_PARAMS, SPEC_TRAIN_PARAMS, GRID_PARAMS):
        for name, p in params.items():
            if name in ("train", "grid", "sizes") and params is TOP_PARAMS:
                continue  # written as the [train], [[grid]] and [sizes.smoke] tables
            assert re.search(rf"^(# )?{name} = ", text, re.M), name
            assert p.meaning in text, name
    assert list(validator.iter_errors(tomllib.loads(text))) == []


def test_init_writes_a_spec_that_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init", "first.toml"]) == 0
    assert "wrote first.toml" in capsys.readouterr().out
    spec = load_spec("first.toml")
    assert spec.name == "first" and spec.sizes == ["smoke"]
    assert len(spec.cells()[0].members) == 2 * 3 * 3  # 2 losses x 3 rates x 3 seeds, the defaults as written
    assert main(["run", "first.toml", "--smoke", "--out", "R"]) == 0
    manifest = json.loads((tmp_path / "R" / "manifest.json").read_text())
    assert [c["status"] for c in manifest["cells"]] == ["done"]


@pytest.mark.parametrize(
    "argv, setup, pattern",
    [
        (["init", "taken.toml"], lambda root: (root / "taken.toml").write_text("mine\n"), r"taken.toml already exists"),
        (["init", "spec.txt"], None, r"spec.txt: a spec file ends in .toml; give FILE.toml"),
        (["init", "nowhere/spec.toml"], None, r"FILE nowhere/spec.toml: folder nowhere does not exist; create it"),
        (["schema", "--out", "."], None, r"--out \. is a folder; give a file name"),
        (
            ["schema", "--out", "nowhere/s.json"],
            None,
            r"--out nowhere/s.json: folder nowhere does not exist; create it",
        ),
    ],
)
def test_bad_init_and_schema_input_is_one_line(tmp_path, monkeypatch, capsys, argv, setup, pattern):
    monkeypatch.chdir(tmp_path)
    if setup is not None:
        setup(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(pattern, err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if argv[1] == "taken.toml":
        assert (tmp_path / "taken.toml").read_text() == "mine\n"


# --- overrides -------------------------------------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.toml").write_text(TINY)
    return tmp_path


def test_overrides_set_train_keys_grid_keys_and_one_grid_and_win_over_a_size(tiny):
    spec = load_spec("tiny.toml", ["train.epochs=3", "seeds=4", "grid.b.lrs=[0.1,0.3]", "dataset_options.seed=2"])
    for size in (None, "smoke"):  # the size sets seeds and train.epochs too: the override wins there
        cells = spec.cells(size)
        assert {c.train.epochs for c in cells} == {3}  # grid a's own train table included
        assert {m.seed for c in cells for m in c.members} == {0, 1, 2, 3}
        assert {m.lr for m in cells[1].members} == {0.1, 0.3} and {c.dataset_options["seed"] for c in cells} == {2}
    assert spec.overrides == ("train.epochs=3", "seeds=4", "grid.b.lrs=[0.1,0.3]", "dataset_options.seed=2")
    assert spec.data["grid"][1]["lrs"] == [0.1, 0.3]  # the data the manifest records has them applied
    words = load_spec("tiny.toml", ["grid.a.role=loss-comparison", "description=a quick look"])
    assert words.grids()[0].role == "loss-comparison" and words.description == "a quick look"


def test_a_run_records_its_overrides_in_the_manifest_and_its_rerun_command(tiny, capsys):
    argv = ["run", "tiny.toml", "--smoke", "train.epochs=1", "--out", "R", "grid.b.lrs=[0.1, 0.3]"]
    assert main(argv) == 0
    manifest = json.loads((tiny / "R" / "manifest.json").read_text())
    assert manifest["overrides"] == ["train.epochs=1", "grid.b.lrs=[0.1, 0.3]"]
    assert manifest["command"] == "losslab run tiny.toml --smoke train.epochs=1 'grid.b.lrs=[0.1, 0.3]'"
    assert manifest["spec_data"]["grid"][1]["lrs"] == [0.1, 0.3]
    capsys.readouterr()
    assert main([*manifest["command"].split()[1:4], "train.epochs=1", "grid.b.lrs=[0.1, 0.3]", "--out", "R"]) == 0
    assert "3 already done" in capsys.readouterr().out  # the same overrides: the same cells, resumed


def test_run_command_quotes_what_the_shell_would_split():
    assert (
        run_command("s.toml", None, ["seeds=2", "grid.a.lrs=[0.1, 0.3]"])
        == "losslab run s.toml seeds=2 'grid.a.lrs=[0.1, 0.3]'"
    )


@pytest.mark.parametrize(
    "override, pattern",
    [
        ("train.epochs=0", r"tiny.toml: override train.epochs=0: must be a positive integer, got 0$"),
        (
            "train.epoch=3",
            r"tiny.toml: override train.epoch=3: unknown key\(s\) \['epoch'\] in train; valid keys: adam_eps",
        ),
        ("seeds=0", r"tiny.toml: override seeds=0: a count of seeds must be in \[1, 100000\], got 0"),
        ("margin=0.5", r"tiny.toml: override margin=0.5: must be an odds ratio >= 1"),
        ("grid.z.lrs=1", r"tiny.toml: override grid.z.lrs=1: no grid labelled 'z'; grid labels: a, b"),
        ("grid.b.baseline=focal", r"override grid.b.baseline=focal: 'focal' is not a loss of this grid"),
        ("grid.a.lrs.msee=[1]", r"override grid.a.lrs.msee=\[1\]: learning rates for \['msee'\], which is not a loss"),
        ("dataset_options.seed=-1", r"override dataset_options.seed=-1: must be an integer >= 0, got -1"),
        ("warmstart.epochs=3", r"override warmstart.epochs=3: no grid has a warmstart table; name one"),
        ("colour=blue", r"override colour=blue: unknown key 'colour'; valid keys: name, description, plugins, train"),
        ("epochs", r"override 'epochs': must be KEY=VALUE with a dotted KEY, e.g. train.epochs=3"),
        ("dataset=cifar", r"override dataset=cifar: unknown dataset 'cifar'; valid datasets:"),
    ],
)
def test_a_bad_override_is_one_line_naming_it_and_writes_nothing(tiny, monkeypatch, capsys, override, pattern):
    monkeypatch.setattr(runner, "train_population", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SpecError, match=pattern):
        load_spec("tiny.toml", [override])
    assert main(["run", "tiny.toml", override, "--smoke"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("losslab run: error: ") and re.search(pattern, err.strip()), err
    assert sorted(p.name for p in tiny.iterdir()) == ["tiny.toml"]


def test_an_unknown_option_after_the_spec_is_still_an_error(tiny, capsys):
    assert main(["run", "tiny.toml", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert main(["verify", "x=1"]) == 2  # only run takes overrides
    assert "unrecognized arguments: x=1" in capsys.readouterr().err


def test_a_swept_value_that_makes_an_unsafe_cell_id_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("x,label,b\n1,0,0\n2,1,0\n3,0,0\n4,1,0\n5,0,1\n6,1,1\n7,0,1\n8,1,1\n")
    (tmp_path / "s.toml").write_text(
        '[[grid]]\nlabel = "c"\ndataset = "file:data.csv"\nlosses = ["mse"]\ndataset_options = { label = ["a/b"] }\n'
    )
    with pytest.raises(SpecError, match=r"grid\[0\].dataset_options: the values .* make the cell id 'c-labela/b'"):
        load_spec(tmp_path / "s.toml")
