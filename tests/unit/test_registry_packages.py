"""One index, many model packages: which projects ``/`` lists, what each row says, and the
package pages, from the index's real WSGI app over a folder of wheels (no server process)."""

from __future__ import annotations

import shutil
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest

from index.registry import views
from index.registry.facts import WheelFacts
from index.registry.releases import ModelPackage, PackageFile, Release
from index.server import make_app
from index.yanks import YANKS_FILE, YankStore
from tests.registry_wheels import release_files

HOSTILE = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'


class Index:
    def __init__(self, tmp: Path) -> None:
        self.packages, self.state = tmp / "packages", tmp / "state"
        self.packages.mkdir()
        (tmp / "htpasswd").write_text("")
        self.app = make_app(self.packages, tmp / "htpasswd", state_dir=self.state)

    def get(self, path: str) -> tuple[int, str]:
        environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
        setup_testing_defaults(environ)
        status = []
        body = b"".join(self.app(environ, lambda line, headers, exc=None: status.append(line)))
        return int(status[0].split()[0]), body.decode()

    def yank(self, project: str, version: str) -> None:
        YankStore(self.state / YANKS_FILE).set(project, version, "bad data")


def rows(page: str) -> list[str]:
    return [part.split('"', 1)[0] for part in page.split('<tr data-package="')[1:]]


@pytest.fixture()
def index(tmp_path):
    index = Index(tmp_path)
    for n in range(2):
        release_files(index.packages, f"1.1.{n}+titanic", {"LogReg": 0.80 + n / 100, "SVC": 0.78})
    release_files(index.packages, "2.0.0+survival", {"Forest": 0.91}, package="titanic_survival")
    return index


def test_root_lists_each_model_package_with_its_newest_version_metric_and_install_line(index):
    wheel, _ = release_files(index.packages / "side", "1.1.1+titanic", {"LogReg": 0.5})
    shutil.copy(wheel, index.packages / "mymodel_staging-1.1.1+titanic-py3-none-any.whl")  # a channel: wheel only
    plain = release_files(index.packages / "plain", "3.0", {"X": 0.1}, package="plainlib")
    Path(plain[0]).write_bytes(b"no zip")  # a project with wheel and sdist but no model manifest
    shutil.move(plain[0], index.packages)
    shutil.move(plain[1], index.packages)
    shutil.rmtree(index.packages / "plain")
    shutil.rmtree(index.packages / "side")

    status, page = index.get("/")
    assert status == 200
    assert rows(page) == ["mymodel", "titanic-survival"]  # no channel, no plain project
    mine = page.split('data-package="mymodel"')[1].split("</tr>")[0]
    assert "1.1.1+titanic" in mine and ">titanic<" in mine and "accuracy 0.8100" in mine and "LogReg" in mine
    assert "pip install --index-url http://127.0.0.1/simple/ mymodel==1.1.1+titanic" in mine
    theirs = page.split('data-package="titanic-survival"')[1].split("</tr>")[0]
    assert 'href="registry/titanic-survival/"' in theirs and "accuracy 0.9100" in theirs and "Forest" in theirs
    assert "titanic-survival==2.0.0+survival" in theirs and "available" in theirs


def test_each_package_keeps_its_own_page_and_version_pages(index):
    status, page = index.get("/registry/titanic-survival/")
    assert status == 200 and '<h1>titanic-survival</h1>' in page
    assert 'data-version="2.0.0+survival"' in page and "1.1.1+titanic" not in page
    assert 'href="../../registry/titanic-survival/2.0.0%2Bsurvival/"' in page  # resolves to the version page
    status, version = index.get("/registry/titanic_survival/2.0.0+survival/")
    assert status == 200 and "titanic-survival 2.0.0+survival" in version and "Forest" in version
    assert 'href="../../../registry/titanic-survival/"' in version  # back to the package's page
    assert index.get("/registry/mymodel/")[0] == 200
    assert index.get("/registry/mymodel/2.0.0+survival/")[0] == 404


