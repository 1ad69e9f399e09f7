"""Text from the data in the model card: a CSV's class labels, column names, target, units and
file name read as themselves on the registry's version page, never as links or headings."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd

from index.registry.views import _MARKDOWN as REGISTRY_MARKDOWN  # the renderer the version page uses
from pipeline.steps.build import model_card
from pipeline.config import load_dataset_config
from pipeline.steps.data import load_dataset
from pipeline.steps.train import train

LINK = "[x](http://evil.example)"
HEADING = "# heading"
HOSTILE = (LINK, HEADING, "a|b", "`tick` ``two``", "<b>bold</b>", "*em* _u_ &amp; \\")
CARD_HEADINGS = ["h1", "h2", "h2"]  # the card's own: "# mymodel <version>", "## Models", "## Use"
PER_CLASS_HEADING = "\n## Per class (held-out rows)\n"  # a classification's, after "## Models"


class Rendered(HTMLParser):
    def __init__(self, markdown: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""
        self.feed(REGISTRY_MARKDOWN.render(markdown))

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text += data


def assert_shown_as_text(card: str, *values: str) -> None:
    rendered = Rendered(card)
    assert "a" not in rendered.tags and "img" not in rendered.tags and "b" not in rendered.tags, rendered.tags
    own = CARD_HEADINGS + (["h2"] if PER_CLASS_HEADING in card else [])
    assert [t for t in rendered.tags if t in ("h1", "h2", "h3", "h4", "h5", "h6")] == own
    for value in values:
        assert value in rendered.text, (value, rendered.text)


def write_config(tmp_path, csv, target: str, numeric: list[str], extra: str = "", models: str = "LogisticRegression"):
    quoted = ", ".join(pd.Series(numeric).map(lambda c: '"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"'))
    target = target.replace("\\", "\\\\").replace('"', '\\"')
    path = tmp_path / "dataset.toml"
    path.write_text(f'[dataset]\nsource = "{csv}"\ntag = "t"\ntarget = "{target}"\nnumeric_features = [{quoted}]\n'
                    f"{extra}\n[training]\ncv_folds = 2\n[models.{models}]\nestimator = \"{models}\"\n",
                    encoding="utf-8")
    return load_dataset_config(path)


def test_labels_and_column_names_of_a_csv_show_as_text_in_the_rendered_card(tmp_path):
    columns = [f"{value} {number}" for number, value in enumerate(HOSTILE)]
    target = "`y` | [t](http://evil.example)"
    rows = 24 * len(HOSTILE)
    frame = pd.DataFrame({column: [(i * (n + 3)) % 11 for i in range(rows)] for n, column in enumerate(columns)})
    frame[target] = [HOSTILE[i % len(HOSTILE)] for i in range(rows)]
    folder = tmp_path / "[s](http:" / "evil.example)"
    folder.mkdir(parents=True)
    csv = folder / "[d](http:evil.example) data.csv"
    frame.to_csv(csv, index=False)
    config = write_config(tmp_path, csv, target, columns)
    (model,) = train(load_dataset(config), config)
    assert sorted(model.metadata["classes"]) == sorted(HOSTILE)

    card = model_card("1.1.1+t", {model.name: model.metadata})
    assert PER_CLASS_HEADING in card  # the labels are in its table too
    assert_shown_as_text(card, *HOSTILE, target, csv.name, ", ".join(columns))
    assert str(folder) not in card and model.metadata["data"]["source"] == csv.name  # the file's name, not its path


def test_the_target_units_of_a_regression_show_as_text_in_the_rendered_card(tmp_path):
    units = f"{LINK} {HEADING}"
    frame = pd.DataFrame({"x": range(40), "y": [2.0 * i for i in range(40)]})
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    config = write_config(tmp_path, csv, "y", ["x"], f'task = "regression"\ntarget_units = "{units}"', "Ridge")
    (model,) = train(load_dataset(config), config)
    assert_shown_as_text(model_card("1.1.1+t", {model.name: model.metadata}), units)


def test_a_line_break_in_a_column_name_cannot_start_a_heading_or_close_the_code_block():
    meta = {"estimator": "sklearn.svm.SVC", "task": "classification", "classes": ["0", "1"],
            "metrics": {"accuracy": 0.8, "roc_auc": 0.85, "f1": 0.7, "log_loss": 0.44,
                        "cv_accuracy_mean": 0.79, "cv_accuracy_std": 0.02},
            "data": {"tag": "t", "source": "s.csv", "rows": 10, "sha256": "ab" * 32,
                     "target": "y\n# target heading", "split": {"test_size": 0.25, "seed": 0}},
            "training_environment": {"python": "3.11.7", "scikit-learn": "1.9.1", "numpy": "2.4.6"},
            "input_schema": {"columns": [{"name": "a\n```\n# column heading\n[x](http://evil.example)"}]}}
    card = model_card("1.1.1+t", {"SVC": meta})
    assert_shown_as_text(card, "y # target heading", "a ``` # column heading [x](http://evil.example)")
