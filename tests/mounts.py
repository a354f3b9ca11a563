"""Mounts a test leaves behind: workspace quotas are loop-mounted filesystems (runtime.workspaces.volumes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["mounts_under", "unmount_under"]


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, deepest first (the order to unmount them in)."""
    top = path.resolve()
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            # Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
            point = Path(line.split()[4].encode().decode("unicode_escape"))
            if point == top or top in point.parents:
                found.append(point)
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_under(path: Path) -> list[Path]:
    """Unmount everything at or below ``path`` (what a killed worker left mounted); what was there."""
    found = mounts_under(path)
    for point in found:
        subprocess.run(["umount", "--lazy", str(point)], check=True)
    return found
