"""Put compiled bytecode into the Lambda zips that `chalice package` wrote.

    python -m infra.bytecode build/dev/package

Lambda's file system is read-only, so without `.pyc` files in the package every cold start
compiles every module it imports (ours and the libraries'), and throws the result away. This
compiles each `.py` of each zip beside it (`__pycache__/<name>.cpython-311.pyc`) with the
interpreter running it, which must be the runtime's version (infra/check_package.py checks that),
in `unchecked-hash` mode: the loader uses the `.pyc` without comparing the source's mtime, which a
zip round trip does not keep exactly. Sources stay, for tracebacks. Archives are rewritten with
fixed timestamps, so the same input gives the same zip.
"""

from __future__ import annotations

import argparse
import importlib.util
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path

_FIXED_TIME = (2020, 1, 1, 0, 0, 0)
CACHE_TAG = sys.implementation.cache_tag  # e.g. cpython-311


def pyc_name(source: str) -> str:
    """`pkg/mod.py` -> `pkg/__pycache__/mod.cpython-311.pyc` (the name the import system looks for)."""
    return importlib.util.cache_from_source(source)


def compile_tree(root: Path) -> int:
    """Compile every `.py` under root in place; returns how many. A file that does not compile
    (some packages ship Python 2 examples or templates) is left as it is, as pip does."""
    count = 0
    for source in sorted(root.rglob("*.py")):
        try:
            py_compile.compile(str(source), cfile=pyc_name(str(source)), dfile=str(source.relative_to(root)),
                               doraise=True, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        except py_compile.PyCompileError:
            continue
        count += 1
    return count


def compile_zip(archive: Path) -> int:
    """Rewrite `archive` with bytecode for its modules; returns how many were compiled."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with zipfile.ZipFile(archive) as zipped:
            modes = {info.filename: info.external_attr for info in zipped.infolist()}
            zipped.extractall(root)
        count = compile_tree(root)
        rewritten = archive.with_suffix(".tmp")
        with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                name = path.relative_to(root).as_posix()
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.external_attr = modes.get(name, 0o644 << 16)
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, path.read_bytes())
        rewritten.replace(archive)
    return count


def missing_bytecode(archive: Path) -> list[str]:
    """Modules of the zip without their compiled file (what check_package reports)."""
    with zipfile.ZipFile(archive) as zipped:
        names = set(zipped.namelist())
    return sorted(n for n in names if n.endswith(".py") and pyc_name(n) not in names
                  and "/tests/" not in f"/{n}" and not n.split("/")[-1].startswith("_template"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bytecode", description=__doc__.splitlines()[0])
    parser.add_argument("package_dir", type=Path, help="the directory `chalice package` wrote")
    args = parser.parse_args(argv)
    archives = sorted(args.package_dir.glob("*.zip"))
    if not archives:
        print(f"bytecode: no zip in {args.package_dir}", file=sys.stderr)
        return 1
    for archive in archives:
        print(f"bytecode: {archive.name}: {compile_zip(archive)} modules compiled ({CACHE_TAG}, unchecked-hash)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