def test_names_that_are_no_model_package_are_not_found_and_not_kept(index):
    for name in ("nosuch", "mymodel-staging", "%3Cscript%3E"):
        assert index.get(f"/registry/{name}/")[0] == 404
        assert index.get(f"/registry/{name}/1.0/")[0] == 404
    pages = index.app._pypiserver_config.backend._forget.__self__  # the server's page cache
    assert not {"nosuch", "mymodel-staging", "<script>"} & set(pages._entries)  # a made-up name costs no memory


def test_a_yanked_newest_version_and_a_package_with_every_version_yanked_are_marked(index):
    index.yank("mymodel", "1.1.1+titanic")
    index.yank("titanic-survival", "2.0.0+survival")
    page = index.get("/")[1]
    mine = page.split('data-package="mymodel"')[1].split("</tr>")[0]
    assert "1.1.0+titanic" in mine and "newest yanked" in mine and "mymodel==1.1.0+titanic" in mine
    theirs = page.split('data-package="titanic-survival"')[1].split("</tr>")[0]
    assert "every version yanked" in theirs


def test_one_model_package_keeps_root_as_its_page(tmp_path):
    index = Index(tmp_path)
    release_files(index.packages, "2.0.0+survival", {"Forest": 0.91}, package="titanic_survival")
    page = index.get("/")[1]
    assert "<h1>titanic-survival</h1>" in page and 'href="registry/titanic-survival/2.0.0%2Bsurvival/"' in page
    assert 'id="packages"' not in page


def test_a_wheel_whose_name_is_no_python_identifier_is_not_read_as_a_package(tmp_path):
    index = Index(tmp_path)
    release_files(index.packages, "1.0.0+x", {"Forest": 0.9})
    wheel, sdist = release_files(index.packages / "odd", "1.0.0+x", {"Forest": 0.9}, package="odd")
    shutil.move(wheel, index.packages / "9odd-1.0.0+x-py3-none-any.whl")
    shutil.move(sdist, index.packages / "9odd-1.0.0+x.tar.gz")
    status, page = index.get("/")
    assert status == 200 and 'id="packages"' not in page and "<h1>mymodel</h1>" in page


def package(project: str, model: str, tag: str, yanked: str | None = None, problem: str = "") -> ModelPackage:
    version = f"1.0.0+{tag}"
    files = [PackageFile(f"x{suffix}", f"x{suffix}", "ab" * 32, 10, 0.0, "/nowhere") for suffix in (".whl", ".tar.gz")]
    facts = WheelFacts(manifest={"files": {}}, models={model: {"name": model, "metrics": {"accuracy": 0.5}}},
                       problem=problem, built=True)
    return ModelPackage(project, [Release(version, files[0], files[1], facts, yanked)])


def test_the_package_list_escapes_every_name_from_an_upload():
    page = views.packages_html([package(HOSTILE, HOSTILE, "t", yanked=HOSTILE, problem=HOSTILE),
                                package('a"b', "<b>m</b>", "x")], f"http://h/{HOSTILE}/")
    assert "<script" not in page and "<img" not in page and "<b>m" not in page
    assert "&lt;script&gt;document.title=&quot;owned&quot;&lt;/script&gt;" in page
    assert 'href="registry/%3Cscript%3Edocument.title%3D%22owned%22%3C%2Fscript%3E' in page
    assert 'data-package="a&quot;b"' in page and "every version yanked" in page


def test_the_same_wheel_bytes_under_another_name_do_not_replace_a_packages_facts(tmp_path):
    index = Index(tmp_path)
    wheel, sdist = release_files(index.packages, "1.1.0+titanic", {"LogReg": 0.8})
    shutil.copy(wheel, index.packages / "impostor-1.1.0+titanic-py3-none-any.whl")  # read first: its name sorts first
    shutil.copy(sdist, index.packages / "impostor-1.1.0+titanic.tar.gz")
    status, page = index.get("/")
    assert status == 200 and 'id="packages"' not in page and "<h1>mymodel</h1>" in page  # no impostor/models/
    assert "0.8000 / 0.8500" in page  # mymodel's facts, not the impostor's empty ones
    assert index.get("/registry/impostor/")[0] == 404
