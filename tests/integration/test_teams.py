"""Many teams on one real index: credentials with a role and a scope made by ``make credential``,
enforced by the server whatever the client (twine, plain HTTP), names owned by the first upload,
revocation at once, and the hash-chained audit log ``make audit`` prints, kept across a restart.

Team A owns the index's own package (mymodel: sealed releases, channels), team B ``fraud-model``.
One index for the whole file; the tests run in order and build on each other's writes."""

from __future__ import annotations

import hashlib
import sqlite3
import stat
from pathlib import Path

import pytest

from tests.helpers import REPO, assert_clean_error, index_env, make, pipeline
from tests.integration.test_index import get, post_form, post_upload, real_sdist, real_wheel, seal, twine
from tests.integration.test_reader import post_form as post_path

pytestmark = pytest.mark.integration

VERSION = "1.0.0+a"
TEAMS = {  # name: (packages, role)
    "a-ci": ("mymodel", "upload"), "a-lead": ("mymodel", "maintain"),
    "b-ci": ("fraud-model", "upload"), "b-lead": ("fraud-model", "maintain"),
    "watcher": ("*", "read"),
    "x-one": ("shared-model,x-model", "upload"), "x-two": ("shared-model", "upload"),
}


def create(env, name: str, packages: str, role: str) -> tuple[str, str]:
    made = make(REPO, "credential", env, f"NAME={name}", f"PACKAGES={packages}", f"ROLE={role}")
    last = made.stdout.strip().splitlines()[-1]
    assert last.startswith(f"{name}:") and len(last) > len(name) + 24, made.stdout
    return name, last.split(":", 1)[1]


@pytest.fixture(scope="module")
def teams(tmp_path_factory):
    """An index requiring credentials for reads too, with every team's credentials made by make credential."""
    tmp = tmp_path_factory.mktemp("teams")
    env = index_env(tmp, INDEX_AUTH="read")
    pipeline(REPO, env, "index")
    made = {name: create(env, name, packages, role) for name, (packages, role) in TEAMS.items()}
    files = tmp / "files"
    files.mkdir()
    yield env, made, files
    pipeline(REPO, env, "index-stop", check=False)


def url(env) -> str:
    return f"http://127.0.0.1:{env['INDEX_PORT']}"


def upload(env, auth: tuple[str, str], *paths: Path):
    return twine(env, *paths, username=auth[0], password=auth[1])


def remove(env, name: str, version: str, auth: tuple[str, str]) -> int:
    """pypiserver's removal, as twine's users (and a failed make release) send it."""
    return post_path(env, "/", {":action": "remove_pkg", "name": name, "version": version}, auth)


def version_of(name: str, version: str, reason: str | None = None) -> dict[str, str]:
    return {"name": name, "version": version, **({"reason": reason} if reason else {})}


def test_each_credential_acts_only_on_its_packages_within_its_role(teams):
    env, made, files = teams
    a_ci, a_lead, b_ci, b_lead, watcher = (made[name] for name in ("a-ci", "a-lead", "b-ci", "b-lead", "watcher"))
    sdist, wheel = real_sdist(files, VERSION), real_wheel(files, VERSION)
    uploaded = upload(env, a_ci, sdist, wheel)
    assert uploaded.returncode == 0, uploaded.stdout + uploaded.stderr
    assert seal(env, VERSION, sdist, wheel)[0] == 200  # as the admin, as make release does
    fraud = real_wheel(files, "2.0.0", project="fraud_model")
    assert upload(env, b_ci, fraud).returncode == 0

    other = real_wheel(files, "2.0.1", project="fraud_model")
    refused = upload(env, a_ci, other)  # twine, another team's package
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    assert post_upload(env, other.name, other.read_bytes(), a_lead) == 403  # plain HTTP alike
    assert not (Path(env["INDEX_DIR"]) / other.name).exists()
    for action in ("yank", "unyank"):
        assert post_form(env, action, version_of("fraud-model", "2.0.0", "bad"), a_lead)[0] == 403
    assert post_form(env, "promote", {"channel": "prod", **version_of("mymodel", VERSION)}, b_lead)[0] == 403
    assert post_form(env, "promote", {"channel": "prod", **version_of("mymodel", VERSION)}, a_ci)[0] == 403  # role
    assert post_form(env, "yank", version_of("mymodel", VERSION, "bad"), a_ci)[0] == 403
    assert post_form(env, "take-back", version_of("mymodel", VERSION), a_ci)[0] == 403  # sealed: maintain only
    assert remove(env, "mymodel", VERSION, a_ci) == 403
    unfinished = real_sdist(files, "1.0.1+a")  # a release that failed after its first upload takes it back
    assert upload(env, a_ci, unfinished).returncode == 0
    assert remove(env, "mymodel", "1.0.1+a", a_ci) == 200
    assert not (Path(env["INDEX_DIR"]) / unfinished.name).exists()

    assert post_form(env, "yank", version_of("fraud-model", "2.0.0", "broken scores"), b_lead)[0] == 200
    assert post_form(env, "unyank", version_of("fraud-model", "2.0.0"), b_lead)[0] == 200
    status, answer = post_form(env, "promote", {"channel": "prod", **version_of("mymodel", VERSION)}, a_lead)
    assert status == 200, answer
    assert answer["promotion"]["user"] == "a-lead"  # the channel history's who: the authenticated credential
    assert post_form(env, "yank", version_of("mymodel", VERSION, "too slow"), a_lead)[0] == 200

    for path in ("/simple/", "/simple/mymodel/", f"/packages/{wheel.name}", "/"):
        assert get(url(env) + path, watcher)[0] == 200, path
        assert get(url(env) + path)[0] == 401, path
    assert upload(env, watcher, real_wheel(files, "9.0.0", project="watched")).returncode != 0
    assert post_form(env, "yank", version_of("fraud-model", "2.0.0", "x"), watcher)[0] == 403


