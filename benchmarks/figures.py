"""What the evaluation figures cost a release: time in a warm ``make release`` and bytes in its wheel.

The time is what the release itself reports on its ``figures:`` lines (the numbers behind
them in the train step, the baseline's curves in the gate step, the drawing in the build
step), so no other run is needed to subtract; the bytes are those of the figures, the
evaluation.json files and the packaged model card in the wheel, as the zip holds them
(compressed data, both headers, the RECORD line).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

FIGURE_LINE = re.compile(r"^figures: .* in ([\d.]+) s$", re.MULTILINE)
TARGET_SECONDS = 1.0
TARGET_BYTES = 300 * 1000
LOCAL_HEADER, CENTRAL_HEADER = 30, 46  # zip header sizes without the name (APPNOTE 4.3.7, 4.3.12)


def is_figure_file(name: str) -> bool:
    return "/figures/" in name or name.endswith(("/evaluation.json", "/models/MODEL_CARD.md"))


def costs(release_output: str, wheel: Path) -> dict:
    """The figures' seconds in a release's output, and their bytes in its wheel."""
    lines = [m.group(0) for m in FIGURE_LINE.finditer(release_output)]
    with zipfile.ZipFile(wheel) as archive:
        members = [info for info in archive.infolist() if is_figure_file(info.filename)]
        record = next((archive.read(n) for n in archive.namelist() if n.endswith(".dist-info/RECORD")), b"")
    recorded = sum(len(line) + 1 for line in record.decode().splitlines()
                   if is_figure_file(line.split(",", 1)[0]))
    size = sum(info.compress_size + LOCAL_HEADER + CENTRAL_HEADER + 2 * len(info.filename) for info in members)
    return {"seconds": sum(float(FIGURE_LINE.match(line).group(1)) for line in lines), "lines": lines,
            "files": len(members), "wheel_bytes": size + recorded, "wheel_total_bytes": wheel.stat().st_size}


def targets(figures: dict) -> list[tuple[str, str, str, bool]]:
    return [("evaluation figures in a warm `make release` (numbers, baseline curves, drawing)",
             f"{figures['seconds']:.2f} s", f"<= {TARGET_SECONDS:g} s", figures["seconds"] <= TARGET_SECONDS),
            (f"evaluation figures in the wheel ({figures['files']} files)", f"{figures['wheel_bytes'] / 1000:.0f} KB",
             f"<= {TARGET_BYTES // 1000} KB", figures["wheel_bytes"] <= TARGET_BYTES)]


def render(figures: dict) -> list[str]:
    return ["", "Evaluation figures in the second run: " + "; ".join(f"`{line}`" for line in figures["lines"])
            + f". In its wheel ({figures['wheel_total_bytes'] / 1000:.0f} KB) the {figures['files']} figure files "
            f"(SVG, evaluation.json, the packaged card) take {figures['wheel_bytes'] / 1000:.1f} KB."]
