"""losslab.plugins: importing plugins from files and modules, resolving MODULE:FUNCTION, one-line errors."""

import ast
import hashlib
import sys
import textwrap

import pytest

from losslab import plugins


def write(path, text):
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_plugins_imports_nothing_from_losslab():
    tree = ast.parse(open(plugins.__file__, encoding="utf-8").read())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert imported and not [m for m in imported if m.split(".")[0] == "losslab"]


def test_a_file_is_imported_under_a_unique_name_without_touching_sys_path(tmp_path):
    path = write(
        tmp_path / "my_losses.py",
        """
        import torch

        def tempered_ce(z, y, t=2.0):
            return -(y * torch.log_softmax(z / t, dim=-1)).sum(dim=-1)
        """,
    )
    before = list(sys.path)
    fn, plugin = plugins.resolve_callable(f"{path}:tempered_ce")
    assert sys.path == before  # its folder is not left on sys.path
    assert plugin.kind == "file" and plugin.source == str(path) and plugin.path == str(path.resolve())
    assert plugin.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert plugin.module.startswith("losslab_plugin_my_losses_") and sys.modules[plugin.module].tempered_ce is fn
    assert plugins.PLUGINS[plugin.module] == plugin
    assert plugins.keyword_defaults(fn) == {"t": 2.0}
    # The same unchanged file is not executed twice (it would register its losses twice).
    again = plugins.import_plugin(str(path))
    assert again is plugin and sys.modules[plugin.module].tempered_ce is fn
    # Two files with the same name in different folders do not collide.
    (tmp_path / "sub").mkdir()
    other = write(tmp_path / "sub" / "my_losses.py", "X = 1\n")
    assert plugins.import_plugin(str(other)).module != plugin.module


def test_a_module_is_imported_by_name(tmp_path, monkeypatch):
    package = tmp_path / "mypkg"
    package.mkdir()
    write(package / "__init__.py", "")
    write(package / "losses.py", "def f(z, y):\n    return z.sum(-1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fn, plugin = plugins.resolve_callable("mypkg.losses:f")
    assert plugin.kind == "module" and plugin.module == "mypkg.losses" and fn.__name__ == "f"
    assert plugin.sha256 == hashlib.sha256((package / "losses.py").read_bytes()).hexdigest()
    assert plugins.origin_of("mypkg.losses") == "mypkg.losses"
    assert plugins.origin_of("losslab.core.losses") == "built-in"


@pytest.mark.parametrize(
    "name, ok", [("my_loss", True), ("fashion-mnist", True), ("a1", True), ("1a", False), ("_x", False), ("a b", False)]
)
def test_names_are_letters_digits_dash_underscore(name, ok):
    if ok:
        assert plugins.check_name("loss", name) == name
    else:
        with pytest.raises(ValueError, match=r"loss name .* is not valid; use letters, digits, '-' and '_', starting"):
            plugins.check_name("loss", name)


def test_bad_plugin_input_is_one_line_naming_the_file_and_line(tmp_path):
    def one_line(ref, match, fn=plugins.resolve_callable):
        with pytest.raises(ValueError, match=match) as info:
            fn(ref)
        assert "\n" not in str(info.value)
        return str(info.value)

    one_line(
        "no_such_module_xyz.losses:f",
        r"plugin module 'no_such_module_xyz.losses' not found \(no module named 'no_such_module_xyz'\); install it",
    )
    one_line(f"{tmp_path}/missing.py:f", r"plugin file '.*missing.py' does not exist \(looked at .*\); check the path")
    one_line("my_losses.py", r"expected MODULE:FUNCTION or path/to/file.py:FUNCTION, got 'my_losses.py'")
    write(tmp_path / "syntax.py", "def f(z, y):\n    return z +\n")
    one_line(
        f"{tmp_path}/syntax.py:f",
        r"plugin '.*syntax.py' failed to import: SyntaxError: invalid syntax \(.*syntax.py, line 2\); fix the plugin",
    )
    write(tmp_path / "imports.py", "import math\nimport numpyy_not_there\n")
    one_line(
        f"{tmp_path}/imports.py:f",
        r"failed to import: ModuleNotFoundError: No module named 'numpyy_not_there' \(.*imports.py, line 2\)",
    )
    write(tmp_path / "raises.py", "X = 1\n\n\ndef helper():\n    return 1 / 0\n\n\nhelper()\n")
    one_line(f"{tmp_path}/raises.py:f", r"ZeroDivisionError: division by zero \(.*raises.py, line 5\)")
    write(tmp_path / "defs.py", "LIMIT = 3\n\ndef good(z, y):\n    return z.sum(-1)\n\ndef other(z, y):\n    pass\n")
    one_line(f"{tmp_path}/defs.py:gooood", r"plugin '.*defs.py' has no 'gooood'; it defines: good, other$")
    one_line(f"{tmp_path}/defs.py:LIMIT", r"'.*defs.py:LIMIT' is a int, not a function; name a function")


def test_a_loss_function_must_accept_z_y_and_its_params():
    def one_argument(z):
        return z

    def good(z, y, t=1.0):
        return z

    def keyword_only(z, y, *, alpha):
        return z

    plugins.check_loss_signature(good, ["t"])
    with pytest.raises(
        ValueError,
        match=r"loss function 'test_a_loss_function_must_accept_z_y_and_its_params.<locals>.one_argument' \(.*test_plugins.py, "
        r"line \d+\) has signature \(z\), which cannot be called as \(z, y\) .*define it as def f\(z, y, \*\*params\)",
    ):
        plugins.check_loss_signature(one_argument)
    with pytest.raises(ValueError, match=r"cannot be called as \(z, y, gamma=...\)"):
        plugins.check_loss_signature(good, ["gamma"])
    with pytest.raises(ValueError, match=r"has signature \(z, y, \*, alpha\)"):
        plugins.check_loss_signature(keyword_only)
    assert plugins.accepted_keywords(good) == {"z", "y", "t"}
    assert plugins.accepted_keywords(lambda **kw: 0) is None
