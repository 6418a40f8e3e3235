"""The README and the documentation site as a newcomer meets them: short, every command shown
parses, the quick start runs, every flag is documented, the site builds with --strict."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lenet.cli.main import main
from lenet.cli.parser import build_parser

from helpers import lenet

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_LIMIT = 12_000  # bytes: a guide of a few screens, not a log


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def lenet_commands(text: str) -> list[list[str]]:
    """Every `lenet ...` command in the text's code blocks, as argv without the `lenet`; a sample
    output's `$ lenet ...` line, each part of an `a && b` chain and what torchrun runs as
    `-m lenet ...` count too."""
    commands = []
    for block in code_blocks(text):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip().removeprefix("$ ")
                launched = re.search(r" -m lenet ([a-z].*)", part)
                if launched:
                    part = "lenet " + launched.group(1).rstrip("'")
                if part.startswith("lenet "):
                    commands.append(shlex.split(part, comments=True)[1:])
    return commands


def subcommands() -> dict:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sub.choices


def docs_text() -> str:
    return "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))


def test_readme_is_a_guide_not_a_log():
    size = len(README.read_bytes())
    assert size < README_LIMIT, f"README.md is {size:,} bytes; move reference material into docs/"


def test_readme_shows_commands():
    assert len(lenet_commands(README.read_text())) >= 5


@pytest.mark.parametrize("source", ["README.md", *sorted(p.name for p in DOCS.glob("*.md"))])
def test_every_command_shown_parses(source):
    path = README if source == "README.md" else DOCS / source
    for argv in lenet_commands(path.read_text()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as e:
            pytest.fail(f"{source}: `lenet {shlex.join(argv)}` does not parse (exit {e.code})")


def test_help_of_each_subcommand_shown_in_the_readme(capsys):
    shown = sorted({argv[0] for argv in lenet_commands(README.read_text())})
    assert "train" in shown and "predict" in shown
    for name in shown:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0, name
        assert f"usage: lenet {name}" in capsys.readouterr().out


def test_every_flag_is_documented():
    text = docs_text()
    missing = [f"lenet {name} {flag}" for name, sub in subcommands().items()
               for action in sub._actions for flag in action.option_strings
               if flag.startswith("--") and flag != "--help"
               and not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]
    assert not missing, f"flags no page under docs/ mentions: {missing}"


def quick_start() -> list[str]:
    section = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = code_blocks(section)
    return [line for line in block.splitlines() if line.startswith("lenet ")]


def test_quick_start_runs_as_shown(tmp_path, mnist_dir):
    """The quick start's train and predict lines, for real, into a fresh folder; the accuracy the
    README states for the quick run is what it reaches."""
    env = dict(os.environ, LENET_DATA_DIR=str(mnist_dir))
    lines = quick_start()
    train = next(line for line in lines if line.startswith("lenet train"))
    out = re.search(r"--out (\S+)", train).group(1)
    claimed = float(re.search(r"(\d+(?:\.\d+)?)% on", train).group(1))
    for line in lines:
        if line.startswith("lenet serve"):
            continue
        line = line.replace(out, str(tmp_path / "quick")).replace("my-photo.jpg", "docs/examples/photo-9.jpg")
        argv = shlex.split(line, comments=True)
        r = lenet(*argv[1:], env=env, cwd=ROOT, timeout=300)
        assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
        if argv[1] == "predict":
            assert re.search(r"photo-9\.jpg: \d \(", r.stdout), r.stdout
    info = json.loads((tmp_path / "quick" / "model.json").read_text())
    accuracy = 100 * info["metrics"]["val_accuracy"]
    assert abs(accuracy - claimed) < 2, f"the README says {claimed}%, the run reached {accuracy:.2f}%"


def test_site_builds_strict(tmp_path):
    """A broken link or anchor, or a page missing from mkdocs.yml's nav, fails the build."""
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "site" / "index.html").is_file()
