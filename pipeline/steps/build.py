"""Build the sdist and wheel from a staged copy of the package.

The copy gets the version, the integrity manifest, the model card (the long
description) and the runtime requirements (pipeline/steps/requirements.py: what the models'
pickles and the package's own code import); the repository's own files are not touched.
Timestamps come from the commit, so rebuilding the same commit gives the same bytes.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from pipeline.package.own_package import contract, published, store
from pipeline.views import markdown_text as md
from pipeline.steps import evaluation, figures, onnx_export, onnx_package, provenance
from pipeline.steps.backend import normalise_modes, run_backend
from pipeline.config import DATASET_CONFIG, IMPORT_NAME, MODELS_DIR, PACKAGE, PACKAGE_DIR, REPO
from pipeline.package.package_name import configured_description
from pipeline.steps.data_wheel import card_line as data_package_line
from pipeline.errors import BuildError, UnreadableRelease
from pipeline.steps.requirements import runtime_requirements
from pipeline.steps.team_code import METADATA_KEY as TEAM_CODE_KEY
from pipeline.steps.team_code import PACKAGE_SOURCES, team_code
from pipeline.steps.model_files import METADATA_FILE, METRICS_FILE, MODEL_FILE, write_json
from pipeline.steps.versioning import parse, version_file_text

SHOWN_METRICS, task_of = contract.SHOWN_METRICS, contract.task_of
EVALUATION_FILE = evaluation.EVALUATION_FILE
HASH_BLOCK, sha256_of, sha256_file = store.HASH_BLOCK, store.sha256_of, store.sha256_file

MANIFEST_FILE = "manifest.json"
CARD_FILE = "MODEL_CARD.md"  # the model card, also in the package as models/MODEL_CARD.md (its figures' links are relative)
STAGED_FROM_REPO = ("pyproject.toml", "MANIFEST.in", "build_backend/streaming_wheel.py")


@dataclass(frozen=True)
class Built:
    version: str
    sdist: Path
    wheel: Path
    twin: Path | None = None  # the <name>-onnx wheel (pipeline/steps/onnx_package.py), when a model converted

    @property
    def files(self) -> tuple[Path, ...]:
        # upload order: the sdist claims the version first, the -onnx wheel goes up last
        return (self.sdist, self.wheel) + ((self.twin,) if self.twin else ())


def trained_models(models_dir: Path = MODELS_DIR) -> list[str]:
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir()
                  if (p / MODEL_FILE).is_file() and (p / METADATA_FILE).is_file())


def models_requirements(models_dir: Path, metadata: dict[str, dict], team_modules: list[str] = ()) -> dict[str, str]:
    """What the wheel will require for these models (model name -> metadata.json): the distributions their
    pickles and the package's shipped code (the team's modules included) import, in the ranges of the
    versions they were trained with."""
    trained_with = {library: version for meta in metadata.values()
                    for library, version in meta.get("training_environment", {}).items()}
    sources = [name for name in (*PACKAGE_SOURCES, *team_modules) if name.endswith(".py")]
    return runtime_requirements({name: models_dir / name / MODEL_FILE for name in metadata}, trained_with,
                                [PACKAGE_DIR / name for name in sources])


def model_card(version: str, metadata: dict[str, dict], figure_files: dict[str, dict[str, str]] | None = None,
               baseline: str | None = None) -> str:
    """The package's long description: what pip show -v and the index display; the package ships it as
    models/MODEL_CARD.md too, where the links to each model's figures (``figure_files``: model -> kind ->
    path relative to models/) open the installed files; ``baseline``: the version whose curves they show dashed.

    Every value from the data (labels, column names, target, units, source) goes through
    pipeline.views.markdown_text: it reads as itself and never becomes a link or a heading."""
    first = next(iter(metadata.values()))
    data, env, task = first["data"], first["training_environment"], task_of(first)
    target = md.code(data["target"])
    if task == "regression":
        units = f", in {md.text(first['target_units'])}" if first.get("target_units") else ""
        what = f"- Task: regression: regressors predicting the number {target}{units}"
    else:
        classes = ", ".join(md.text(label) for label in first.get("classes", []))
        what = f"- Task: classification: classifiers predicting {target}, one of {classes}"
    shown = SHOWN_METRICS[task]
    team = sorted({key for meta in metadata.values() for key in contract.team_metrics(meta)})
    lines = [
        f"# {PACKAGE} {version}",
        "",
        f"Trained models packaged for `pip install {PACKAGE}=={version}`.",
        "",
        f"- Data tag: {md.code(data['tag'])} (source {md.code(data['source'])}, {data['rows']} rows, "
        f"sha256 `{data['sha256'][:16]}…`)",
        *data_package_line(data),
        what,
        f"- Target: {target}; held-out split {data['split']['test_size']} with seed {data['split']['seed']}",
        f"- Trained with Python {env['python']}, scikit-learn {env['scikit-learn']}, numpy {env['numpy']}",
        "",
        "## Models",
        "",
        "| model | estimator | " + " | ".join([*(label for _, label in shown), *(md.text(key) for key in team)]) + " |",
        "|---|---|" + "---|" * (len(shown) + len(team)),
    ]
    for name, meta in metadata.items():
        m = meta["metrics"]
        cells = [f"{m[key]:.4f}" for key, _ in shown]
        cells[-1] += f" ± {m[shown[-1][0].replace('_mean', '_std')]:.4f}"  # the cross-validated mean ± its std
        cells += [f"{m[key]:.4f}" if key in m else "-" for key in team]
        lines.append(f"| {md.text(name)} | `{meta['estimator']}` | " + " | ".join(cells) + " |")
    lines += _per_class_lines(metadata)
    # Inside the fenced block nothing is Markdown: kept on one line, a name cannot close the fence.
    columns = md.one_line(", ".join(c["name"] for c in first["input_schema"]["columns"]))
    lines += _figures_section(figure_files or {}, baseline)
    lines += ["", "## Use", "", "```python", f"import {IMPORT_NAME}", f"{IMPORT_NAME}.list_models()",
              f"{IMPORT_NAME}.predict({json.dumps(next(iter(metadata)))}, rows)  # rows with columns: {columns}", "```",
              "", f"`python -m {IMPORT_NAME} info | predict | validate`, or `{PACKAGE} info | ...`, from the command line.", ""]
    return "\n".join(lines)


def _per_class_lines(metadata: dict[str, dict]) -> list[str]:
    """The card's per-class table: each classifier's precision, recall, F1 and support on the held-out rows."""
    rows = [f"| {md.text(name)} | {md.text(label)} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | "
            f"{v['support']} |" for name, meta in metadata.items()
            for label, v in (meta.get(contract.PER_CLASS_KEY) or {}).items()]
    if not rows:
        return []
    return ["", "## Per class (held-out rows)", "", "| model | class | precision | recall | F1 | support |",
            "|---|---|---|---|---|---|", *rows]


def _figures_section(figure_files: dict[str, dict[str, str]], baseline: str | None) -> list[str]:
    """Each model's figures as images, linked relative to the card's place in the package (models/)."""
    if not figure_files:
        return []
    dashed = f"; dashed curves are {md.code(baseline)}'s, on the same rows" if baseline else ""
    lines = ["", "## Figures", "", f"Drawn from the held-out rows at release (the numbers are in each model's "
             f"`evaluation.json`){dashed}.", ""]
    for model, files in figure_files.items():
        lines += [f"### {md.text(model)}", ""]
        lines += [f"![{md.text(model)}: {figures.TITLES[kind]}]({path})" for kind, path in files.items()]
        lines.append("")
    return lines[:-1]


def build(version: str, out_dir: Path, models_dir: Path = MODELS_DIR, release_notes: dict | None = None,
          baselines: dict[str, dict | None] | None = None) -> Built:
    """Build ``version`` into ``out_dir`` and check the exact contents of both files. ``baselines``: the published
    baseline's curves for each model's figures (pipeline/steps/gate.py; make verify: what the published wheel recorded)."""
    version = str(parse(version))
    names = trained_models(models_dir)
    if not names:
        raise BuildError(f"there are no trained models in {models_dir}; run make train first (make release does it)")
    metadata = {n: json.loads((models_dir / n / METADATA_FILE).read_text()) for n in names}
    # One data tag everywhere: the version's. Models trained under another tag (make train, then
    # make build VERSION=...+other) get it in their packaged metadata.json, as the card and manifest do.
    tag = parse(version).local
    retagged = [n for n, meta in metadata.items() if tag and meta["data"].get("tag") != tag]
    for name in retagged:
        metadata[name]["data"]["tag"] = tag
    modules = _team_modules_as_trained(metadata)
    onnx = onnx_export.packaged_files(models_dir, metadata)
    requires = models_requirements(models_dir, metadata, modules)
    epoch = provenance.source_date_epoch()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot write the build to {out_dir} ({exc.strerror}); make dist/ a writable folder "
                         "with free space (rm -rf dist is safe: releases are on the index)") from None
    # The -onnx twin builds beside the package (its backend in a process of its own, on the other core), and so
    # does the sdist, from a copy of the staged folder (each backend writes its egg-info into the folder it builds).
    with ThreadPoolExecutor(max_workers=2) as side, tempfile.TemporaryDirectory(prefix=f"{IMPORT_NAME}-build-") as tmp:
        twin = side.submit(onnx_package.build_twin, version, out_dir, models_dir, metadata, release_notes or {}, epoch,
                           tag)
        stage = Path(tmp)
        _stage(stage, models_dir, names, modules)
        package = stage / "src" / IMPORT_NAME
        for name in retagged:
            write_json(package / "models" / name / METADATA_FILE, metadata[name])
        (package / "version.py").write_text(version_file_text(version))
        drawn = _figures(package / "models", version, metadata, baselines or {})
        shown = sorted({b["version"] for b in (baselines or {}).values() if b})
        card = model_card(version, metadata, drawn, shown[0] if shown else None)
        (package / "models" / CARD_FILE).write_text(card)
        manifest = {
            "version": version,
            "data_tag": tag,
            "requires": requires,
            "release": release_notes or {},
            "files": {str(p.relative_to(package / "models")): sha256_file(p)
                      for p in sorted((package / "models").rglob("*")) if p.is_file()},
            # model.onnx files stay beside the models, for the <name>-onnx distribution: not in this wheel
            **({"onnx": onnx} if onnx else {}),
            **({"figures": drawn} if drawn else {}),
        }
        (package / "models" / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        (stage / CARD_FILE).write_text(card)
        (stage / "requirements-runtime.txt").write_text("".join(f"{n}{s}\n" for n, s in requires.items()))
        normalise_modes(stage)
        with tempfile.TemporaryDirectory(prefix=f"{IMPORT_NAME}-sdist-") as copy:
            shutil.copytree(stage, Path(copy) / "stage", copy_function=_linked)  # the models' bytes once on disk
            sdist = side.submit(run_backend, Path(copy) / "stage", out_dir, epoch, version, ("sdist",))
            try:
                run_backend(stage, out_dir, epoch, version, ("wheel",))
            finally:
                wait([sdist])  # its folder goes when this block ends
            sdist.result()
        built = Built(version, out_dir / sdist_name(version), out_dir / wheel_name(version))
        for path in built.files:
            if not path.is_file():
                raise BuildError(f"python -m build did not write {path}; run it by hand to see why")
        reproducible_sdist(built.sdist, epoch)
        check_contents(built, names, modules, drawn)
        return dataclasses.replace(built, twin=twin.result())


def _linked(source: str, target: str) -> None:
    """``target`` as a hard link to ``source`` (the backends only read the staged files), a copy where the
    file system cannot link."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _figures(models: Path, version: str, metadata: dict[str, dict], baselines: dict[str, dict | None]) -> dict:
    """Each staged model's evaluation.json with its baseline's curves, and the figures drawn from it."""
    for name, baseline in baselines.items():
        source = models / name / EVALUATION_FILE
        if baseline and source.is_file():
            write_json(source, {**json.loads(source.read_text(encoding="utf-8")), "baseline": baseline})
    return figures.draw_all(models, version, metadata)


