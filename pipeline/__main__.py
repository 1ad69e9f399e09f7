"""``python -m pipeline <step>``: the thin command line the Makefile calls."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from pipeline.config import DIST_DIR, IMPORT_NAME, PACKAGE, env, index_settings, load_dataset_config
from pipeline.package_name import check_configured
from pipeline.errors import ConfigError, IndexServerError, Interrupted, PipelineError, VersionError


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description="The model release pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str, *options: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        flags = {
            "bump": lambda: sub.add_argument("--bump", default=env("BUMP"),
                                             help="major|minor|patch or release|interface|logic (BUMP); "
                                                  "default: what the changes require"),
            "data": lambda: sub.add_argument("--data", default=env("DATA"), help="the data tag (DATA)"),
            "data-file": lambda: sub.add_argument("--data-file", default=env("DATA_FILE"), help="a CSV (DATA_FILE)"),
            "force": lambda: sub.add_argument("--force", action="store_true", default=env("FORCE", "0") not in ("0", ""),
                                              help="release even if the metric gate fails (FORCE=1)"),
            "version": lambda: sub.add_argument("--version", default=env("VERSION"), help="X.Y.Z+tag (VERSION)"),
            "ab": lambda: (sub.add_argument("--a", default=env("A"), help="a published version (A)"),
                           sub.add_argument("--b", default=env("B"),
                                            help="a published version (B); omitted: this clone's make train output")),
            "reason": lambda: sub.add_argument("--reason", default=env("REASON"),
                                               help="why consumers should not get it (REASON); without it, "
                                                    "a version already yanked keeps its reason"),
            "channel": lambda: sub.add_argument("--channel", default=env("CHANNEL"),
                                                help="lowercase letters, digits, hyphens, e.g. prod (CHANNEL)"),
            "json": lambda: sub.add_argument("--json", action="store_true", default=env("FORMAT") == "json",
                                             help="print JSON for scripts (FORMAT=json)"),
            "name": lambda: sub.add_argument("--name", default=env("NAME"),
                                             help="the new package name, e.g. titanic-survival (NAME)"),
            "index": lambda: (sub.add_argument("--port", default=None, help="(INDEX_PORT)"),
                              sub.add_argument("--dir", default=None, help="(INDEX_DIR)"),
                              sub.add_argument("--auth", default=None, help="update|read (INDEX_AUTH)")),
        }
        for option in options:
            flags[option]()
        return sub

    command("train", f"train and evaluate the models into src/{IMPORT_NAME}/models", "data", "data-file")
    command("version", "print the next version", "bump", "data", "index")
    command("released", "print the version this clone released last (for a shell variable)")
    command("build", "build the next version's sdist and wheel into dist/", "bump", "data", "version", "index")
    command("upload", "upload a built version from dist/ and verify it", "version", "index")
    command("release", "train, version, build, upload and verify", "bump", "data", "data-file", "force", "index")
    command("verify", "rebuild a published version and compare its wheel hash", "version", "data-file", "index")
    command("lock", "print the hash-locked requirement of a published version", "version", "index")
    command("versions", "list the published versions: data, date, size, accuracy, bump and why", "json", "index")
    command("diff", "what changed between two published versions, and the bump it requires", "ab", "json", "index")
    command("yank", "yank a published version: ranges skip it, an exact pin still installs it", "version", "reason",
            "index")
    command("unyank", "undo make yank: the version is installable by ranges again", "version", "index")
    command("promote", f"publish the next {PACKAGE}-<channel> version, requiring exactly VERSION", "version", "channel",
            "index")
    command("channels", "each channel's promotions: channel version -> model version, date, commit", "index")
    command("index", "start the local index (no-op when it runs)", "index")
    command("index-stop", "stop the local index", "index")
    command("index-status", "is the local index running?", "index")
    command("rename", "give the package another name: dataset.toml, src/<import name>/, pyproject.toml", "name")
    return parser


def _settings(args: argparse.Namespace):
    return index_settings(args.port, args.dir, args.auth)


def _next_version(settings, bump: str | None, tag: str) -> str:
    """What make release would publish next: from the changes when the index runs and models
    are trained, else the bump (patch by default) of the highest known version."""
    from index.control import healthy
    from pipeline import planning, release, versioning
    from pipeline.config import MODELS_DIR
    from pipeline.index_api import IndexClient

    recorded = release.recorded_version()
    if not healthy(settings.url):
        print(f"(the index at {settings.url} is not running: computed from the repo's record only)", file=sys.stderr)
        return versioning.next_version([], recorded, bump or "patch", tag)
    client = IndexClient(settings)
    if not any(MODELS_DIR.glob("*/metadata.json")):
        return versioning.next_version(client.versions(), recorded, bump or "patch", tag)
    return planning.plan(client, recorded, bump, tag, force=False, allow_unchanged=True).version


def _registry(args: argparse.Namespace) -> int:
    """make versions / make diff: read-only, so no scikit-learn import (the release modules pay it)."""
    from pipeline import registry
    from pipeline.index_api import IndexClient

    if env("FORMAT", "text") not in ("text", "json"):
        raise ConfigError(f"FORMAT={env('FORMAT')!r} is not text or json; use FORMAT=json for scripts")
    client = IndexClient(_settings(args))
    print(registry.versions_output(client, args.json) if args.command == "versions"
          else registry.diff_output(client, args.a, args.b, args.json))
    return 0


def _yank(args: argparse.Namespace) -> int:
    """make yank / make unyank: one request to the index, which records it (PEP 592)."""
    from pipeline.index_api import IndexClient

    if not args.version:
        raise ConfigError(f"make {args.command} needs VERSION=X.Y.Z+tag (e.g. make {args.command} VERSION=1.1.2+titanic"
                          + (' REASON="why")' if args.command == "yank" else ")"))
    from pipeline.onnx_names import TWIN
    from pipeline.versioning import parse

    yanking = args.command == "yank"
    client = IndexClient(_settings(args))
    answer = client.set_yanked(args.version, yanking, args.reason if yanking else None)
    answers = [answer]
    if str(parse(args.version)) in client.versions(TWIN):  # its <name>-onnx twin follows
        answers.append(client.set_yanked(args.version, yanking, args.reason if yanking else None, project=TWIN))
    for answer in answers:
        print(_yank_outcome(answer, args.reason) if yanking else f"unyanked {answer['name']} {answer['version']}")
        if not answer["not_yanked"]:
            print(f"warning: every version of {answer['name']} is now yanked: 'pip install {answer['name']}' finds "
                  "none; publish a fixed version or make unyank one", file=sys.stderr)
    return 0


def _yank_outcome(answer: dict, reason: str | None) -> str:
    """What make yank did: yanked, yanked with a reason that replaces the one recorded, or kept
    as it was (no REASON for a version already yanked)."""
    what, previous = f"{answer['name']} {answer['version']}", answer.get("previous")  # older indexes: no previous
    if previous is not None and reason is None:
        return f"{what} is already yanked: {previous or '(no reason given)'}; kept (REASON=\"...\" replaces the reason)"
    replaced = f" (replaces: {previous or '(no reason given)'})" if previous is not None and previous != reason else ""
    return f"yanked {what}" + (f": {reason}" if reason else "") + replaced


def _channels(args: argparse.Namespace) -> int:
    """make promote / make channels: a channel is a package, so any index the pipeline uploads to works."""
    from pipeline import channels
    from pipeline.index_api import IndexClient

    client = IndexClient(_settings(args))
    if args.command == "channels":
        print(channels.history_table(channels.history(client)))
        return 0
    promotion = channels.promote(client, args.version, args.channel)
    name = channels.channel_project(promotion.channel)
    print(f"promoted {PACKAGE} {promotion.model_version} to {promotion.channel}: {name} {promotion.number}\n"
          f"  pip install --index-url {client.settings.simple_url} {name}      # follows the channel\n"
          f"  pip install --index-url {client.settings.simple_url} {name}=={promotion.number}   # exactly this promotion")
    return 0


def _released() -> int:
    """make released: the version this clone's last release printed, from its record
    (src/<import name>/version.py) and that release's hash-locked requirement in releases/."""
    from pipeline.config import REPO, VERSION_FILE
    from pipeline.release_records import lock_file
    from pipeline.versioning import read_recorded

    recorded = read_recorded(VERSION_FILE.read_text(encoding="utf-8")) if VERSION_FILE.is_file() else None
    if recorded is None or not lock_file(recorded).is_file():
        raise VersionError(f"this clone has released nothing yet ({VERSION_FILE.relative_to(REPO)} records "
                           f"{recorded or 'no version'}, releases/ has no {lock_file(str(recorded)).name}); run make release first")
    print(recorded)
    return 0


