"""checkov on the packaged templates, with the accepted findings of infra/checkov-accepted.yaml.

    python -m infra.checkov_gate --checkov .venv-checkov/bin/checkov build/dev/package/sam.json ...

Fails (exit 1) on any finding that is not accepted there, on an accepted entry for a check that
matters too much for a ledger holding personal data to be waived, and on an entry that matches
nothing any more (so the file does not rot). checkov runs offline (`--skip-download`).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCEPTED_FILE = Path(__file__).resolve().parent / "checkov-accepted.yaml"

# Never waived: encryption with our key where it applies, the API's access log, bounded concurrency.
NEVER_ACCEPTED = {
    "CKV_AWS_119": "DynamoDB table encrypted with a KMS customer managed key",
    "CKV_AWS_158": "CloudWatch log groups encrypted with KMS",
    "CKV_AWS_173": "Lambda environment variables encrypted with KMS",
    "CKV_AWS_27": "SQS queues encrypted",
    "CKV_AWS_26": "SNS topics encrypted",
    "CKV_AWS_76": "API Gateway access logging",
    "CKV_AWS_115": "Lambda function-level concurrency limit",
    "CKV_AWS_7": "KMS key rotation",
    "CKV_AWS_28": "DynamoDB point-in-time recovery",
    "CKV_AWS_45": "no secrets in Lambda environment variables",
}
# A DLQ may be waived only for functions that are never invoked asynchronously.
ASYNC_ONLY = {"CKV_AWS_116"}


@dataclass(frozen=True)
class Finding:
    template: str
    check: str
    resource: str
    name: str


def run_checkov(checkov: str, template: Path) -> list[Finding]:
    done = subprocess.run([checkov, "-f", str(template), "--framework", "cloudformation", "-o", "json", "--quiet",
                           "--skip-download", "--compact"], capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"checkov_gate: checkov failed on {template}:\n{done.stderr[-2000:]}")
    reports: Any = json.loads(done.stdout) if done.stdout.strip() else []
    findings = []
    for report in reports if isinstance(reports, list) else [reports]:
        for failed in report.get("results", {}).get("failed_checks", []):
            findings.append(Finding(str(template), failed["check_id"], failed["resource"], failed["check_name"]))
    return findings


def load_accepted(path: Path = ACCEPTED_FILE) -> list[dict[str, Any]]:
    import yaml

    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    problems = []
    for entry in entries:
        if not str(entry.get("reason", "")).strip():
            problems.append(f"{entry.get('check')}: no reason given")
        if entry.get("check") in NEVER_ACCEPTED:
            problems.append(f"{entry['check']} ({NEVER_ACCEPTED[entry['check']]}) may not be accepted")
        if entry.get("check") in ASYNC_ONLY and any("*" in r for r in entry.get("resources", [])):
            problems.append(f"{entry['check']}: name each synchronously invoked function, no wildcard")
    if problems:
        raise SystemExit("checkov_gate: " + "; ".join(problems))
    return entries


def unaccepted(findings: list[Finding], accepted: list[dict[str, Any]]) -> tuple[list[Finding], list[dict[str, Any]]]:
    used: set[int] = set()
    left = []
    for finding in findings:
        match = next((n for n, entry in enumerate(accepted) if entry["check"] == finding.check
                      and any(fnmatch.fnmatchcase(finding.resource, pattern) for pattern in entry["resources"])), None)
        if match is None:
            left.append(finding)
        else:
            used.add(match)
    return left, [entry for n, entry in enumerate(accepted) if n not in used]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.checkov_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--checkov", default="checkov")
    parser.add_argument("templates", nargs="+", type=Path)
    args = parser.parse_args(argv)
    accepted = load_accepted()
    findings = [f for template in args.templates for f in run_checkov(args.checkov, template)]
    left, stale = unaccepted(findings, accepted)
    for finding in left:
        print(f"checkov: {finding.template}: {finding.check} {finding.resource}: {finding.name}", file=sys.stderr)
    for entry in stale:
        print(f"checkov: accepted entry {entry['check']} {entry['resources']} matches nothing; remove it",
              file=sys.stderr)
    print(f"checkov: {len(findings)} findings on {len(args.templates)} templates, {len(findings) - len(left)} "
          f"accepted (infra/checkov-accepted.yaml), {len(left)} not accepted")
    return 1 if left or stale else 0


if __name__ == "__main__":
    sys.exit(main())
