"""make versions and make diff against a real index holding three real releases:
a seed change (logic/data, patch) and a new input column (interface, minor)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import assert_clean_error, copy_repo, edit_config, fill_index, free_port, index_env, make, pipeline

pytestmark = pytest.mark.integration
VERSIONS = ("1.1.1+titanic", "1.1.2+titanic", "1.2.0+titanic")


@dataclass
class History:
    repo: Path
    env: dict[str, str]

    @property
    def cache(self) -> Path:
        return Path(self.env["INDEX_STATE"]) / "published"

    def wheel_json(self, version: str, member: str) -> dict:
        """A JSON file of a release's wheel, as recorded in the clone's dist/."""
        with zipfile.ZipFile(self.repo / "dist" / f"mymodel-{version}-py3-none-any.whl") as wheel:
            return json.loads(wheel.read(f"mymodel/models/{member}"))


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> History:
    """1.1.1; seed 0 -> 1 released as a patch; 'cabin' added released as a minor."""
    tmp = tmp_path_factory.mktemp("registry")
    repo = copy_repo(tmp / "repo")
    env = index_env(tmp)
    fill_index(Path(env["INDEX_DIR"]))
    # A new split scores other rows: the gate is not what these tests are about.
    edit_config(repo, "max_accuracy_drop = 0.01", "max_accuracy_drop = 1.0")
    make(repo, "release", env, "BUMP=patch")
    edit_config(repo, "seed = 0", "seed = 1")
    make(repo, "release", env, "BUMP=patch")
    edit_config(repo, 'categorical_features = ["sex", "embarked"]', 'categorical_features = ["sex", "embarked", "cabin"]')
    make(repo, "release", env, "BUMP=minor")
    yield History(repo, env)
    pipeline(repo, env, "index-stop", check=False)


def version_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"\d+\.\d+\.\d+\+", line)]


def test_versions_lists_every_release_newest_first_with_its_accuracies(history):
    out = make(history.repo, "versions", history.env).stdout
    lines = version_lines(out)
    assert [line.split()[0] for line in lines] == list(reversed(VERSIONS)), out
    for line in lines:
        version = line.split()[0]
        metrics = history.wheel_json(version, "metrics.json")
        assert len(metrics) == 3
        for name, values in metrics.items():
            assert f"{values['accuracy']:.4f}" in line, (name, line)
        size = (history.repo / "dist" / f"mymodel-{version}-py3-none-any.whl").stat().st_size
        assert " titanic " in line and (f"  {size / 1e6:.1f} MB  " in line or f"  {size / 1e3:.0f} KB  " in line), line
        bump = history.wheel_json(version, "manifest.json")["release"].get("bump")
        kind, why = (bump["kind"], "; ".join(bump["reasons"])) if bump else ("-", "-")
        assert re.search(rf"  {re.escape(kind)}\s+{re.escape(why)}$", line.rstrip()), line
    # the accuracies differ between the releases: the lines are not one version's numbers repeated
    assert len({line.split(None, 5)[5] for line in lines}) == 3, out


def test_versions_json_is_for_scripts(history):
    rows = json.loads(make(history.repo, "versions", history.env, "FORMAT=json").stdout)
    assert [row["version"] for row in rows] == list(reversed(VERSIONS))
    for row in rows:
        wheel = history.repo / "dist" / row["wheel"]
        assert row["wheel_size"] == wheel.stat().st_size and row["data_tag"] == "titanic"
        assert row["accuracy"] == {n: m["accuracy"] for n, m in history.wheel_json(row["version"], "metrics.json").items()}
        assert row["uploaded"].endswith("+00:00")
        assert row["bump"] == (history.wheel_json(row["version"], "manifest.json")["release"].get("bump") or None)


def test_a_second_versions_reads_the_cache_and_downloads_no_wheel(history):
    make(history.repo, "versions", history.env)
    entries = sorted(history.cache.glob("*.json"))
    wheels = {json.loads(e.read_text())["wheel"]: e for e in entries}
    assert sorted(wheels) == sorted(f"mymodel-{v}-py3-none-any.whl" for v in VERSIONS)
    stamps = {e: e.stat().st_mtime_ns for e in entries}
    # Mark the cached 1.1.1 entry: the listing shows the mark only if it reads the cache, not the wheel.
    entry = wheels["mymodel-1.1.1+titanic-py3-none-any.whl"]
    original = entry.read_bytes()
    marked = json.loads(original)
    marked["snapshot"]["models"]["SVC"]["metrics"]["accuracy"] = 0.1234
    entry.write_text(json.dumps(marked))
    stamps[entry] = entry.stat().st_mtime_ns
    try:
        out = make(history.repo, "versions", history.env).stdout
        assert "0.1234" in next(line for line in version_lines(out) if line.startswith("1.1.1+titanic")), out
        assert {e: e.stat().st_mtime_ns for e in history.cache.glob("*.json")} == stamps
        entry.write_text("{not json")  # a damaged entry is read from the wheel again
        out = make(history.repo, "versions", history.env).stdout
        assert "0.1234" not in out and json.loads(entry.read_text()) == json.loads(original)
    finally:
        entry.write_bytes(original)


def test_a_wheel_whose_bytes_differ_from_its_link_hash_is_refused_and_not_cached(history, tmp_path):
    """A plain static index (INDEX_URL) whose page lists the 1.1.1 wheel under another file's sha256."""
    wheel, sdist = (history.repo / "dist" / f"mymodel-1.1.1+titanic{s}" for s in ("-py3-none-any.whl", ".tar.gz"))
    files = tmp_path / "site" / "files"
    files.mkdir(parents=True)
    for path in (wheel, sdist):
        shutil.copy2(path, files / path.name)
    wrong = hashlib.sha256(sdist.read_bytes()).hexdigest()
    page = tmp_path / "site" / "simple" / "mymodel" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(f'<a href="../../files/{quote(wheel.name)}#sha256={wrong}">{wheel.name}</a>\n'
                    f'<a href="../../files/{quote(sdist.name)}#sha256={wrong}">{sdist.name}</a>\n')
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", tmp_path / "site"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = {**history.env, "INDEX_URL": f"http://127.0.0.1:{port}/", "INDEX_STATE": str(tmp_path / "state")}
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        result = make(history.repo, "versions", env, check=False)
        assert_clean_error(result, f"lists {wheel.name} with sha256 {wrong}", "the file on the index changed")
        assert not (tmp_path / "state" / "published").exists()
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_half_published_version_is_not_listed(history):
    stray = Path(history.env["INDEX_DIR"]) / "mymodel-1.3.0+titanic.tar.gz"
    shutil.copy2(history.repo / "dist" / "mymodel-1.2.0+titanic.tar.gz", stray)
    try:
        out = make(history.repo, "versions", history.env).stdout
        assert [line.split()[0] for line in version_lines(out)] == list(reversed(VERSIONS)), out
        result = make(history.repo, "diff", history.env, "A=1.3.0+titanic", check=False)
        assert_clean_error(result, "1.3.0+titanic is not published", ", ".join(reversed(VERSIONS)))
    finally:
        stray.unlink()


