"""A program described in a YAML or JSON file, checked with the service's own `ProgramConfig`.

    program_id: second
    name: Second Coffee
    appid: wx0123456789abcdef
    wechat_secret: ...          # or leave it out and pass --wechat-secret-env NAME
    tiers: [...]                # as in ProgramConfig; earning, expiry, templates ... optional

Errors name the file, the line and the field (`program.yaml:12: tiers.1.threshold: ...`), and a
file with any error changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.domain.program import ProgramConfig

# Keys of the file that are not part of the program's rules.
SECRET_FIELD = "wechat_secret"


class ProgramFileError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ProgramFile:
    config: ProgramConfig
    wechat_secret: str | None


Path_ = tuple[Any, ...]


def _line_map(text: str) -> dict[Path_, int]:
    """Field path -> 1-based line, from YAML's node marks (JSON is read by the same parser)."""
    import yaml

    lines: dict[Path_, int] = {}

    def walk(node: Any, path: Path_) -> None:
        lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = path + (key.value,)
                walk(value, child)
                lines[child] = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, value in enumerate(node.value):
                walk(value, path + (index,))

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    if root is not None:
        walk(root, ())
    return lines


def _line_of(lines: dict[Path_, int], loc: Path_) -> int | None:
    """The line of the deepest part of `loc` found in the file (a missing field: its parent's)."""
    for end in range(len(loc), -1, -1):
        key = tuple(str(part) if not isinstance(part, int) else part for part in loc[:end])
        if key in lines:
            return lines[key]
    return None


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json":
        import json

        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProgramFileError([f"{path}:{exc.lineno}: not valid JSON: {exc.msg}"]) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ProgramFileError([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None


def load(path: Path) -> ProgramFile:
    """Read and check the file; raises ProgramFileError listing every problem with its line."""
    from pydantic import ValidationError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramFileError([f"{path}: cannot read: {exc}"]) from None
    data = _parse(path, text)
    if not isinstance(data, dict):
        raise ProgramFileError([f"{path}:1: the file must hold one mapping (program_id, name, appid, tiers, ...)"])
    data = dict(data)
    secret = data.pop(SECRET_FIELD, None)
    lines = _line_map(text)
    problems = []
    if secret is not None and (not isinstance(secret, str) or not 8 <= len(secret) <= 128):
        problems.append(f"{path}:{lines.get((SECRET_FIELD,), 1)}: {SECRET_FIELD}: a string of 8 to 128 characters")
    try:
        config = ProgramConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            field = ".".join(str(part) for part in loc) or "(file)"
            line = _line_of(lines, loc)
            problems.append(f"{path}:{line if line is not None else 1}: {field}: {error['msg']}")
        raise ProgramFileError(problems) from None
    if problems:
        raise ProgramFileError(problems)
    return ProgramFile(config, secret)