def recorded_baselines(wheel: zipfile.ZipFile, models: dict[str, dict], version: str) -> dict[str, dict | None]:
    """The baseline curves each model's evaluation.json in a published wheel records (for make verify's
    rebuild); UnreadableRelease when one is malformed."""
    try:
        found = {name: evaluation.published(wheel, IMPORT_NAME, name) for name in models}
    except published.MalformedBuild as exc:
        raise UnreadableRelease(f"the wheel of {version} on the index cannot be read ({exc})",
                                "yank it (make yank VERSION=...) and publish a fixed version") from None
    return {name: document.get("baseline") for name, document in found.items() if document}


def _team_modules_as_trained(metadata: dict[str, dict]) -> list[str]:
    """The team modules to ship, refused unless they are byte for byte those the models were trained with."""
    current = team_code()
    for name, meta in metadata.items():
        trained = meta.get(TEAM_CODE_KEY, {})
        if trained != current:
            changed = sorted(m for m in set(trained) | set(current) if trained.get(m) != current.get(m))
            raise BuildError(f"src/{IMPORT_NAME}/{changed[0]} differs from the one the model {name!r} was trained with; "
                             "run make train (make release does it), or restore the file")
    return sorted(current)


def sdist_name(version: str) -> str:
    return f"{IMPORT_NAME}-{version}.tar.gz"


