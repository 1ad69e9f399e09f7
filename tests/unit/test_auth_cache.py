import os
import threading
import time

import pytest
from passlib.apache import HtpasswdFile
from passlib.hash import bcrypt

from index.auth import CachedHtpasswdAuther


def write(path, user, password, **more_users):
    previous = path.stat().st_mtime_ns if path.exists() else 0
    htpasswd = HtpasswdFile(default_scheme="bcrypt")
    for name, secret in {user: password, **more_users}.items():
        htpasswd.set_hash(name, bcrypt.using(rounds=4).hash(secret))  # real bcrypt, at the cheapest cost
    path.write_bytes(htpasswd.to_string())
    # A distinct mtime (the auther's change detection), whatever the clock's resolution.
    os.utime(path, ns=(0, max(path.stat().st_mtime_ns, previous + 1_000_000_000)))


class CountingHtpasswd:
    """Counts the full password checks the auther asks passlib for."""

    def __init__(self, auther):
        self.calls = 0
        real = auther._file.check_password

        def check(user, password):
            self.calls += 1
            return real(user, password)

        auther._file.check_password = check


def test_right_credentials_are_checked_in_full_once(tmp_path):
    write(tmp_path / "htpasswd", "alice", "s3cret")
    auther = CachedHtpasswdAuther(tmp_path / "htpasswd")
    counter = CountingHtpasswd(auther)
    assert all(auther("alice", "s3cret") for _ in range(5))
    assert counter.calls == 1


def test_wrong_credentials_are_checked_every_time(tmp_path):
    write(tmp_path / "htpasswd", "alice", "s3cret")
    auther = CachedHtpasswdAuther(tmp_path / "htpasswd")
    counter = CountingHtpasswd(auther)
    assert auther("alice", "s3cret")
    assert not any(auther("alice", "wrong") for _ in range(3))
    assert not auther("mallory", "s3cret")
    assert counter.calls == 1 + 3 + 1


def test_a_changed_password_file_forgets_what_was_verified(tmp_path):
    path = tmp_path / "htpasswd"
    write(path, "alice", "old")
    auther = CachedHtpasswdAuther(path)
    assert auther("alice", "old")
    write(path, "alice", "new")
    assert not auther("alice", "old")
    assert auther("alice", "new")


def test_nothing_is_written_to_disk(tmp_path):
    write(tmp_path / "htpasswd", "alice", "s3cret")
    before = sorted(p.name for p in tmp_path.iterdir())
    auther = CachedHtpasswdAuther(tmp_path / "htpasswd")
    auther("alice", "s3cret")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


class PausedCheck:
    """Holds the first password check for ``user`` after passlib answered it, as a slow
    bcrypt check would be held while another request reloads the file."""

    def __init__(self, auther, user):
        self.answered, self.resume = threading.Event(), threading.Event()
        real = auther._file.check_password

        def check(name, password):
            result = real(name, password)
            if name == user and not self.answered.is_set():
                self.answered.set()
                assert self.resume.wait(30)
            return result

        auther._file.check_password = check


@pytest.mark.parametrize("change", ["user removed", "password rotated"])
def test_a_check_that_outlives_a_change_of_the_file_is_not_remembered(tmp_path, change):
    path = tmp_path / "htpasswd"
    write(path, "alice", "old", bob="bobs")
    auther = CachedHtpasswdAuther(path)
    paused = PausedCheck(auther, "alice")
    in_flight = threading.Thread(target=auther, args=("alice", "old"))
    in_flight.start()
    assert paused.answered.wait(30)
    if change == "user removed":
        write(path, "bob", "bobs")
    else:
        write(path, "alice", "new", bob="bobs")
    assert auther("bob", "bobs")  # this request reloads the file
    paused.resume.set()
    in_flight.join()
    assert not auther("alice", "old")
    assert auther("alice", "new") == (change == "password rotated")


@pytest.mark.parametrize("how", ["replaced", "rewritten in place"])
def test_a_file_changed_with_its_mtime_kept_forgets_the_old_password(tmp_path, how):
    path = tmp_path / "htpasswd"
    write(path, "alice", "old")
    auther = CachedHtpasswdAuther(path)
    assert auther("alice", "old")
    kept = path.stat().st_mtime_ns
    if how == "replaced":
        write(tmp_path / "new", "alice", "new")
        os.replace(tmp_path / "new", path)
    else:
        write(path, "alice", "newer")  # same length as "old" would not matter: ctime moves
    os.utime(path, ns=(0, kept))
    assert path.stat().st_mtime_ns == kept
    assert not auther("alice", "old")
    assert auther("alice", "new" if how == "replaced" else "newer")


def test_a_removed_file_lets_nobody_in_until_it_is_back(tmp_path):
    path = tmp_path / "htpasswd"
    write(path, "alice", "s3cret")
    auther = CachedHtpasswdAuther(path)
    assert auther("alice", "s3cret")
    path.unlink()
    assert not auther("alice", "s3cret") and not auther("alice", "s3cret")
    write(path, "alice", "s3cret")
    assert auther("alice", "s3cret")


def test_a_fleet_bringing_one_credential_at_once_pays_for_one_check(tmp_path):
    write(tmp_path / "htpasswd", "reader", "s3cret")
    auther = CachedHtpasswdAuther(tmp_path / "htpasswd")
    counter = CountingHtpasswd(auther)
    release = threading.Event()
    real = auther._file.check_password

    def slow_check(user, password):  # the first check is still running when the rest of the fleet arrives
        release.wait(5)
        return real(user, password)

    auther._file.check_password = slow_check
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(auther("reader", "s3cret"))) for _ in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # all of them arrived while the first check runs
    release.set()
    for thread in threads:
        thread.join()
    assert answers == [True] * 20
    assert counter.calls == 1


def test_concurrent_wrong_credentials_are_each_checked_in_full(tmp_path):
    write(tmp_path / "htpasswd", "reader", "s3cret")
    auther = CachedHtpasswdAuther(tmp_path / "htpasswd")
    counter = CountingHtpasswd(auther)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(auther("reader", "wrong"))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [False] * 5
    assert counter.calls == 5


def test_a_remembered_pair_is_let_in_without_the_lock_until_the_file_changes(tmp_path):
    """A fleet with one credential does not queue on the auther's lock; a changed file still sends the
    next request through it (and the old password is refused)."""
    path = tmp_path / "htpasswd"
    write(path, "alice", "old")
    auther = CachedHtpasswdAuther(path)
    assert auther("alice", "old")
    held = []
    with auther._lock:
        asking = threading.Thread(target=lambda: held.append(auther("alice", "old")))
        asking.start()
        asking.join(2.0)
        assert held == [True]  # answered while the lock was held: no lock taken
    write(path, "alice", "new")
    late = []
    with auther._lock:
        asking = threading.Thread(target=lambda: late.append(auther("alice", "old")))
        asking.start()
        asking.join(0.3)
        assert late == []  # the file changed: this one waits for the lock, to reload
    asking.join(5.0)
    assert late == [False] and auther("alice", "new")