def test_the_first_upload_claims_a_name_for_its_scope_and_the_admin_can_assign_it(teams):
    env, made, files = teams
    first, second = real_wheel(files, "1.0.0", project="shared_model"), real_wheel(files, "1.0.1", project="shared_model")
    assert upload(env, made["x-two"], first).returncode == 0  # claims shared-model for x-two's scope
    refused = upload(env, made["x-one"], second)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    make(REPO, "credential", env, "ASSIGN=shared-model", "NAME=x-one")
    assert upload(env, made["x-one"], second).returncode == 0
    assert upload(env, made["x-two"], real_wheel(files, "1.0.2", project="shared_model")).returncode != 0
    listed = make(REPO, "credential", env, "LIST=1").stdout
    assert "x-one\tupload\tshared-model,x-model\towns shared-model" in listed


def test_a_revoked_credential_is_refused_on_its_next_request(teams):
    env, made, files = teams
    leaving = create(env, "leaving", "fraud-model", "upload")
    assert get(url(env) + "/simple/fraud-model/", leaving)[0] == 200  # remembered by the index now
    revoked = make(REPO, "credential", env, "REVOKE=leaving")
    assert "revoked leaving" in revoked.stdout
    assert get(url(env) + "/simple/fraud-model/", leaving)[0] == 403
    assert upload(env, leaving, real_wheel(files, "3.0.0", project="fraud_model")).returncode != 0
    assert_clean_error(make(REPO, "credential", env, "REVOKE=leaving", check=False), "not a live credential")
    assert_clean_error(make(REPO, "credential", env, "NAME=boss", "PACKAGES=*", "ROLE=admin", check=False),
                       "one admin")


def audit_lines(env, *args: str) -> list[str]:
    return make(REPO, "audit", env, *args).stdout.strip().splitlines()


def test_every_write_is_audited_once_with_its_credential_and_kept_across_a_restart(teams):
    env, made, files = teams
    lines = audit_lines(env)
    assert lines[-1].startswith("chain intact: ")

    def entries(*words: str) -> list[str]:
        return [line for line in lines if all(f"  {word}" in line for word in words)]

    assert len(entries("a-ci", "upload", f"mymodel {VERSION}")) == 2
    assert len(entries("a-ci", "remove", "mymodel 1.0.1+a")) == 1
    assert len(entries("mymodel", "seal", f"mymodel {VERSION}")) == 1
    assert len(entries("b-ci", "upload", "fraud-model 2.0.0")) == 1
    assert len(entries("b-lead", "yank", "fraud-model 2.0.0")) == 1
    assert "reason=\"broken scores\"" in entries("b-lead", "yank", "fraud-model 2.0.0")[0]
    assert len(entries("b-lead", "unyank", "fraud-model 2.0.0")) == 1
    assert len(entries("a-lead", "promote", f"mymodel {VERSION}")) == 1
    assert len(entries("a-lead", "yank", f"mymodel {VERSION}")) == 1
    assert len(entries("mymodel", "local", "credential-created")) == len(TEAMS) + 1
    assert len(entries("mymodel", "local", "credential-revoked")) == 1
    assert len(entries("mymodel", "local", "assign", "shared-model")) == 1
    assert not entries("a-ci", "fraud-model") and not entries("watcher")  # refused: never recorded
    wheel = Path(env["INDEX_DIR"]) / real_wheel(files, VERSION).name  # the bytes the index stored
    assert f"sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}" in " ".join(entries("a-ci", "upload"))
    assert all("127.0.0.1" in line for line in entries("upload"))
    status, page = get(url(env) + "/registry/mymodel/", made["watcher"])  # the package's recent changes
    recent = page.decode().split('<table id="audit">')[1]
    assert status == 200 and "<td>a-lead</td><td>promote</td>" in recent and "<td>a-ci</td><td>upload</td>" in recent
    assert "fraud-model" not in recent
    fraud_only = audit_lines(env, "PACKAGE=fraud-model")
    assert fraud_only[:-1] and all("fraud-model" in line for line in fraud_only[:-1])

    pipeline(REPO, env, "index-stop")
    pipeline(REPO, env, "index")
    assert audit_lines(env)[:-1] == lines[:-1]  # the log, as it was
    assert upload(env, made["x-two"], real_wheel(files, "1.0.3", project="shared_model")).returncode != 0  # owned
    assert upload(env, made["b-ci"], real_wheel(files, "2.0.2", project="fraud_model")).returncode == 0
    assert get(url(env) + "/simple/fraud-model/", made["watcher"])[0] == 200

    state = Path(env["INDEX_STATE"])
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "index.sqlite3").stat().st_mode) == 0o600
    secrets = [secret for _, secret in made.values()]
    records = (state / "index.sqlite3").read_bytes()
    assert not any(secret.encode() in records for secret in secrets)  # only bcrypt hashes

    with sqlite3.connect(state / "index.sqlite3") as db:  # someone rewrites history: who made entry 5
        db.execute("UPDATE audit SET who = 'someone-else' WHERE seq = 5")
    broken = make(REPO, "audit", env, check=False)
    assert_clean_error(broken, "breaks at entry #5")
