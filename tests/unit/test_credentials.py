import json
import stat

from passlib.apache import HtpasswdFile

from index import credentials

FILES = ("credentials.json", "reader.json", "htpasswd")


def contents(state):
    return {name: (state / name).read_bytes() for name in FILES}


def test_first_start_makes_two_owner_only_credentials_and_a_second_changes_nothing(tmp_path):
    state = tmp_path / "state"
    uploader = credentials.ensure(state, "mymodel", "mymodel-reader")
    reader = credentials.read_reader(state)
    assert (uploader.username, reader.username) == ("mymodel", "mymodel-reader")
    assert uploader.password != reader.password and len(reader.password) >= 24
    assert all(stat.S_IMODE((state / name).stat().st_mode) == 0o600 for name in FILES)
    htpasswd = HtpasswdFile(str(state / "htpasswd"))
    assert htpasswd.check_password("mymodel", uploader.password)
    assert htpasswd.check_password("mymodel-reader", reader.password)
    assert not htpasswd.check_password("mymodel-reader", uploader.password)
    before = contents(state)
    assert credentials.ensure(state, "mymodel", "mymodel-reader") == uploader
    assert contents(state) == before


def test_a_one_user_state_folder_gets_the_reader_and_keeps_its_upload_password(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    old = HtpasswdFile(default_scheme="bcrypt")
    old.set_password("mymodel", "old-upload-password")
    (state / "htpasswd").write_bytes(old.to_string())
    (state / "credentials.json").write_text(json.dumps({"username": "mymodel", "password": "old-upload-password"}))
    assert credentials.ensure(state, "mymodel", "mymodel-reader").password == "old-upload-password"
    reader = credentials.read_reader(state)
    htpasswd = HtpasswdFile(str(state / "htpasswd"))
    assert htpasswd.check_password("mymodel", "old-upload-password")
    assert htpasswd.check_password("mymodel-reader", reader.password)
    assert stat.S_IMODE((state / "reader.json").stat().st_mode) == 0o600


def test_a_reader_file_whose_user_is_missing_from_htpasswd_is_added_back(tmp_path):
    state = tmp_path / "state"
    credentials.ensure(state, "mymodel", "mymodel-reader")
    reader = credentials.read_reader(state)
    htpasswd = HtpasswdFile(str(state / "htpasswd"))
    htpasswd.delete("mymodel-reader")
    htpasswd.save()
    credentials.ensure(state, "mymodel", "mymodel-reader")
    assert credentials.read_reader(state) == reader
    assert HtpasswdFile(str(state / "htpasswd")).check_password("mymodel-reader", reader.password)
