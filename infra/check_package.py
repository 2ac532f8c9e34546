"""Checks on `chalice package` output that cfn-lint cannot make.

    python -m infra.check_package build/package/sam.json

* Compiled modules match the runtime. Chalice downloads wheels for the Python it runs on
  (pydantic-core, cffi and charset-normalizer ship per-version builds), so a template whose
  ``Runtime`` differs from that Python imports nothing at cold start; cfn-lint sees only the
  template and calls that valid.
* Bytecode is in the zips (infra/bytecode.py): every module has its compiled file, so a cold
  start on Lambda's read-only disk compiles nothing.
* The API function ships the files it serves that are not Python: Swagger UI's script and style
  for `/docs` (chalicelib/api/swagger_ui/).
* The merge template landed. Chalice's merge silently creates whatever logical id or event name
  it is given, and cfn-lint does not look inside SAM event properties: every DynamoDB event must
  read this stack's stream, report partial batch failures and park failures in a queue.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# `_pydantic_core.cpython-311-x86_64-linux-gnu.so` -> "3.11"; `abi3` modules suit any Python 3.
_EXTENSION_MODULE = re.compile(r"\.cpython-(?P<major>\d)(?P<minor>\d+)-[^/]*\.so$")
_RUNTIME = re.compile(r"^python(?P<version>\d+\.\d+)$")

_FUNCTION = "AWS::Serverless::Function"
_LAYER = "AWS::Serverless::LayerVersion"


def _local_archive(uri: Any, template_dir: Path) -> Path | None:
    return (template_dir / uri).resolve() if isinstance(uri, str) and not uri.startswith("s3://") else None


def _code_archives(template: dict[str, Any], template_dir: Path) -> Iterator[tuple[str, str, Path]]:
    """(logical id, runtime, zip) for each runtime and local code archive a function or layer runs with.

    A function runs with its own code and its layers' (Chalice's automatic layer holds every
    compiled dependency), so a function is checked against both.
    """
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource.get("Type") == _FUNCTION:
            runtimes = [properties.get("Runtime")]
            uris = [properties.get("CodeUri")]
            for layer in properties.get("Layers", []):
                layer_id = layer.get("Ref") if isinstance(layer, dict) else None
                if resources.get(layer_id, {}).get("Type") == _LAYER:
                    uris.append(resources[layer_id]["Properties"].get("ContentUri"))
        elif resource.get("Type") == _LAYER:
            runtimes = properties.get("CompatibleRuntimes", [])
            uris = [properties.get("ContentUri")]
        else:
            continue
        for uri in uris:
            archive = _local_archive(uri, template_dir)
            if archive is not None:
                for runtime in runtimes:
                    yield logical_id, str(runtime), archive


def runtime_problems(template: dict[str, Any], template_dir: Path) -> list[str]:
    problems = []
    built_for: dict[Path, set[str]] = {}
    for logical_id, runtime, archive in _code_archives(template, template_dir):
        match = _RUNTIME.match(runtime)
        if match is None:
            problems.append(f"{logical_id}: runtime {runtime!r} is not a Python runtime")
            continue
        if archive not in built_for:
            with zipfile.ZipFile(archive) as zipped:
                built_for[archive] = {
                    f"{found['major']}.{found['minor']}"
                    for found in map(_EXTENSION_MODULE.search, zipped.namelist())
                    if found is not None
                }
        foreign = built_for[archive] - {match["version"]}
        if foreign:
            problems.append(
                f"{logical_id}: runtime {runtime} but {archive.name} holds modules compiled for "
                f"Python {', '.join(sorted(foreign))}; package with that Python instead of overriding Runtime"
            )
    return problems


def bytecode_problems(template: dict[str, Any], template_dir: Path) -> list[str]:
    from infra.bytecode import missing_bytecode

    problems = []
    for archive in sorted({archive for _, _, archive in _code_archives(template, template_dir)}):
        missing = missing_bytecode(archive)
        if missing:
            problems.append(f"{archive.name}: {len(missing)} modules without bytecode (e.g. {missing[0]}); "
                            "run python -m infra.bytecode on the package")
    return problems
# Files the API serves from chalicelib/ besides code (chalicelib/api/docs.py).
_API_FILES = ("chalicelib/api/swagger_ui/swagger-ui-bundle.js", "chalicelib/api/swagger_ui/swagger-ui.css")
# ... and for the merchant console at /console (chalicelib/api/console.py, issue 16).
_CONSOLE_FILES = tuple(f"chalicelib/console/{name}" for name in
                       ("index.html", "app.js", "forms.js", "style.css", "echarts.min.js"))


def asset_problems(template: dict[str, Any], template_dir: Path) -> list[str]:
    api = template["Resources"].get("APIHandler", {}).get("Properties", {})
    archive = _local_archive(api.get("CodeUri"), template_dir)
    if archive is None:
        return ["APIHandler: no local code archive to look into"]
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
    return [f"APIHandler: {archive.name} lacks {name} (served at /docs)" for name in _API_FILES if name not in names] + [
        f"APIHandler: {archive.name} lacks {name} (served at /console)" for name in _CONSOLE_FILES if name not in names]


def merge_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    resources = template["Resources"]
    for logical_id, resource in resources.items():
        if "Type" not in resource:
            problems.append(f"{logical_id}: no Type; the merge template names a resource Chalice no longer generates")
            continue
        if resource["Type"] != _FUNCTION:
            continue
        for name, event in resource["Properties"].get("Events", {}).items():
            if event.get("Type") == "SQS":
                queue = event.get("Properties", {}).get("Queue")
                if not (isinstance(queue, dict) and queue.get("Fn::GetAtt", [None])[0] in resources):
                    problems.append(f"{logical_id}.Events.{name}: reads {queue!r}, not a queue of this stack")
                continue
            if event.get("Type") != "DynamoDB":
                continue
            where = f"{logical_id}.Events.{name}"
            properties = event.get("Properties", {})
            stream = properties.get("Stream")
            if not (isinstance(stream, dict) and stream.get("Fn::GetAtt", [None])[0] in resources):
                problems.append(f"{where}: reads {stream!r}, not a stream of this stack")
            if properties.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
                problems.append(f"{where}: does not report partial batch failures")
            destination = properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            if not (isinstance(destination, dict) and destination.get("Fn::GetAtt", [None])[0] in resources):
                problems.append(f"{where}: failed batches go nowhere in this stack ({destination!r})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.check_package", description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path, help="sam.json written by `chalice package`")
    args = parser.parse_args(argv)
    template = json.loads(args.template.read_text(encoding="utf-8"))
    problems = (merge_problems(template) + runtime_problems(template, args.template.parent)
                + bytecode_problems(template, args.template.parent)
                + asset_problems(template, args.template.parent))
    for problem in problems:
        print(f"check_package: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