def wheel_name(version: str) -> str:
    return f"{IMPORT_NAME}-{version}-py3-none-any.whl"


def expected_wheel_files(version: str, names: list[str], modules: list[str] = (),
                         drawn: dict[str, dict[str, str]] | None = None) -> list[str]:
    """``drawn``: the figures of each model that has them (it ships its evaluation.json too)."""
    package = [f"{IMPORT_NAME}/{f}" for f in (*PACKAGE_SOURCES, *modules)]
    models = [f"{IMPORT_NAME}/models/{f}" for f in (MANIFEST_FILE, METRICS_FILE, CARD_FILE)]
    models += [f"{IMPORT_NAME}/models/{n}/{f}" for n in names for f in (METADATA_FILE, MODEL_FILE)]
    models += [f"{IMPORT_NAME}/models/{path}" for name, files in (drawn or {}).items()
               for path in (f"{name}/{EVALUATION_FILE}", *files.values())]
    info = [f"{IMPORT_NAME}-{version}.dist-info/{f}"
            for f in ("METADATA", "WHEEL", "entry_points.txt", "top_level.txt", "RECORD")]
    return sorted(package + models + info)


def expected_sdist_files(version: str, names: list[str], modules: list[str] = (),
                         drawn: dict[str, dict[str, str]] | None = None) -> list[str]:
    root = f"{IMPORT_NAME}-{version}"
    wheel_package = [f for f in expected_wheel_files(version, names, modules, drawn)
                     if not f.startswith(f"{IMPORT_NAME}-")]
    egg = [f"src/{IMPORT_NAME}.egg-info/{f}" for f in
           ("PKG-INFO", "SOURCES.txt", "dependency_links.txt", "entry_points.txt", "requires.txt", "top_level.txt")]
    top = ["MANIFEST.in", "MODEL_CARD.md", "PKG-INFO", "pyproject.toml", "requirements-runtime.txt", "setup.cfg",
           "build_backend/streaming_wheel.py"]
    return sorted(f"{root}/{f}" for f in top + egg + [f"src/{f}" for f in wheel_package])


