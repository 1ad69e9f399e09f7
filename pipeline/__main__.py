"""``python -m pipeline <command>``: the thin command line the Makefile calls; each command is
``main(args)`` in pipeline/commands/<command>.py (index-stop: index_stop.py)."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

from pipeline.config import IMPORT_NAME, PACKAGE, env
from pipeline.memory import return_freed_memory
from pipeline.errors import IndexServerError, Interrupted, PipelineError
from pipeline.package.package_name import check_configured
from pipeline.views.consumers import CLIENTS


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
            "note": lambda: sub.add_argument("--note", default=env("NOTE"),
                                             help="a note recorded beside the promotion, e.g. why (NOTE)"),
            "pages": lambda: (sub.add_argument("--page", default=env("PAGE"),
                                               help="which page of promotions: 1 the newest (PAGE)"),
                              sub.add_argument("--all", action="store_true", default=env("ALL", "0") not in ("0", ""),
                                               help="every promotion (ALL=1)")),
            "json": lambda: sub.add_argument("--json", action="store_true", default=env("FORMAT") == "json",
                                             help="print JSON for scripts (FORMAT=json)"),
            "name": lambda: (sub.add_argument("--name", default=env("NAME"),
                                              help="the new package name, e.g. titanic-survival (NAME)"),
                             sub.add_argument("--description", default=env("DESCRIPTION"),
                                              help="its one-line description, the Summary (DESCRIPTION); asked "
                                                   "for on a terminal")),
            "client": lambda: (sub.add_argument("--client", default=env("CLIENT"), help="|".join(CLIENTS) + " (CLIENT)"),
                               sub.add_argument("--rollback", default=env("ROLLBACK"),
                                                help="the earlier version a rollback pins (ROLLBACK); default: the "
                                                     "one this clone released before VERSION")),
            "credential": lambda: (
                sub.add_argument("--name", default=env("NAME"), help="the credential's name, e.g. ci-churn (NAME)"),
                sub.add_argument("--packages", default=env("PACKAGES"),
                                 help="the packages it may act on, comma-separated, or '*' (PACKAGES)"),
                sub.add_argument("--role", default=env("ROLE"), help="read|upload|maintain (ROLE)"),
                sub.add_argument("--revoke", default=env("REVOKE"), help="revoke this credential (REVOKE)"),
                sub.add_argument("--assign", default=env("ASSIGN"),
                                 help="give this package to NAME's scope (ASSIGN)"),
                sub.add_argument("--list", action="store_true", default=env("LIST", "0") not in ("0", ""),
                                 help="list the credentials (LIST=1)")),
            "package-filter": lambda: sub.add_argument("--package", default=env("PACKAGE"),
                                                       help="only this package's entries (PACKAGE)"),
            "index": lambda: (sub.add_argument("--port", default=None, help="(INDEX_PORT)"),
                              sub.add_argument("--dir", default=None, help="(INDEX_DIR)"),
                              sub.add_argument("--auth", default=None, help="update|read (INDEX_AUTH)")),
        }
        for option in options:
            flags[option]()
        return sub

    command("train", f"train and evaluate the models into src/{IMPORT_NAME}/models", "data", "data-file", "index")
    command("version", "print the next version", "bump", "data", "index")
    command("released", "print the version this clone released last, the newest not yanked (for a shell variable)",
            "index")
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
    command("promote", f"make VERSION the one version of {PACKAGE} the channel's index view serves", "version",
            "channel", "note", "index")
    command("channels", "each channel's newest promotions: number, version, when, who, commit, note", "channel",
            "pages", "index")
    command("consumer", "what a consumer pastes: index settings, the exact pin, install, lock and rollback commands",
            "client", "version", "channel", "index")
    command("index", "start the local index (no-op when it runs)", "index")
    command("index-stop", "stop the local index", "index")
    command("index-status", "is the local index running?", "index")
    command("credential", "the admin's command: create a credential with a role and scope, revoke one, assign a "
            "package, list them", "credential", "index")
    command("audit", "print the index's audit log and whether its hash chain is intact", "package-filter", "index")
    command("rename", "give the package another name: dataset.toml, src/<import name>/, pyproject.toml", "name")
    return parser


def run(args: argparse.Namespace) -> int:
    """The command's module, pipeline/commands/<command>.py, imported only now: each imports only
    what it needs (the index commands and make versions import no scikit-learn)."""
    command = importlib.import_module(f"pipeline.commands.{args.command.replace('-', '_')}")
    return command.main(args)


def _terminated(signum: int, frame: object) -> None:
    raise Interrupted("terminated (SIGTERM)", 128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = main_parser().parse_args(argv)
    return_freed_memory()  # a big release's steps reuse what the ones before them freed
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