def test_diff_names_the_new_column_as_an_interface_change_requiring_minor(history):
    out = make(history.repo, "diff", history.env, "A=1.1.2+titanic", "B=1.2.0+titanic").stdout
    assert "required bump: minor (interface)" in out, out
    interface = out.split("\ninterface:\n")[1].split("\n\n")[0]
    assert "input column 'cabin' added" in interface, out
    report = json.loads(make(history.repo, "diff", history.env, "A=1.1.2+titanic", "B=1.2.0+titanic",
                             "FORMAT=json").stdout)
    assert report["required_bump"] == "minor" and report["required_kind"] == "interface"
    assert report["changes"]["interface"] == ["input column 'cabin' added"]
    assert report["changes"]["data"] == []
    # the libraries are the same; with 'cabin' one-hot encoded the preprocessed matrix is sparse, and a
    # model fitted on it keeps a scipy sparse matrix (SVC's support vectors): the pickles now import scipy
    before, after = (history.wheel_json(v, "manifest.json")["requires"] for v in ("1.1.2+titanic", "1.2.0+titanic"))
    assert sorted(set(after) - set(before)) == ["scipy"] and set(before) <= set(after)
    assert report["changes"]["environment"] == [f"requirement scipy{after['scipy']} added (installing the package "
                                                "installs it)"]
    assert set(report["metrics"]) == {"LogisticRegression", "RandomForestClassifier", "SVC"}
    accuracy = report["metrics"]["SVC"]["accuracy"]
    assert (accuracy["a"], accuracy["b"]) == (history.wheel_json("1.1.2+titanic", "metrics.json")["SVC"]["accuracy"],
                                              history.wheel_json("1.2.0+titanic", "metrics.json")["SVC"]["accuracy"])