def check_contents(built: Built, names: list[str], modules: list[str] = (),
                   drawn: dict[str, dict[str, str]] | None = None) -> None:
    """The exact file lists: models, metadata, figures and the team's modules in; no caches, training code or secrets."""
    with zipfile.ZipFile(built.wheel) as wheel:
        in_wheel = sorted(wheel.namelist())
    with tarfile.open(built.sdist) as sdist:
        in_sdist = sorted(m.name for m in sdist.getmembers() if m.isfile())
    for label, actual, expected in (("wheel", in_wheel, expected_wheel_files(built.version, names, modules, drawn)),
                                    ("sdist", in_sdist, expected_sdist_files(built.version, names, modules, drawn))):
        if actual != expected:
            extra, missing = sorted(set(actual) - set(expected)), sorted(set(expected) - set(actual))
            raise BuildError(f"the {label} for {built.version} has unexpected contents (extra: {extra}, "
                             f"missing: {missing}); fix PACKAGE_SOURCES in pipeline/steps/team_code.py or the files in src/{IMPORT_NAME}")


def reproducible_sdist(path: Path, epoch: int) -> None:
    """Rewrite the sdist with sorted entries, fixed owners, modes and times.

    Members are streamed from an uncompressed copy (random access without re-reading the gzip
    stream from its start for each member out of order) into a new file that replaces the sdist.
    """
    with tempfile.TemporaryDirectory(prefix=f"{IMPORT_NAME}-sdist-", dir=path.parent) as tmp:
        plain, rewritten = Path(tmp) / "plain.tar", Path(tmp) / path.name
        with gzip.open(path, "rb") as compressed, open(plain, "wb") as out:
            shutil.copyfileobj(compressed, out, HASH_BLOCK)
        with tarfile.open(plain, "r:") as source, open(rewritten, "wb") as out:
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=epoch) as zipped:
                with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as target:
                    for member in sorted(source.getmembers(), key=lambda m: m.name):
                        data = source.extractfile(member) if member.isfile() else None
                        member.mtime, member.uid, member.gid, member.uname, member.gname = epoch, 0, 0, "", ""
                        member.mode = 0o755 if member.isdir() else 0o644
                        member.pax_headers = {}
                        target.addfile(member, data)
        os.replace(rewritten, path)


