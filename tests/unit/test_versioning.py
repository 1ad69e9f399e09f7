import pytest
import semver

from pipeline.errors import VersionError
from pipeline.steps.versioning import (
    bump_part, canonical_tag, check_publishable, highest, next_version, parse, to_pep440, to_semver,
)


@pytest.mark.parametrize("tag", ["titanic", "titanic.v2", "titanic.from.kaggle", "iris2024", "v2", "2024.5"])
def test_canonical_tags_are_accepted(tag):
    assert canonical_tag(tag) == tag


@pytest.mark.parametrize("tag, canonical", [
    ("Titanic_v2", "titanic.v2"),
    ("Titanic", "titanic"),
    ("titanic-v2", "titanic.v2"),
    ("titanic_2024-05", "titanic.2024.5"),
    ("from.kaggle.007", "from.kaggle.7"),
])
def test_non_canonical_tags_are_refused_with_the_canonical_form(tag, canonical):
    with pytest.raises(VersionError, match=rf"use DATA={canonical}$"):
        canonical_tag(tag)


@pytest.mark.parametrize("tag", ["titanic v2", "titanic+v2", "tit@nic", "titanic/v2", ".titanic", "titanic.", "ü"])
def test_tags_pep440_cannot_hold_are_refused(tag):
    with pytest.raises(VersionError, match="cannot be a PEP 440 local label"):
        canonical_tag(tag)


def test_empty_tag_is_refused():
    with pytest.raises(VersionError, match="empty"):
        canonical_tag("")


@pytest.mark.parametrize("bump, part", [
    ("major", "major"), ("minor", "minor"), ("patch", "patch"),
    ("release", "major"), ("interface", "minor"), ("logic", "patch"),
])
def test_bump_table(bump, part):
    assert bump_part(bump) == part


@pytest.mark.parametrize("bump", ["banana", "", "Patch", "build"])
def test_unknown_bump_is_refused(bump):
    with pytest.raises(VersionError, match="is not a bump; use one of major, release, minor"):
        bump_part(bump)


@pytest.mark.parametrize("published, recorded, bump, tag, expected", [
    ([], None, "patch", "titanic", "1.1.1+titanic"),            # fresh clone, empty index: the seed's version
    ([], "1.1.0", "patch", "titanic", "1.1.1+titanic"),
    (["1.1.1+titanic"], "1.1.0", "patch", "titanic", "1.1.2+titanic"),
    (["1.1.1+titanic", "1.1.2+titanic"], "1.1.2+titanic", "minor", "titanic", "1.2.0+titanic"),
    (["1.2.0+titanic"], "1.2.0+titanic", "major", "titanic.v2", "2.0.0+titanic.v2"),
    (["1.1.1+titanic"], "1.4.0+titanic", "patch", "titanic", "1.4.1+titanic"),   # the repo is ahead
    (["1.9.0+titanic", "1.10.0+titanic"], "1.1.0", "patch", "titanic", "1.10.1+titanic"),  # numeric, not text
    (["2.0.0+iris"], None, "logic", "titanic", "2.0.1+titanic"),  # other tags count too
    (["1.1.1+titanic"], None, "interface", "titanic", "1.2.0+titanic"),
    (["1.1.1+titanic"], None, "release", "titanic", "2.0.0+titanic"),
])
def test_next_version(published, recorded, bump, tag, expected):
    assert next_version(published, recorded, bump, tag) == expected


def test_next_version_never_collides_with_published():
    published = ["1.1.1+titanic", "1.1.2+iris", "1.1.3+titanic"]
    version = next_version(published, "1.1.1+titanic", "patch", "iris")
    check_publishable(version, published)
    assert version == "1.1.4+iris"


def test_semver_and_pep440_round_trip():
    assert to_pep440(semver.Version(1, 2, 3), "titanic.v2") == "1.2.3+titanic.v2"
    assert to_semver("1.2.3+titanic.v2") == semver.Version(1, 2, 3)
    assert highest(["1.1.2+titanic", "1.10.0+a", "1.9.9+z"]) == "1.10.0+a"
    assert highest([]) is None


@pytest.mark.parametrize("version", ["1.1", "1.1.1-titanic.from-kaggle", "1.1.1rc1+titanic", "banana", "1!1.1.1"])
def test_versions_outside_x_y_z_tag_are_refused(version):
    with pytest.raises(VersionError):
        parse(version)


def test_same_release_with_another_tag_is_refused():
    with pytest.raises(VersionError, match=r"1.1.1\+titanic is already published.*release 1.1.2\+iris instead"):
        check_publishable("1.1.1+iris", ["1.1.1+titanic"])


def test_existing_version_is_refused():
    with pytest.raises(VersionError, match=r"already on the index.*release 1.1.2\+titanic instead"):
        check_publishable("1.1.1+titanic", ["1.1.1+titanic"])


def test_lower_version_is_refused():
    with pytest.raises(VersionError, match=r"lower than 1.2.0\+titanic.*release 1.2.1\+titanic instead"):
        check_publishable("1.1.5+titanic", ["1.1.1+titanic", "1.2.0+titanic"])
