"""The README stays true: its two commands, and every method option documented."""

from pathlib import Path

import pytest

from engine.methods import get_method, method_names

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def first_commands() -> list[str]:
    block = README.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands_and_ci_runs_the_second():
    setup, tests = first_commands()
    assert "pip install" in setup and setup.endswith("stylebot run")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci.count(tests) == 2  # with the staged weights, then as a newcomer without them
    runs = [i for i, line in enumerate(ci) if line == tests]
    settings = [line for line in ci if line.startswith("export STYLEBOT_TEST_WEIGHTS=")]
    assert len(settings) == 2 and ci.index(settings[1]) < runs[1]


@pytest.mark.parametrize("name", method_names())
def test_every_declared_option_is_documented(name):
    section = README.split(f"#### `{name}` options", 1)[1].split("####", 1)[0]
    for option in get_method(name).options:
        row = f"| `{option.name}` | {option.describe_range()} |"
        assert row in section, option.name
        line = section.split(row, 1)[1].split("\n", 1)[0]
        for alias in option.aliases:  # its other names are said in its own row
            assert f"`{alias.name}`" in line, alias.name
