from passlib.apache import HtpasswdFile

from index.auth import CachedHtpasswdAuther


def write(path, user, password):
    htpasswd = HtpasswdFile(default_scheme="bcrypt")
    htpasswd.set_password(user, password)
    path.write_bytes(htpasswd.to_string())


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
    import os
    os.utime(path, (1, 2_000_000_000))  # a distinct mtime, whatever the clock's resolution
    assert not auther("alice", "old")
    assert auther("alice", "new")


def test_nothing_is_written_to_disk(tmp_path):
    write(tmp_path / "htpasswd", "alice", "s3cret")
    before = sorted(p.name for p in tmp_path.iterdir())
    auther = CachedHtpasswdAuther(tmp_path / "htpasswd")
    auther("alice", "s3cret")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
