"""``python -m <package> info``: the release notes the build recorded, as text."""

from mymodel.__main__ import release_lines

NOTES = {
    "bump": {"part": "minor", "kind": "interface", "required": "minor", "against": "1.1.2+titanic",
             "reasons": ["input column 'cabin' added", "model bytes changed"]},
    "bump_overridden": {"required": "minor", "used": "patch", "against": "1.1.2+titanic"},
    "gate": {"metric": "rmse", "lower_is_better": True, "max_rmse_increase": 1.0},
    "gate_overridden": {"against": "1.1.2+titanic", "models": ["SVC", "Ridge"], "max_rmse_increase": 1.0},
    "gate_skipped": {"against": "1.1.2+titanic", "reason": "its wheel cannot be read"},
    "comparison_skipped": {"against": "1.1.2+titanic", "reason": "SVC/metadata.json: metrics is null"},
    "later_key": {"a": [1, 2], "b": None},
}


def test_each_release_note_is_a_line_of_text():
    assert release_lines(NOTES) == [
        "version: minor (interface change) against 1.1.2+titanic: input column 'cabin' added; model bytes changed",
        "bump overridden (FORCE=1): patch instead of the required minor against 1.1.2+titanic",
        "gate: rmse, lower is better, max_rmse_increase 1.0",
        "gate overridden (FORCE=1) against 1.1.2+titanic: SVC; Ridge (max_rmse_increase 1.0)",
        "gate not compared against 1.1.2+titanic: its wheel cannot be read",
        "contract not compared against 1.1.2+titanic: SVC/metadata.json: metrics is null",
        "later key: a 1; 2, b",
    ]


def test_no_notes_or_notes_of_another_shape_print_nothing_or_plain_words():
    assert release_lines({}) == [] and release_lines(None) == [] and release_lines(["x"]) == []
    assert release_lines({"bump": "patch"}) == ["bump: patch"]
    assert not any("{" in line for line in release_lines(NOTES))
