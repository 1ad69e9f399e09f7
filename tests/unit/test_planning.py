"""The reason a release records for its version number (manifest bump reasons, make versions, the
registry page), for each way a release comes about: built the way pipeline.steps.planning.plan builds it."""

from __future__ import annotations

from mymodel.contract import Change
from pipeline.steps.planning import FIRST_RELEASE, Plan, first_release_reason

SEED = Change("data", "split seed 0 -> 2")
BYTES = Change("logic", "model 'SVC' bytes changed")
COLUMN = Change("interface", "input column 'cabin' added")
METRIC = Change("metrics", "SVC: accuracy 0.8 -> 0.81 (+0.0100)")


def test_nothing_changed_and_a_higher_bump_says_the_bump_was_asked_for_not_first_release():
    plan = Plan("1.1.3+titanic", "patch", None, "1.1.2+titanic", [], asked="BUMP=patch")
    assert plan.reasons == ["no change; BUMP=patch requested"]
    assert plan.release_notes()["bump"]["reasons"] == ["no change; BUMP=patch requested"]
    assert plan.describe() == "no change against 1.1.2+titanic; BUMP=patch requested (logic) -> 1.1.3+titanic"


def test_nothing_changed_but_the_data_tag_names_both():
    plan = Plan("2.0.0+titanic.v2", "major", None, "1.2.0+titanic", [], asked="BUMP=major")
    assert plan.reasons == ["no change; BUMP=major requested", "data tag titanic -> titanic.v2"]
    assert plan.describe() == ("no change against 1.2.0+titanic; BUMP=major requested (release); "
                               "data tag titanic -> titanic.v2 -> 2.0.0+titanic.v2")


def test_nothing_changed_and_forced_says_force():
    plan = Plan("1.1.3+titanic", "patch", None, "1.1.2+titanic", [], asked="FORCE=1")
    assert plan.reasons == ["no change; FORCE=1 requested"]


def test_only_metrics_changed_says_so():
    plan = Plan("1.1.3+titanic", "patch", None, "1.1.2+titanic", [METRIC], asked="BUMP=patch")
    assert plan.reasons == ["only metrics changed; BUMP=patch requested"]


def test_a_data_tag_change_joins_the_changes_that_move_the_version():
    plan = Plan("1.1.3+titanic.v2", "patch", "patch", "1.1.2+titanic", [BYTES, SEED], asked=None)
    assert plan.reasons == ["split seed 0 -> 2", "data tag titanic -> titanic.v2", "model 'SVC' bytes changed"]


def test_a_data_tag_the_metadata_already_names_is_said_once():
    plan = Plan("1.1.3+titanic.v2", "patch", "patch", "1.1.2+titanic",
                [Change("data", "data tag titanic -> titanic.v2")])
    assert plan.reasons == ["data tag titanic -> titanic.v2"]


def test_changes_are_the_reasons_and_a_higher_bump_is_shown_beside_them():
    plan = Plan("2.0.0+titanic", "major", "minor", "1.1.2+titanic", [BYTES, COLUMN, METRIC], asked="BUMP=major")
    assert plan.reasons == ["input column 'cabin' added", "model 'SVC' bytes changed"]
    assert plan.describe() == ("interface change against 1.1.2+titanic: input column 'cabin' added; "
                               "model 'SVC' bytes changed -> 2.0.0+titanic (BUMP=major: release)")


def test_the_first_release_of_a_clone_that_never_released():
    reason = first_release_reason("1.1.0", [])
    assert reason == FIRST_RELEASE == "first release of this clone"
    plan = Plan("1.1.1+titanic", "patch", "patch", None, first=reason)
    assert plan.reasons == [FIRST_RELEASE] and plan.describe() == "first release of this clone -> 1.1.1+titanic"


def test_the_first_release_on_an_index_of_a_clone_that_released_elsewhere():
    reason = first_release_reason("1.2.0+titanic", [])
    assert reason == "first release on this index (this repository last released 1.2.0+titanic, which is not on it)"
    assert Plan("1.2.1+titanic", "patch", "patch", None, first=reason).reasons == [reason]


def test_an_index_whose_every_version_is_yanked_is_not_a_first_release():
    assert first_release_reason("1.1.0", ["1.1.1+titanic", "1.1.2+titanic"]) == (
        "no version on this index to compare with: the 2 it holds are yanked or incomplete")
    assert first_release_reason("1.1.1+titanic", ["1.1.1+titanic"]) == (
        "no version on this index to compare with: the one it holds is yanked or incomplete")


def test_a_release_not_compared_says_so():
    plan = Plan("1.2.5+titanic", "patch", None, "1.2.4+titanic", unreadable="no manifest")
    assert plan.reasons == ["not compared with 1.2.4+titanic (FORCE=1): no manifest"]