def with_description(pyproject: str, description: str) -> str:
    """pyproject.toml with ``description`` (the Summary) on the line after [project]'s name.

    >>> print(with_description('[project]\\nname = "m"\\nlicense = "MIT"\\n', 'Models "for" Titanic'), end="")
    [project]
    name = "m"
    description = "Models \\"for\\" Titanic"
    license = "MIT"
    """
    line = f"description = {json.dumps(description, ensure_ascii=False)}"  # a TOML basic string (one printable line)
    text, count = re.subn(r'(?m)^(name = "[^"]*"\n)', lambda name: name[1] + line + "\n", pyproject, count=1)
    if count != 1:
        raise BuildError('pyproject.toml has no name = "..." line under [project]; restore it from git')
    return text


def _stage(stage: Path, models_dir: Path, names: list[str], modules: list[str]) -> None:
    for name in STAGED_FROM_REPO:
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, stage / name)
    project = stage / "pyproject.toml"
    project.write_text(with_description(project.read_text(encoding="utf-8"), configured_description(DATASET_CONFIG)),
                       encoding="utf-8")
    package = stage / "src" / IMPORT_NAME
    package.mkdir(parents=True)
    for name in (*PACKAGE_SOURCES, *modules):
        source = PACKAGE_DIR / name
        if not source.is_file():
            raise BuildError(f"{source} is missing; restore it from git")
        shutil.copy2(source, package / name)
    (package / "models").mkdir()
    if (models_dir / METRICS_FILE).is_file():
        shutil.copy2(models_dir / METRICS_FILE, package / "models" / METRICS_FILE)
    for name in names:
        (package / "models" / name).mkdir()
        for file in (MODEL_FILE, METADATA_FILE):
            shutil.copy2(models_dir / name / file, package / "models" / name / file)
        if (models_dir / name / EVALUATION_FILE).is_file():  # trained before figures: none
            shutil.copy2(models_dir / name / EVALUATION_FILE, package / "models" / name / EVALUATION_FILE)
