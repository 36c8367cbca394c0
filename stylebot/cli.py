"""The `stylebot` command: run the bot, stylize from the shell, manage presets and weights, train.

Method options become flags automatically from each method's declared options, so the
CLI, the chat commands and the playground always agree on names and ranges.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from engine.errors import UserError

log = logging.getLogger("stylebot")
OWN_PACKAGES = ("engine", "stylebot", "storage", "bot")  # -v logs these at debug level

EXIT_OK, EXIT_BUG, EXIT_USER = 0, 1, 2


class CliError(UserError):
    """A usage problem found by the CLI itself."""


# -- parser ----------------------------------------------------------------------------------

def _method_options() -> dict[str, Any]:
    """Every option any method declares, by name (first declaration wins for help text),
    then the other names options are given by (adain's --alpha), each with the declaration
    that reads it. The method's OptionSet resolves them, as for chat commands."""
    from engine.methods import loadable_methods

    options: dict[str, Any] = {}
    methods = loadable_methods()
    for method in methods:
        for option in method.options:
            options.setdefault(option.name, option)
    for method in methods:
        for option in method.options:
            for alias in option.aliases:
                if alias.name not in options:
                    reader = alias.reader(option)
                    options[alias.name] = dataclasses.replace(
                        reader, help=f"{method.name}: another name for --{option.flag[2:]}")
    return options


def _add_method_option_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("method options (see `stylebot methods`)")
    for name, option in _method_options().items():
        dest = f"opt_{name}"
        if option.type == "bool":
            group.add_argument(option.flag, dest=dest, action="store_const", const="true",
                               default=argparse.SUPPRESS, help=option.help)
            group.add_argument("--no-" + option.flag[2:], dest=dest, action="store_const",
                               const="false", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        else:
            group.add_argument(option.flag, dest=dest, metavar=option.type.upper(),
                               default=argparse.SUPPRESS, help=f"{option.help} ({option.describe_range()})")


def _given_options(args: argparse.Namespace) -> dict[str, str]:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("opt_")}


def _parse_blend(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise CliError(f"--blend takes comma-separated numbers, e.g. 0.7,0.3; got '{text}'.") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylebot", allow_abbrev=False,
                                     description="Restyle images with neural style transfer.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the bot (Discord/Slack when configured, else the web playground)")
    run.add_argument("--host", help="playground address (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="playground port (default 8080)")
    _add_stylize(sub)
    _add_presets(sub)
    info = sub.add_parser("info", help="print the settings a Stylebot result carries in its file")
    info.add_argument("file", help="an image (PNG, JPEG, WebP, GIF) or video (MP4, MOV, WebM) that Stylebot made")
    info.add_argument("--json", action="store_true")
    me = sub.add_parser("methods", help="each method, its options, and whether its weights are here")
    me.add_argument("--json", action="store_true")
    _add_weights(sub)
    tr = sub.add_parser("train", help="train a style network (fast) or decoder (adain)")
    tr.add_argument("trainer", choices=["fast", "adain"])
    tr.add_argument("trainer_args", nargs=argparse.REMAINDER)
    sa = sub.add_parser("samples", help="write the built-in sample content and style images")
    sa.add_argument("folder", nargs="?", default=".")

    from .frontends import installed_frontends

    for frontend in installed_frontends().values():
        if frontend.add_commands is not None:
            frontend.add_commands(sub)  # e.g. `stylebot discord sync`
    return parser


def _add_stylize(sub) -> None:
    st = sub.add_parser("stylize", help="restyle one image from the shell", allow_abbrev=False)
    st.add_argument("content", help="content image file")
    st.add_argument("--style", action="append", default=[], metavar="IMG",
                    help="style image (repeat for several)")
    st.add_argument("--blend", metavar="W1,W2", help="weights of several style images")
    st.add_argument("--method", help="gatys, fast, adain, hub, nada or sd (default hub, or the preset's)")
    st.add_argument("--prompt", help="text prompt (sd, nada)")
    st.add_argument("--mask", metavar="IMG", help="foreground mask (adain with two styles)")
    st.add_argument("--preset", help="use one of your saved presets")
    st.add_argument("--user", default="local", help="whose presets (default: local)")
    st.add_argument("--platform", default="cli", help="the user's platform (default: cli)")
    st.add_argument("-o", "--output", required=True, help="where to write the result")
    st.add_argument("--json", action="store_true", help="print the result's metadata as JSON")
    st.add_argument("--quiet", action="store_true", help="no progress bar")
    st.add_argument("--quality", choices=["full", "refine"],
                    help="refine: write a real-time draft at once, then replace it with gatys' "
                         "refinement of it (Ctrl-C keeps the draft); see docs/refine.md")
    _add_method_option_flags(st)


def _add_presets(sub) -> None:
    pr = sub.add_parser("presets", help="save, list, show and delete a user's presets")
    psub = pr.add_subparsers(dest="preset_command", required=True, metavar="ACTION")
    for action in ("save", "list", "show", "delete"):
        p = psub.add_parser(action, allow_abbrev=False)
        if action != "list":
            p.add_argument("name")
        p.add_argument("--user", required=True, help="the user's id")
        p.add_argument("--platform", default="cli", help="discord, slack, playground or cli")
        p.add_argument("--json", action="store_true")
        if action == "save":
            p.add_argument("--method", required=True)
            p.add_argument("--style", action="append", default=[], metavar="IMG")
            p.add_argument("--blend", metavar="W1,W2")
            p.add_argument("--replace", action="store_true", help="overwrite a preset of that name")
            _add_method_option_flags(p)


def _add_weights(sub) -> None:
    we = sub.add_parser("weights", help="list or pre-fetch weight files")
    wsub = we.add_subparsers(dest="weights_command", required=True, metavar="ACTION")
    wl = wsub.add_parser("list")
    wl.add_argument("--json", action="store_true")
    wf = wsub.add_parser("fetch")
    wf.add_argument("methods", nargs="*", help="methods to fetch for (default: all)")
    wf.add_argument("--optional", action="store_true", help="also fetch optional alternatives")


# -- commands -----------------------------------------------------------------------------

def _settings():
    """The settings, with the engine on a thread of this process: a one-shot command runs
    one job for one user (or none), so an engine process would only add its start-up."""
    from stylebot.settings import Settings

    return Settings().model_copy(update={"engine_process": "inline"})


def _read_upload(path: str, what: str):
    from engine.request import ImageUpload

    file = Path(path)
    if not file.is_file():
        raise CliError(f"The {what} '{path}' does not exist.")
    return ImageUpload(file.read_bytes(), file.name)


def cmd_stylize(args: argparse.Namespace) -> int:
    from engine.request import Requester, StyleRequest

    output = Path(args.output)
    if output.is_dir():
        raise CliError(f"The output '{output}' is a folder; name a file, e.g. {output / 'out.png'}.")
    if not output.parent.exists():
        raise CliError(f"The output folder '{output.parent}' does not exist.")
    request = StyleRequest(
        method=args.method, content=_read_upload(args.content, "content image"),
        requester=Requester(args.platform, args.user),
        styles=[_read_upload(p, "style image") for p in args.style],
        style_weights=_parse_blend(args.blend), prompt=args.prompt,
        options={**_given_options(args), **({"quality": args.quality} if args.quality else {})},
        preset=args.preset, mask=_read_upload(args.mask, "mask") if args.mask else None)
    return asyncio.run(_stylize(request, output, as_json=args.json, quiet=args.quiet))


async def _stylize(request, output: Path, *, as_json: bool, quiet: bool) -> int:
    from stylebot.refine import kept_text
    from stylebot.service import StyleService

    service = await StyleService.open(_settings())
    try:
        handle = await service.submit(request)
        code = await _follow(handle, output, as_json=as_json, quiet=quiet)
        refinement = service.refinement(handle.id)
        if code != EXIT_OK or refinement is None:
            return code
        refined = await refinement.refinement()  # quality=refine: the draft is written; now gatys
        if refined is None:
            _say(kept_text(refinement.problem))
            return EXIT_OK
        code = await _follow(refined, output, as_json=as_json, quiet=quiet)
        if code != EXIT_OK:
            _say(kept_text(None))
        return EXIT_OK
    finally:
        await service.close(grace_s=0)


async def _follow(handle, output: Path, *, as_json: bool, quiet: bool) -> int:
    """Show one job's progress and write its result to ``output``; the exit code."""
    from tqdm import tqdm

    from engine.events import Cancelled, Done, Failed, Progress, Started

    bar = None
    try:
        async for event in handle.events():
            if isinstance(event, Started) and not quiet:
                bar = tqdm(total=100, desc=f"{handle.method} on {event.device}",
                           unit="%", file=sys.stderr, leave=False)
            elif isinstance(event, Progress) and bar is not None:
                bar.n = round(event.fraction * 100, 1)
                bar.set_postfix_str(event.stage, refresh=False)
                bar.refresh()
            elif isinstance(event, Done):
                if event.clip is not None:
                    _save_clip(event.clip, event.meta, output)
                else:
                    _save_atomically(event.image, event.meta, output)
                meta = {"job": event.job_id, "output": str(output), "method": event.meta.method,
                        "options": event.meta.options, "seconds": event.meta.seconds,
                        "device": event.meta.device, "seed": event.meta.seed,
                        "size": list(event.meta.size), **event.meta.extra}
                if as_json:
                    print(json.dumps(meta))
                else:
                    model = event.meta.options.get("model")
                    used = f"{event.meta.method} model {model}" if model else event.meta.method
                    frames = (f", {len(event.clip.frames)} frames at {event.clip.fps:g} fps"
                              if event.clip is not None else "")
                    print(f"wrote {output} ({event.meta.size[0]}x{event.meta.size[1]}{frames}, "
                          f"{used}, {event.meta.seconds:.1f}s on {event.meta.device})")
                return EXIT_OK
            elif isinstance(event, Failed):
                _say(event.message)
                return EXIT_BUG if event.internal else EXIT_USER
            elif isinstance(event, Cancelled):
                _say(event.reason)
                return EXIT_USER
    finally:
        if bar is not None:
            bar.close()
    return EXIT_BUG  # pragma: no cover - the event stream always ends with a final event


def _save_clip(clip, meta, output: Path) -> None:
    """A styled clip in the container ``output``'s suffix names (the source's kind otherwise),
    with its settings inside as a still result has them."""
    from engine.files import atomic_write
    from engine.resultinfo import settings_of
    from engine.video import encode_clip

    data, _ = encode_clip(clip, output.suffix or None, settings_of(meta))
    atomic_write(output, lambda tmp: Path(tmp).write_bytes(data))


def _save_atomically(image, meta, output: Path) -> None:
    """The result in the format its suffix names (PNG otherwise), with its settings inside."""
    from engine.files import atomic_write
    from engine.images import encode_result

    data = encode_result(image, meta, fmt=output.suffix or "png").data
    atomic_write(output, lambda tmp: Path(tmp).write_bytes(data))


def cmd_info(args: argparse.Namespace) -> int:
    """The settings inside a result file, and the command that reuses them."""
    from stylebot.results import read_settings, reuse_command, settings_lines

    file = Path(args.file)
    if not file.is_file():
        raise CliError(f"The file '{args.file}' does not exist.")
    settings = read_settings(file.read_bytes())
    if settings is None:
        raise CliError(f"'{file.name}' carries no Stylebot settings (only results Stylebot "
                       "wrote as PNG, JPEG, WebP, GIF, MP4, MOV or WebM do).")
    if args.json:
        print(json.dumps({**settings, "command": reuse_command(settings)}))
    else:
        print("\n".join(settings_lines(settings)))
        print(f"Use these settings: {reuse_command(settings)}")
    return EXIT_OK


def cmd_presets(args: argparse.Namespace) -> int:
    return asyncio.run(_presets(args))


async def _presets(args: argparse.Namespace) -> int:
    from engine.request import Requester
    from stylebot.listings import preset_data
    from stylebot.service import StyleService

    service = await StyleService.open(_settings())
    requester = Requester(args.platform, args.user)
    try:
        if args.preset_command == "save":
            record = await service.save_preset(
                requester, args.name, args.method, _given_options(args),
                [_read_upload(p, "style image") for p in args.style], _parse_blend(args.blend),
                replace=args.replace)
            print(f"saved preset '{record.name}' ({record.method}, {len(record.styles)} style image(s))")
        elif args.preset_command == "list":
            records = await service.list_presets(requester)
            if args.json:
                print(json.dumps([preset_data(r) for r in records]))
            elif not records:
                print("no presets")
            for r in records if not args.json else []:
                print(f"{r.name}\t{r.method}\t{_fmt_options(r.options)}\tused {r.use_count}x")
        elif args.preset_command == "show":
            r = await service.get_preset(requester, args.name)
            print(json.dumps(preset_data(r), indent=None if args.json else 2))
        elif args.preset_command == "delete":
            await service.delete_preset(requester, args.name)
            print(f"deleted preset '{args.name}'")
    finally:
        await service.close(grace_s=0)
    return EXIT_OK


def _fmt_options(options: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in options.items()) or "-"


def cmd_methods(args: argparse.Namespace) -> int:
    from engine.engine import StyleEngine
    from stylebot.listings import WEIGHTS_MISSING, describe_methods

    info = describe_methods(StyleEngine(_settings()))
    if args.json:
        print(json.dumps(info, indent=2))
        return EXIT_OK
    for m in info:
        status = m["status"]
        if status == WEIGHTS_MISSING:
            status += ": `stylebot weights fetch " + m["name"] + "`"
        print(f"{m['name']:6} {m['title']} [{status}]")
        print(f"       {m['summary']}")
        if m.get("models"):
            print(f"       models here: {', '.join(m['models'])}")
        for o in m["options"]:
            default = "-" if o["default"] in (None, "") else o["default"]
            print(f"       --{o['name'].replace('_', '-'):18} {o['range']:28} default {default}")
            for alias in o.get("aliases") or []:
                print(f"         also --{alias['name'].replace('_', '-')} ({alias['range']})")
    return EXIT_OK


def cmd_weights(args: argparse.Namespace) -> int:
    from engine.catalogue import one_per_weight
    from engine.weights import WeightStore

    store = WeightStore.from_settings(_settings())
    if args.weights_command == "list":
        rows = []
        for entry, aliases in one_per_weight(store.catalogue.values()):
            where, path = store.locate(entry.name)
            rows.append({"name": entry.name, "aliases": aliases, "methods": list(entry.methods),
                         "where": where, "path": str(path) if path else None, "url": entry.url,
                         "sha256": entry.sha256, "licence": entry.licence, "optional": entry.optional})
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            for r in rows:
                flag = " (optional)" if r["optional"] else ""
                also = f" (also {', '.join(r['aliases'])})" if r["aliases"] else ""
                print(f"{r['name']:26} {','.join(r['methods']):18} {r['where']:8}{flag}  "
                      f"{r['path'] or r['url'] or '-'}{also}")
        return EXIT_OK
    return _fetch(store, args.methods, include_optional=args.optional)


def _fetch(store, methods: list[str], *, include_optional: bool) -> int:
    from tqdm import tqdm

    from engine.catalogue import one_per_weight
    from engine.methods import method_names

    unknown = [m for m in methods if m not in method_names()]
    if unknown:
        raise CliError(f"Unknown method(s) {', '.join(unknown)}; choose from {', '.join(method_names())}.")
    entries = [e for e, _ in one_per_weight(store.catalogue.values())
               if (not methods or set(e.methods) & set(methods)) and (include_optional or not e.optional)]
    failures = 0
    for entry in entries:
        where, path = store.locate(entry.name)
        if path is not None:
            print(f"{entry.name}: present ({where}) {path}")
            continue
        with tqdm(total=entry.size, unit="B", unit_scale=True, desc=entry.name, file=sys.stderr,
                  leave=False) as bar:
            def progress(done: int, total: int | None) -> None:
                bar.total = total
                bar.update(done - bar.n)
            try:
                path = store.path(entry.name, progress=progress)
                print(f"{entry.name}: fetched {path}")
            except UserError as exc:
                failures += 1
                _say(exc.message)
    return EXIT_USER if failures else EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from engine.training import TRAINER_PATHS

    module = importlib.import_module(TRAINER_PATHS[args.trainer])
    parser = argparse.ArgumentParser(prog=f"stylebot train {args.trainer}", allow_abbrev=False)
    module.add_arguments(parser)
    trainer_args = parser.parse_args(args.trainer_args)
    return int(module.run(trainer_args, _settings()) or 0)


def cmd_samples(args: argparse.Namespace) -> int:
    from engine.samples import sample_content, sample_style

    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    sample_content(512).save(folder / "sample-content.png")
    sample_style(512).save(folder / "sample-style.png")
    print(f"wrote {folder / 'sample-content.png'} and {folder / 'sample-style.png'}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from stylebot.process import run_bot

    overrides = {k: v for k, v in (("http_host", args.host), ("http_port", args.port)) if v is not None}
    from stylebot.settings import Settings

    return int(run_bot(Settings(**overrides)) or 0)


COMMANDS = {"stylize": cmd_stylize, "info": cmd_info, "presets": cmd_presets, "methods": cmd_methods,
            "weights": cmd_weights, "train": cmd_train, "samples": cmd_samples, "run": cmd_run}


def _say(message: str) -> None:
    print(f"stylebot: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose:  # our own debug records (e.g. tracebacks behind one-line failures)
        for package in OWN_PACKAGES:
            logging.getLogger(package).setLevel(logging.DEBUG)
    try:
        if args.command in COMMANDS:
            return COMMANDS[args.command](args)
        return args.handler(args, _settings())  # a front end's own command
    except UserError as exc:
        _say(exc.message)
        return EXIT_USER
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        _say(f"bad setting STYLEBOT_{field.upper()}: {first['msg']}")
        return EXIT_USER
    except KeyboardInterrupt:
        _say("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
