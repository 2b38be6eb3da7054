"""Known vulnerabilities in the pinned set (constraints.txt), from pip-audit.

    .venv/bin/python .ci/audit.py [--strict]

pip-audit asks PyPI's JSON API (``/pypi/NAME/VERSION/json``) for each pinned version's
advisories. Where that source cannot be reached, or does not answer for a package (a registry
mirror serves only part of the API), the package is not audited: this script says so, with the
count, and exits 0 — an unreachable advisory source must not fail the test run. A vulnerability
found is listed with its fix versions and exits 1. ``--strict`` also fails when nothing could be
audited.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 120


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
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = [d for d in deps if not d.get("skip_reason")]
    vulnerable = [d for d in audited if d.get("vulns")]
    print(
        f"audit: {len(deps)} pinned packages, {len(audited)} audited against PyPI's advisory "
        f"data, {len(skipped)} not audited, {len(vulnerable)} with known vulnerabilities"
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


if __name__ == "__main__":
    sys.exit(main())