def test_diff_shows_the_seed_change_under_data_as_a_patch(history):
    out = make(history.repo, "diff", history.env, "A=1.1.1+titanic", "B=1.1.2+titanic").stdout
    assert "required bump: patch (logic)" in out, out
    assert (f"side by side (metrics, per-class metrics, data, figures): http://127.0.0.1:{history.env['INDEX_PORT']}"
            "/registry/mymodel/compare/1.1.1%2Btitanic/1.1.2%2Btitanic/") in out, out
    data = out.split("\ndata:\n")[1].split("\n\n")[0]
    assert "split seed 0 -> 1" in data, out
    assert "interface:\n  (no change)" in out, out
    logic = out.split("\nlogic:\n")[1].split("\n\n")[0]
    assert "RandomForestClassifier: random_state 0 -> 1" in logic, out
    # the calibrated SVC's seed is one change, said once (not also as the repr of its estimator)
    assert "SVC: estimator__random_state 0 -> 1" in logic and "SVC: estimator SVC(" not in logic, out
    metrics = out.split("\nmetrics:\n")[1]
    assert re.search(r"SVC\s+accuracy\s+0\.\d{4}\s+0\.\d{4}\s+([+-]0\.\d{4}|=)", metrics), out


def test_each_release_draws_its_baselines_curves_only_on_rows_and_inputs_both_share(history):
    # The split changed: 1.1.1's models, from the wheel this clone recorded, scored on the rows both splits held out.
    notes = history.wheel_json("1.1.2+titanic", "manifest.json")["release"]["figures_baseline"]
    assert notes["version"] == "1.1.1+titanic" and 0 < notes["rows"] < 328, notes
    for model in ("LogisticRegression", "RandomForestClassifier", "SVC"):
        baseline = history.wheel_json("1.1.2+titanic", f"{model}/evaluation.json")["baseline"]
        own = history.wheel_json("1.1.1+titanic", f"{model}/evaluation.json")["curves"]["1"]
        assert baseline["rows"] == notes["rows"] and list(baseline["curves"]) == ["1"]
        assert baseline["curves"]["1"]["roc"] != own["roc"]  # other rows than 1.1.1's own 328
    # A new input column: no curves of 1.1.2 on the new version's figures.
    assert history.wheel_json("1.2.0+titanic", "manifest.json")["release"]["figures_baseline"] == {
        "version": "1.1.2+titanic", "not_drawn": "the input columns changed"}
    assert "baseline" not in history.wheel_json("1.2.0+titanic", "SVC/evaluation.json")


def test_diff_without_b_compares_with_this_clones_trained_models(history):
    make(history.repo, "train", history.env)
    out = make(history.repo, "diff", history.env, "A=1.1.2+titanic").stdout
    assert "1.1.2+titanic -> this clone (make train)" in out and "input column 'cabin' added" in out, out
    # the clone trains what 1.2.0 released: byte-identical models, nothing to release
    same = json.loads(make(history.repo, "diff", history.env, "A=1.2.0+titanic", "FORMAT=json").stdout)
    assert same["identical"] is True and same["required_bump"] is None, same
    models = history.repo / "src" / "mymodel" / "models"
    models.rename(models.with_name("models.away"))
    try:
        result = make(history.repo, "diff", history.env, "A=1.2.0+titanic", check=False)
        assert_clean_error(result, "there are no trained models", "run make train first")
    finally:
        models.with_name("models.away").rename(models)


def test_unknown_or_missing_versions_are_clean_errors_listing_the_published_ones(history):
    for args in (["A=9.9.9+titanic"], ["A=1.1.1+titanic", "B=not-a-version"]):
        result = make(history.repo, "diff", history.env, *args, check=False)
        assert_clean_error(result, "is not published", "published: 1.2.0+titanic, 1.1.2+titanic, 1.1.1+titanic")
    assert_clean_error(make(history.repo, "diff", history.env, check=False), "make diff needs A=")
    assert_clean_error(make(history.repo, "versions", history.env, "FORMAT=xml", check=False), "FORMAT='xml'")
