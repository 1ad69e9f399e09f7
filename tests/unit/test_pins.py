"""What make released and make consumer hand out when the index says a release is yanked."""

from __future__ import annotations

import pytest

from pipeline.errors import VersionError
from pipeline.views.pins import Yanks, last_release, yanked_note

RELEASED = ["1.1.3+titanic", "1.1.2+titanic", "1.1.1+titanic"]  # newest first, as pins.releases lists them


def test_the_last_release_is_handed_out_when_it_is_not_yanked():
    assert last_release("1.1.3+titanic", Yanks({"1.1.2+titanic": "x"}), RELEASED) == ("1.1.3+titanic", None)
    assert last_release("1.1.3+titanic", Yanks({}, "could not ask"), RELEASED) == ("1.1.3+titanic", None)


def test_a_yanked_last_release_gives_the_newest_before_it_that_is_not_and_names_it():
    version, note = last_release("1.1.3+Titanic", Yanks({"1.1.3+titanic": "bad split", "1.1.2+titanic": ""}), RELEASED)
    assert version == "1.1.1+titanic"
    assert note == ("mymodel 1.1.3+Titanic, this clone's last release, is yanked (bad split): 1.1.1+titanic is the "
                    "newest release of this clone that is not (make unyank VERSION=1.1.3+Titanic hands it out again)")


def test_every_release_yanked_is_an_error_that_says_what_to_do():
    with pytest.raises(VersionError, match=r"1\.1\.3\+titanic, this clone's last release, is yanked \(no reason given\), "
                                           r"and so is every release of this clone before it; release a fixed version"):
        last_release("1.1.3+titanic", Yanks(dict.fromkeys(RELEASED, "")), RELEASED)


def test_a_version_asked_for_by_name_is_kept_with_a_note():
    assert yanked_note("1.1.2+titanic", Yanks({"1.1.2+titanic": "bad split"}), "ROLLBACK=") == (
        "ROLLBACK=1.1.2+titanic is yanked (bad split): an exact pin still installs it (pip and uv warn), a range skips it")
    assert yanked_note("1.1.1+titanic", Yanks({"1.1.2+titanic": "bad split"}), "VERSION=") is None
