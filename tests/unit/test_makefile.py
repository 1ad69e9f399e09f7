import os
import re

from tests.helpers import REPO, run


def makefile_targets():
    text = (REPO / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE).group(1).split()
    return phony, text


def test_every_target_is_documented_in_make_help():
    phony, text = makefile_targets()
    listed = run(["make", "--no-print-directory", "-C", REPO, "help"]).stdout
    documented = re.findall(r"^  make (\S+)\s+\S", listed, re.MULTILINE)
    assert sorted(documented) == sorted(phony)
    for target in phony:
        assert re.search(rf"^{re.escape(target)}:.*## \S", text, re.MULTILINE), target


def test_every_target_is_exercised_by_a_test():
    phony, _ = makefile_targets()
    tests = "\n".join(p.read_text() for p in (REPO / "tests").rglob("test_*.py"))
    ci = (REPO / ".ci" / "run").read_text()
    for target in phony:
        runs_it = re.search(rf"""make\(\S+, ["']{re.escape(target)}["']""", tests) or \
            re.search(rf"""\[["']make["'][^\]]*["']{re.escape(target)}["']""", tests) or \
            (target == "test" and "make test" in ci) or (target == "help" and '"help"' in tests)
        assert runs_it, f"no test runs make {target}"


def test_ci_runs_the_suite_as_a_background_job(tmp_path):
    """.ci/run starts make test with SIGINT ignored and no standard input (a make on PATH reports both)."""
    report = tmp_path / "report"
    fake = tmp_path / "make"
    fake.write_text("#!/usr/bin/env python3\nimport os, signal, sys\n"
                    f"open({str(report)!r}, 'w').write(' '.join([str(signal.getsignal(signal.SIGINT) == signal.SIG_IGN),"
                    " os.path.realpath('/proc/self/fd/0'), *sys.argv[1:]]))\n")
    fake.chmod(0o755)
    run([REPO / ".ci" / "run"], env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert report.read_text() == "True /dev/null test"
