"""Credentials with roles and scopes, owned names and the audit chain, on a real SQLite state folder."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from passlib.apache import HtpasswdFile

from index.access import AccessError, CredentialAuther, adopt_htpasswd, assign, create, refusal, revoke
from index.audit import AuditLog
from index.statedb import StateDB


@pytest.fixture
def db(tmp_path):
    htpasswd = HtpasswdFile(default_scheme="sha256_crypt")
    htpasswd.set_password("mymodel", "admin-secret")
    htpasswd.set_password("mymodel-reader", "reader-secret")
    (tmp_path / "htpasswd").write_bytes(htpasswd.to_string())
    state = StateDB(tmp_path / "state")
    adopt_htpasswd(state, tmp_path / "htpasswd", "mymodel-reader")
    return state


def test_an_older_state_folder_becomes_an_admin_and_a_reader_with_the_same_passwords(db):
    auther = CredentialAuther(db)
    assert auther("mymodel", "admin-secret") and not auther("mymodel", "wrong")
    assert auther.credential("mymodel").role == "admin" and auther.read_only("mymodel-reader")
    assert auther("mymodel-reader", "reader-secret")


def test_a_revocation_in_another_process_drops_the_remembered_check(db, tmp_path):
    secret = create(db, "ci-churn", "churn-model", "upload")
    auther = CredentialAuther(db)
    assert auther("ci-churn", secret) and auther.remembered("ci-churn", secret)
    revoke(StateDB(tmp_path / "state"), "ci-churn")  # another connection: another worker
    assert not auther.remembered("ci-churn", secret) and not auther("ci-churn", secret)
    assert secret not in (tmp_path / "state" / "index.sqlite3").read_bytes().decode(errors="replace")


def test_roles_scopes_twins_and_the_first_upload_claiming_a_name(db):
    for name, packages, role in (("a", "churn-model", "upload"), ("b", "churn-model,other", "maintain")):
        create(db, name, packages, role)
    auther = CredentialAuther(db)
    a, b, admin = (auther.credential(name) for name in ("a", "b", "mymodel"))
    assert refusal(db, a, "upload", "churn-model-onnx") is None  # a twin: claims churn-model for a's scope
    assert "owned by another team" in refusal(db, b, "yank", "churn_model")
    assert "needs maintain" in refusal(db, a, "yank", "churn-model")
    assert "not fraud-model" in refusal(db, a, "upload", "fraud-model")
    assert refusal(db, admin, "promote", "churn-model") is None
    assign(db, "churn-model", "b")
    assert refusal(db, b, "yank", "churn-model") is None and refusal(db, a, "upload", "churn-model") is not None


@pytest.mark.parametrize("args, fragment", [(("Bad Name", "x", "upload"), "not a credential name"),
                                            (("x", "x", "owner"), "not one of"),
                                            (("x", "x", "admin"), "one admin"),
                                            (("x", ",", "upload"), "names no package")])
def test_bad_credential_requests_are_one_line_errors(db, args, fragment):
    with pytest.raises(AccessError, match=fragment):
        create(db, *args)


def test_an_edited_or_removed_entry_breaks_the_chain_where_it_was(db):
    log = AuditLog(db)
    for number in range(5):
        log.append("a", "127.0.0.1", "upload", "churn-model", f"1.0.{number}", {"sha256": "0" * 64})
    assert log.verify() == (5, None)
    assert [entry.version for entry in log.entries("churn-model-data", limit=2)] == ["1.0.3", "1.0.4"]
    with sqlite3.connect(db.path) as connection:
        connection.execute("UPDATE audit SET detail = '{}' WHERE seq = 3")
    assert log.verify() == (3, 3)
    with sqlite3.connect(db.path) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 3")
    assert log.verify() == (3, 4)


def test_the_package_page_shows_recent_entries_newest_first_and_escaped(db):
    from index.registry.views import audit_html

    log = AuditLog(db)
    log.append("a", "127.0.0.1", "upload", "churn-model", "1.0.0", {"sha256": "f" * 64, "file": "<b>x.whl"})
    log.append("<script>", "127.0.0.1", "yank", "churn-model", "1.0.0", {"reason": "a & b"})
    shown = audit_html(log.entries("churn-model"))
    assert shown.index('data-seq="2"') < shown.index('data-seq="1"')
    assert "<script>" not in shown and "&lt;script&gt;" in shown and "&lt;b&gt;x.whl" in shown and "a &amp; b" in shown
    assert "f" * 13 not in shown  # the digest is shortened
    assert audit_html([]) == "" and "cannot be shown" in audit_html("locked")


def test_a_fleet_bringing_one_credential_at_once_pays_for_one_bcrypt_check(db, monkeypatch):
    """The credentials table's auther, as index/auth.py's for an htpasswd file: 20 requests arriving with
    the same secret while its first check runs wait for that check (before: 20 bcrypt checks)."""
    from index import access

    secret = create(db, "fleet", "churn-model", "read")
    auther = CredentialAuther(db)
    release, calls, real = threading.Event(), [], access.matches

    def slow_matches(password, digest):  # the first check still runs when the rest of the fleet arrives
        calls.append(password)
        release.wait(5)
        return real(password, digest)

    monkeypatch.setattr(access, "matches", slow_matches)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(auther("fleet", secret))) for _ in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join()
    assert answers == [True] * 20 and len(calls) == 1


def test_a_remembered_check_skips_the_lock_until_anything_is_committed(db, tmp_path):
    """A fleet with the reader's credential does not queue on the auther's lock; after a commit anywhere (a
    revocation in another worker) the next request goes through it and is refused."""
    secret = create(db, "fleet", "churn-model", "read")
    auther = CredentialAuther(db)
    assert auther("fleet", secret)
    answers = []
    with auther._lock:
        asking = threading.Thread(target=lambda: answers.append(auther("fleet", secret)))
        asking.start()
        asking.join(2.0)
        assert answers == [True]
    revoke(StateDB(tmp_path / "state"), "fleet")
    with auther._lock:
        asking = threading.Thread(target=lambda: answers.append(auther("fleet", secret)))
        asking.start()
        asking.join(0.3)
        assert answers == [True]  # waiting for the lock, to read the credentials again
    asking.join(5.0)
    assert answers == [True, False]
