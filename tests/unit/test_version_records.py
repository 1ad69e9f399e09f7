"""The index's version records from its real WSGI app over a folder of wheels (no server process):
what an index whose folder predates the records serves after its first start, and the records'
rules for uploads (index/numbers.py)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from index.numbers import SEALED, STAGED, TAKEN_BACK, VersionStates
from index.statedb import StateDB
from index.uploads import UploadRefused
from tests.registry_wheels import release_files
from tests.unit.test_channel_views import JSON, UPLOADER, Index, filenames


def test_a_folder_from_before_the_records_is_recorded_once_served_as_before_but_a_killed_releases_sdist(tmp_path):
    packages = tmp_path / "packages"
    wheel, _ = release_files(packages, "1.1.1+titanic", {"LogReg": 0.8})
    shutil.copy(wheel, packages / "mymodel-1.1.0+titanic-py3-none-any.whl")  # a wheel alone: installable, kept
    shutil.copy(wheel, packages / "mymodel_onnx-1.1.1+titanic-py3-none-any.whl")
    _, sdist = release_files(tmp_path / "half", "1.1.2+titanic", {"LogReg": 0.8})
    shutil.copy(sdist, packages)  # a release killed after its sdist, on an index without records
    shutil.copy(wheel, packages / "mymodel_data-1.0.0+titanic-py3-none-any.whl")
    index = Index(tmp_path)
    assert filenames(index.get("/simple/mymodel/", JSON)[1]) == [
        "mymodel-1.1.0+titanic-py3-none-any.whl", "mymodel-1.1.1+titanic-py3-none-any.whl",
        "mymodel-1.1.1+titanic.tar.gz"]  # 1.1.2's sdist alone (a release killed after it) hidden
    assert index.get("/packages/mymodel-1.1.2+titanic.tar.gz")[0] == 404
    assert filenames(index.get("/simple/mymodel-onnx/", JSON)[1]) == ["mymodel_onnx-1.1.1+titanic-py3-none-any.whl"]
    assert filenames(index.get("/simple/mymodel-data/", JSON)[1]) == ["mymodel_data-1.0.0+titanic-py3-none-any.whl"]
    status, _, body = index.call("GET", "/+versions", auth=UPLOADER)
    assert status == 200, body
    records = {r["version"]: r for r in json.loads(body)["versions"] if r["project"] == "mymodel"}
    assert records["1.1.1+titanic"]["state"] == SEALED and records["1.1.2+titanic"]["state"] == STAGED
    assert list(records["1.1.2+titanic"]["files"]) == ["mymodel-1.1.2+titanic.tar.gz"]
    # files put there by hand later are none of the records' business: served as pypiserver serves them
    later, _ = release_files(tmp_path / "later", "1.1.3+titanic", {"LogReg": 0.8})
    shutil.copy(later, packages)
    index.app = Index(tmp_path).app  # a restart records nothing again
    assert "mymodel-1.1.3+titanic-py3-none-any.whl" in filenames(index.get("/simple/mymodel/", JSON)[1])
    assert "mymodel-1.1.2+titanic.tar.gz" not in filenames(index.get("/simple/mymodel/", JSON)[1])


def test_an_upload_of_a_burned_number_or_into_a_sealed_release_is_refused_with_its_reason(tmp_path):
    states = VersionStates(StateDB(tmp_path))
    states.stored("mymodel", "1.1.1+titanic")
    states.check_upload("mymodel", "1.1.1+titanic")  # staged: the release's next file is welcome
    states.seal([("mymodel", "1.1.1+titanic")])
    with pytest.raises(UploadRefused) as sealed:
        states.check_upload("mymodel-onnx", "1.1.1+titanic")  # a twin after a seal without one
    assert sealed.value.status == 409 and "version 1.1.1+titanic was sealed on" in sealed.value.reason
    states.take_back("mymodel", "1.1.1+titanic")
    with pytest.raises(UploadRefused) as burned:
        states.check_upload("mymodel", "1.1.1+titanic")
    assert "was taken back on" in burned.value.reason and "1.1.1+titanic is burned" in burned.value.reason
    states.stored("mymodel-data", "1.0.0+titanic")  # the data package's one wheel: complete on arrival
    assert [(r.project, r.state) for r in states.records(version="1.0.0+titanic")] == [("mymodel-data", SEALED)]
    assert {(r.project, r.state) for r in states.records()} >= {("mymodel", TAKEN_BACK)}
    assert states.hidden() == frozenset({("mymodel", "1.1.1+titanic")})


def test_figures_and_the_compare_page_show_a_version_only_while_it_is_sealed(tmp_path):
    """The registry's figure route and compare page (issue 31) read the releases every page reads: a staged
    version is on none of them until its seal, and a taken-back one on none after."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
    release_files(tmp_path / "packages", "1.1.1+titanic", {"LogReg": 0.8}, figures={"LogReg": {"roc": svg}})
    index = Index(tmp_path)  # its first start: 1.1.1 recorded sealed
    staged = release_files(tmp_path / "staged", "1.1.2+titanic", {"LogReg": 0.9}, figures={"LogReg": {"roc": svg}})
    for path in staged:
        index.upload(path)
    new, figure = "/registry/mymodel/1.1.2+titanic/", "/registry/mymodel/1.1.2+titanic/LogReg/figures/roc.svg"
    compare = "/registry/mymodel/compare/1.1.1+titanic/1.1.2+titanic/"
    assert index.get("/registry/mymodel/1.1.1+titanic/LogReg/figures/roc.svg") == (200, svg.decode())
    assert index.get(compare)[0] == index.get(new)[0] == index.get(figure)[0] == 404
    assert "1.1.2+titanic" not in index.get("/registry/mymodel/")[1]
    files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in staged}
    status, _, body = index.call("POST", "/+seal", form={"name": "mymodel", "version": "1.1.2+titanic",
                                                         "files": json.dumps(files)}, auth=UPLOADER)
    assert status == 200, body
    assert index.get(figure) == (200, svg.decode()) and index.get(new)[0] == 200
    status, page = index.get(compare)
    assert status == 200 and "1.1.1+titanic" in page and "1.1.2+titanic" in page
    status, _, body = index.call("POST", "/", form={":action": "remove_pkg", "name": "mymodel",
                                                    "version": "1.1.2+titanic"}, auth=UPLOADER)
    assert status == 200, body  # taken back through the index: its number burned, its pages gone
    assert index.get(compare)[0] == index.get(new)[0] == index.get(figure)[0] == 404
