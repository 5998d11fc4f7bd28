"""Every inline ``govern …`` synopsis in README.md and docs/ names a real command of the CLI and only options that
command has (``govern … --help``, in process)."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from ingress.cli.main import app as govern_app
from tests.support.docs_examples import Example, examples_of


def _commands(synopsis: str) -> list[list[str]]:
    """The command paths a synopsis names: ``govern alerts rules list/create`` names two."""
    words = shlex.split(synopsis.replace("\\|", "|").replace("…", ""), comments=False)
    path: list[str] = []
    for word in words[1:]:  # after "govern"
        if not re.fullmatch(r"[a-z][a-z-]*(/[a-z][a-z-]*)*", word):
            break
        path.append(word)
    alternatives = [[]]
    for word in path:
        alternatives = [[*prefix, choice] for prefix in alternatives for choice in word.split("/")]
    return alternatives


@pytest.mark.parametrize("example", list(examples_of("synopsis")))
def test_govern_synopsis_names_real_commands_and_options(example: Example) -> None:
    runner = CliRunner()
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", example.text))
    commands = _commands(example.text.removeprefix(".venv/bin/"))
    assert commands, f"no command in {example.text!r}"
    assert commands[0], f"no command in {example.text!r}"
    seen = ""
    for command in commands:
        result = runner.invoke(govern_app, [*command, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert result.exit_code == 0, f"{example.id}: govern {' '.join(command)} --help: {result.output[-1500:]}"
        seen += result.output
    missing = {option for option in options if option not in seen}
    assert not missing, f"{example.id}: options the command does not have: {sorted(missing)}"
