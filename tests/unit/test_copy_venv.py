"""tests/helpers.py:copy_venv, behind the pip_venv fixture: a copy is a venv of its own."""

import os

from tests.helpers import copy_venv


def test_a_copied_venv_shares_installed_files_and_its_scripts_name_the_copy(tmp_path):
    template = tmp_path / "template"
    (template / "bin").mkdir(parents=True)
    (template / "lib/site-packages").mkdir(parents=True)
    installed = template / "lib/site-packages/module.py"
    installed.write_text("x = 1\n")
    script = template / "bin/pip"
    script.write_text(f"#!{template}/bin/python\nimport pip\n")
    script.chmod(0o755)
    (template / "bin/python").symlink_to("/usr/bin/python3")
    (template / "lib64").symlink_to("lib")

    python = copy_venv(template, tmp_path / "copy")

    copy = tmp_path / "copy"
    assert python == copy / "bin/python" and os.readlink(python) == "/usr/bin/python3"
    assert os.readlink(copy / "lib64") == "lib"
    assert (copy / "lib/site-packages/module.py").stat().st_ino == installed.stat().st_ino  # a hard link
    assert (copy / "bin/pip").read_text() == f"#!{copy}/bin/python\nimport pip\n"  # runs the copy's python
    assert (copy / "bin/pip").stat().st_mode & 0o777 == 0o755
    assert script.read_text() == f"#!{template}/bin/python\nimport pip\n"  # the template is untouched
