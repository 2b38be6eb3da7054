"""Known vulnerabilities in the pinned set (constraints.txt), from pip-audit.

    .venv/bin/python .ci/audit.py [--strict]

pip-audit asks PyPI's JSON API (``/pypi/NAME/VERSION/json``) for each pinned version's
advisories. Where that does not answer for a package (a registry mirror serves only part of the
API), the project's JSON (``/pypi/NAME/json``) is asked instead: it lists the advisories of the
project's latest release, which are the pinned version's when the pin is that release. A package
audited neither way is not audited: this script says so, with the
count, and exits 0 — an unreachable advisory source must not fail the test run. A vulnerability
found is listed with its fix versions and exits 1. ``--strict`` also fails when nothing could be
audited.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120
PYPI = "https://pypi.org/pypi"


def main() -> int:
    parser = argparse.ArgumentParser(description="pip-audit over constraints.txt")
    parser.add_argument("--strict", action="store_true", help="fail when nothing was audited")
    args = parser.parse_args()
    pip_audit = Path(sys.executable).parent / "pip-audit"
    command = [
        str(pip_audit),
        "-r",
        str(ROOT / "constraints.txt"),
        "--no-deps",  # every dependency is pinned in the file: no resolver run needed
        "--disable-pip",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        "15",
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except FileNotFoundError:
        print(f"audit: {pip_audit} is missing; install the dev extras (make install)")
        return 1
    except subprocess.TimeoutExpired:
        print(f"audit: NOT AUDITED — pip-audit gave no answer in {TIMEOUT_S} s (no network?)")
        return 2 if args.strict else 0
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"audit: NOT AUDITED — pip-audit failed (exit {proc.returncode}): {reason}")
        return 2 if args.strict else 0

    deps = report.get("dependencies", [])
    latest_checked = _latest_release_advisories([d for d in deps if d.get("skip_reason")])
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    print(
        f"audit: {len(deps)} pinned packages, {len(audited)} audited against PyPI's advisory "
        f"data ({latest_checked} of them through the project's latest release, which is the "
        f"pinned version), {len(skipped)} not audited, {len(vulnerable)} with known "
        "vulnerabilities"
    )
    if skipped:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped})
        names = ", ".join(d["name"] for d in skipped[:8])
        more = f" and {len(skipped) - 8} more" if len(skipped) > 8 else ""
        print(f"audit: NOT AUDITED ({'; '.join(reasons)}): {names}{more}")
        if not audited:
            print(
                "audit: the advisory source answered for no package (PyPI's per-version JSON "
                "API, /pypi/NAME/VERSION/json, is not served from here); nothing was checked"
            )
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions") or []) or "none yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            print(
                f"audit: VULNERABLE {dep['name']}=={dep['version']}: {vuln['id']}"
                + (f" ({aliases})" if aliases else "")
                + f"; fixed in {fixes}"
            )
    if vulnerable:
        return 1
    if args.strict and not audited:
        return 2
    return 0


def _project(name: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"{PYPI}/{name}/json", timeout=15) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def _latest_release_advisories(skipped: list[dict]) -> int:
    """For packages pip-audit could not ask about (PyPI's per-version JSON is not served from
    here), PyPI's project JSON (/pypi/NAME/json) still lists the advisories of the project's
    latest release: where that release is the pinned version, they are the pinned version's.
    Such a package is audited in place (``skip_reason`` cleared, ``vulns`` filled in the
    shape pip-audit uses); the others stay not audited. Returns how many were audited."""
    with ThreadPoolExecutor(8) as pool:
        projects = list(pool.map(lambda d: _project(d["name"]), skipped))
    audited = 0
    for dep, project in zip(skipped, projects, strict=True):
        # a skipped dependency carries its version only in the reason: "... : NAME (VERSION)"
        found = re.search(r"\(([^()\s]+)\)\s*$", dep.get("skip_reason") or "")
        version = dep.get("version") or (found.group(1) if found else None)
        if not project or version is None or project.get("info", {}).get("version") != version:
            continue
        dep["version"] = version
        dep["skip_reason"] = None
        dep["vulns"] = [
            {
                "id": v.get("id"),
                "aliases": v.get("aliases") or [],
                "fix_versions": v.get("fixed_in") or [],
            }
            for v in project.get("vulnerabilities") or []
            if not v.get("withdrawn")
        ]
        audited += 1
    return audited


if __name__ == "__main__":
    sys.exit(main())