def run(args: argparse.Namespace) -> int:
    if args.command == "rename":
        from pipeline.config import REPO
        from pipeline.rename import rename

        print(rename(REPO, PACKAGE, args.name))
        return 0
    if args.command == "released":
        return _released()
    if args.command in ("versions", "diff"):
        return _registry(args)
    if args.command in ("yank", "unyank"):
        return _yank(args)
    if args.command in ("promote", "channels"):
        return _channels(args)
    # The index commands import no scikit-learn (about 1.2 s of every call before).
    if args.command in ("index", "index-stop", "index-status"):
        from index import control

        settings = _settings(args)
        if args.command == "index":
            print(control.start(settings).describe())
            print(f"credentials (owner-only): uploads {settings.state_dir}/credentials.json, "
                  f"read-only for consumers {settings.state_dir}/reader.json")
        elif args.command == "index-stop":
            print("index: stopped" if control.stop(settings) else "index: was not running")
        else:
            print(control.status(settings).describe())
        return 0
    from pipeline import release, versioning

    if args.command == "train":
        from pipeline.data import load_dataset
        from pipeline.train import metrics_table, save, train

        config = load_dataset_config(tag=args.data)
        models = train(load_dataset(config, args.data_file), config)
        print(f"saved {len(models)} models to {save(models)}")
        print(metrics_table({m.name: m.metadata["metrics"] for m in models}))
        return 0
    if args.command == "release":
        release.release(_settings(args), args.bump, args.data, args.data_file, args.force)
        return 0  # also when nothing changed: a scheduled job runs make release daily
    if args.command in ("version", "build"):
        tag = versioning.canonical_tag(args.data or load_dataset_config().tag)
        version = getattr(args, "version", None) or _next_version(_settings(args), args.bump, tag)
        if args.command == "version":
            print(version)
            return 0
        from pipeline.build import build

        built = build(version, DIST_DIR)
        print(f"built {built.sdist.name} and {built.wheel.name}{' and ' + built.twin.name if built.twin else ''} in {DIST_DIR}")
        return 0
    if args.command == "upload":
        from pipeline.publish import install_instructions

        settings, version, lock = release.upload_from_dist(_settings(args), args.version)
        print(f"published {version}; lock: {lock}\n{install_instructions(settings, f'{PACKAGE}=={version}')}")
        return 0
    if args.command in ("verify", "lock"):
        if not args.version:
            raise ConfigError(f"make {args.command} needs VERSION=X.Y.Z+tag (e.g. make {args.command} VERSION=1.1.1+titanic)")
        settings = _settings(args)
        version = str(versioning.parse(args.version))
        if args.command == "lock":
            from pipeline.index_api import IndexClient
            from pipeline.onnx_names import TWIN
            from pipeline.publish import lock_text

            onnx = env("ONNX", "0") not in ("0", "")  # ONNX=1: the <name>-onnx twin's lock
            print(lock_text(IndexClient(settings), version, TWIN if onnx else PACKAGE), end="")
            return 0
        return 0 if release.reproduce(settings, version, args.data_file) else 1
    raise AssertionError(args.command)


def _terminated(signum: int, frame: object) -> None:
    raise Interrupted("terminated (SIGTERM)", 128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = main_parser().parse_args(argv)
    # SIGTERM (a CI job cancelled, kill) unwinds like Ctrl-C, so a release takes back its upload.
    signal.signal(signal.SIGTERM, _terminated)
    # Ctrl-C too, even when the parent ignored SIGINT (a background job, some CI runners): a
    # cancelled job's SIGINT then takes a release back as it does in a terminal.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if args.command != "rename":
            check_configured()
        return run(args)
    except (PipelineError, IndexServerError) as exc:  # the index's own errors: make index
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        what = str(exc) or "interrupted"
        if not getattr(exc, "accounted", False):
            what += "; nothing was published or recorded"
        print(f"Error: {what} (run the command again)", file=sys.stderr)
        return getattr(exc, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
