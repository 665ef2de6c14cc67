import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner import config as config_module
from scanner.config import Config, ConfigError, load_config

DEDICATED = ".soundpiece-scan.toml"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_no_configuration_gives_defaults(tmp_path):
    assert load_config(tmp_path) == Config()


def test_dedicated_file(tmp_path):
    path = write(tmp_path, DEDICATED, 'exclude = ["tests/**", "*.min.js"]\nbaseline = "b.json"\n')
    config = load_config(tmp_path)
    assert config.exclude == ("tests/**", "*.min.js")
    assert config.baseline == str(tmp_path / "b.json")
    assert config.source == str(path)


def test_pyproject_table(tmp_path):
    write(
        tmp_path, "pyproject.toml", '[project]\nname = "x"\n\n[tool.soundpiece-scan]\nexclude = ["docs/"]\n'
    )
    assert load_config(tmp_path).exclude == ("docs/",)


def test_pyproject_without_our_table(tmp_path):
    write(tmp_path, "pyproject.toml", '[project]\nname = "x"\n[tool.ruff]\nline-length = 100\n')
    assert load_config(tmp_path) == Config()


def test_pyproject_without_our_table_is_not_even_parsed(tmp_path):
    write(tmp_path, "pyproject.toml", "this is [[ not toml")
    assert load_config(tmp_path) == Config()


def test_dedicated_file_wins_over_pyproject(tmp_path):
    write(
        tmp_path, "pyproject.toml", '[tool.soundpiece-scan]\nexclude = ["from-pyproject"]\nbaseline = "p"\n'
    )
    write(tmp_path, DEDICATED, 'exclude = ["from-dedicated"]\n')
    config = load_config(tmp_path)
    assert config.exclude == ("from-dedicated",)
    assert config.baseline is None  # no merging
    assert config.source == str(tmp_path / DEDICATED)


def test_relative_baseline_resolves_against_the_config_directory(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    write(project, "pyproject.toml", '[tool.soundpiece-scan]\nbaseline = "ci/baseline.json"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(project).baseline == str(project / "ci" / "baseline.json")


def test_absolute_baseline_is_kept(tmp_path):
    absolute = str(tmp_path / "elsewhere" / "b.json")
    write(tmp_path, DEDICATED, f"baseline = {absolute!r}\n")
    assert load_config(tmp_path).baseline == absolute


def test_empty_dedicated_file_is_defaults(tmp_path):
    write(tmp_path, DEDICATED, "")
    assert load_config(tmp_path).exclude == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exclude = [", "invalid TOML"),
        ("exclude = 'tests/**'", "'exclude' must be a list of strings"),
        ("exclude = ['a', 1]", "'exclude' must be a list of strings"),
        ("exclude = ['!keep.py']", "negation"),
        ("baseline = 1", "'baseline' must be a non-empty string"),
        ("baseline = ''", "'baseline' must be a non-empty string"),
        ("baseline = ['a']", "'baseline' must be a non-empty string"),
        ("excludes = ['a']", "unknown key 'excludes'"),
        ("[exclude]\na = 1", "'exclude' must be a list of strings"),
        ("[tool.soundpiece-scan]\nexclude = []", "unknown key 'tool'"),
    ],
)
def test_dedicated_file_errors(tmp_path, text, message):
    path = write(tmp_path, DEDICATED, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{path}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.soundpiece-scan]\nexclude = 3", "'tool.soundpiece-scan.exclude' must be a list"),
        ("[tool.soundpiece-scan]\npaths = []", "unknown key 'tool.soundpiece-scan.paths'"),
        ("[tool]\nsoundpiece-scan = 3", r"\[tool.soundpiece-scan\] must be a table"),
        ("[tool.soundpiece-scan]\nexclude = [", "invalid TOML"),
    ],
)
def test_pyproject_errors(tmp_path, text, message):
    path = write(tmp_path, "pyproject.toml", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"{path}: ")


def test_not_utf8(tmp_path):
    (tmp_path / DEDICATED).write_bytes(b"exclude = ['\xff']")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path)


def test_unreadable_config_is_an_error(tmp_path):
    (tmp_path / DEDICATED).mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_huge_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "MAX_BYTES", 100)
    write(tmp_path, DEDICATED, "exclude = []\n" + "# padding\n" * 20)
    with pytest.raises(ConfigError, match="larger than"):
        load_config(tmp_path)


def test_deeply_nested_toml_is_an_error(tmp_path):
    write(tmp_path, DEDICATED, "exclude = " + "[" * 100_000)
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(tmp_path)


def test_tomllib_is_imported_lazily(tmp_path):
    write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n")
    sys.modules.pop("tomllib", None)
    load_config(tmp_path)
    assert "tomllib" not in sys.modules


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=200))
def test_garbage_toml_is_a_config_error_or_a_config(tmp_path, text):
    write(tmp_path, DEDICATED, text)
    try:
        config = load_config(tmp_path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(config, Config)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_garbage_bytes_are_a_config_error_or_a_config(tmp_path, data):
    (tmp_path / DEDICATED).write_bytes(data)
    try:
        config = load_config(tmp_path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert all(isinstance(p, str) for p in config.exclude)
