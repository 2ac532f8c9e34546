"""`loyalty-admin`: provision programs and their credentials on the local stack or on AWS.

    loyalty-admin [--stage S] [--table T] [--region R] [--endpoint URL] COMMAND ...

    program create FILE [--update] [--dry-run] [--wechat-secret-env NAME]
    program list | program show PROGRAM
    till-key create|rotate PROGRAM KEY_ID [--store STORE_ID] | revoke PROGRAM KEY_ID [--yes] | list PROGRAM
    admin-key create|rotate PROGRAM NAME | revoke PROGRAM NAME [--yes] | list PROGRAM
    staff create-owner PROGRAM USERNAME [--password-stdin] | staff list PROGRAM

Where: `--stage` (or LOYALTY_STAGE; default `local`), the table `loyalty-<stage>` unless `--table`
(LOYALTY_TABLE_NAME), the region (LOYALTY_REGION, AWS_REGION), and for the local stack the
endpoint (LOYALTY_DYNAMODB_ENDPOINT, e.g. http://127.0.0.1:8002). On AWS it uses the normal
credential chain and reads the data key from Secrets Manager (`<app>/<stage>/data_key`, or
LOYALTY_SECRET_IDS), as the functions do: till secrets and WeChat secrets are stored encrypted
with it. Secrets are printed once, on stdout; nothing else is. Exit status: 0 done, 1 refused or
failed (nothing changed), 2 bad usage or a bad file.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

APP_NAME = "loyalty"
# How long a revoked or rotated key may still be accepted by a warm container (the default of
# Settings.config_cache_seconds; the deployed stages do not change it).
CACHE_NOTE = "a warm container may accept the old key for up to LOYALTY_CONFIG_CACHE_SECONDS (30 s by default)"


class Refused(Exception):
    """Stop with this message and exit status 1; nothing was changed."""


def _configure(args: argparse.Namespace) -> None:
    """Settings come from the environment and PynamoDB reads them at import: set them first."""
    stage = args.stage or os.environ.get("LOYALTY_STAGE") or "local"
    os.environ["LOYALTY_STAGE"] = stage
    os.environ["LOYALTY_TABLE_NAME"] = args.table or os.environ.get("LOYALTY_TABLE_NAME") or f"{APP_NAME}-{stage}"
    region = args.region or os.environ.get("LOYALTY_REGION") or os.environ.get("AWS_REGION") \
        or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    os.environ["LOYALTY_REGION"] = region
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    if args.endpoint:
        os.environ["LOYALTY_DYNAMODB_ENDPOINT"] = args.endpoint
    if stage != "local" and "LOYALTY_SECRET_IDS" not in os.environ and "LOYALTY_DATA_KEY" not in os.environ:
        # The only secret the CLI uses: it encrypts till and WeChat secrets.
        os.environ["LOYALTY_SECRET_IDS"] = json.dumps({"data_key": f"{APP_NAME}/{stage}/data_key"})


def _settings() -> Any:
    from chalicelib.settings import get_settings

    return get_settings()


def _confirm(args: argparse.Namespace, question: str, stdin: TextIO, stderr: TextIO) -> None:
    if args.yes:
        return
    if not stdin.isatty():
        raise Refused(f"{question} -- refused: no terminal to confirm on; pass --yes")
    stderr.write(f"{question} Type 'yes' to go on: ")
    stderr.flush()
    if stdin.readline().strip().lower() != "yes":
        raise Refused("not confirmed; nothing changed")


def _show_secret(out: TextIO, err: TextIO, what: str, secret: str) -> None:
    err.write(f"{what}: the secret below is shown once and stored only encrypted or hashed; keep it now.\n")
    out.write(secret + "\n")


# -- programs ----------------------------------------------------------------------------------

def program_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from loyalty_admin.program_file import ProgramFileError, load

    try:
        program_file = load(Path(args.file))
    except ProgramFileError as exc:
        for problem in exc.problems:
            err.write(problem + "\n")
        err.write("nothing changed\n")
        return 2
    secret = program_file.wechat_secret
    if args.wechat_secret_env:
        secret = os.environ.get(args.wechat_secret_env)
        if not secret:
            raise Refused(f"environment variable {args.wechat_secret_env} is empty")
    config = program_file.config

    from chalicelib.store import credentials, programs

    settings = _settings()
    current = programs.get_program(settings, config.program_id, fresh=True)
    owner = credentials.appid_owner(config.appid)
    if owner is not None and owner != config.program_id:
        raise Refused(f"appid {config.appid} belongs to program {owner!r}")
    if current is not None and not args.update:
        raise Refused(f"program {config.program_id!r} exists (version {current.version}); pass --update to change it")
    if current is None and secret is None:
        raise Refused("a new program needs its WeChat app secret (wechat_secret in the file or --wechat-secret-env)")
    if current is None:
        plan = f"create program {config.program_id!r} ({config.name}, appid {config.appid}, {len(config.tiers)} tiers)"
    else:
        before = current.config.model_dump(mode="json")
        after = config.model_dump(mode="json")
        changed = sorted(k for k in after if before.get(k) != after[k])
        plan = (f"update program {config.program_id!r} version {current.version} -> {current.version + 1}: "
                f"{', '.join(changed) if changed else 'no rule changes'}"
                f"{'; new WeChat secret' if secret is not None else ''}")
    if args.dry_run:
        out.write(f"dry run: would {plan}\n")
        return 0
    saved = programs.save_program(settings, config, wechat_secret=secret,
                                  expected_version=current.version if current else None)
    if current is not None and current.config.appid != config.appid:
        credentials.forget_appid(current.config.appid, config.program_id)
    out.write(f"done: {plan} (now version {saved.version})\n")
    return 0


def program_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from chalicelib.store import programs

    settings = _settings()
    rows = []
    for program_id in programs.program_ids():
        program = programs.get_program(settings, program_id, fresh=True)
        if program is not None:
            rows.append({"program_id": program_id, "name": program.config.name, "appid": program.config.appid,
                         "version": program.version, "created_on": program.created_on})
    out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    return 0


def program_show(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from chalicelib.store import programs

    program = programs.get_program(_settings(), args.program, fresh=True)
    if program is None:
        raise Refused(f"no program {args.program!r}")
    out.write(json.dumps({"version": program.version, **program.config.model_dump(mode="json")},
                         ensure_ascii=False, indent=2) + "\n")
    return 0


# -- keys --------------------------------------------------------------------------------------

def _keys_list(rows: list[Any], out: TextIO) -> int:
    out.write(json.dumps([{k: v for k, v in vars(row).items() if v is not None} for row in rows], indent=2) + "\n")
    return 0


def till_key(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from chalicelib.store import credentials

    settings = _settings()
    if args.action == "list":
        return _keys_list(credentials.till_keys(args.program), out)
    if args.dry_run:
        out.write(f"dry run: would {args.action} till key {args.key_id!r} of program {args.program!r}\n")
        return 0
    if args.action == "create":
        _show_secret(out, err, f"till key {args.key_id}",
                     credentials.create_till_key(settings, args.program, args.key_id, args.store))
    elif args.action == "rotate":
        _confirm(args, f"Rotate till key {args.key_id!r}? The till must switch to the new secret; "
                       f"{CACHE_NOTE}.", stdin, err)
        _show_secret(out, err, f"till key {args.key_id}", credentials.rotate_till_key(settings, args.program, args.key_id))
    else:
        _confirm(args, f"Revoke till key {args.key_id!r} of program {args.program!r}? Its till can no longer "
                       f"sign requests; {CACHE_NOTE}.", stdin, err)
        credentials.revoke_till_key(args.program, args.key_id)
        err.write(f"revoked till key {args.key_id}; {CACHE_NOTE}\n")
    return 0


def admin_key(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from chalicelib.store import credentials

    settings = _settings()
    if args.action == "list":
        return _keys_list(credentials.admin_keys(args.program), out)
    if args.dry_run:
        out.write(f"dry run: would {args.action} admin key {args.name!r} of program {args.program!r}\n")
        return 0
    if args.action == "create":
        _show_secret(out, err, f"admin key {args.name}", credentials.create_admin_key(settings, args.program, args.name))
    elif args.action == "rotate":
        _confirm(args, f"Rotate admin key {args.name!r}? The old key stops working; {CACHE_NOTE}.", stdin, err)
        _show_secret(out, err, f"admin key {args.name}", credentials.rotate_admin_key(settings, args.program, args.name))
    else:
        _confirm(args, f"Revoke admin key {args.name!r} of program {args.program!r}? {CACHE_NOTE}.", stdin, err)
        credentials.revoke_admin_key(args.program, args.name)
        err.write(f"revoked admin key {args.name}; {CACHE_NOTE}\n")
    return 0


def staff(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    from chalicelib.store import credentials

    settings = _settings()
    if args.action == "list":
        users = credentials.staff_users(args.program)
        return _keys_list([argparse.Namespace(username=u.username, role=u.role, created_at=u.created_at)
                           for u in users], out)
    if args.password_stdin:
        password = stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password for the owner: ")
        if getpass.getpass("again: ") != password:
            raise Refused("the passwords differ; nothing changed")
    if args.dry_run:
        out.write(f"dry run: would create owner {args.username!r} of program {args.program!r}\n")
        return 0
    credentials.create_staff_user(settings, args.program, args.username, password, role="owner")
    out.write(f"done: staff user {args.username!r} (owner) of program {args.program!r}\n")
    return 0


# -- the parser --------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="loyalty-admin", description=__doc__.splitlines()[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    root.add_argument("--stage", help="local, dev, prod (default LOYALTY_STAGE or local)")
    root.add_argument("--table", help="table name (default loyalty-<stage>)")
    root.add_argument("--region")
    root.add_argument("--endpoint", help="DynamoDB endpoint of the local stack")
    areas = root.add_subparsers(dest="area", required=True)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--dry-run", action="store_true", help="check and say what would change; change nothing")
        p.add_argument("--yes", action="store_true", help="do not ask before a destructive change")
        return p

    program = areas.add_parser("program").add_subparsers(dest="action", required=True)
    create = common(program.add_parser("create", help="create a program from a YAML/JSON file"))
    create.add_argument("file")
    create.add_argument("--update", action="store_true", help="allow changing an existing program")
    create.add_argument("--wechat-secret-env", help="read the WeChat app secret from this environment variable")
    program.add_parser("list")
    program.add_parser("show").add_argument("program")

    tills = areas.add_parser("till-key").add_subparsers(dest="action", required=True)
    for action in ("create", "rotate", "revoke"):
        p = common(tills.add_parser(action))
        p.add_argument("program")
        p.add_argument("key_id")
        if action == "create":
            p.add_argument("--store", help="store id the till belongs to")
    tills.add_parser("list").add_argument("program")

    admins = areas.add_parser("admin-key").add_subparsers(dest="action", required=True)
    for action in ("create", "rotate", "revoke"):
        p = common(admins.add_parser(action))
        p.add_argument("program")
        p.add_argument("name")
    admins.add_parser("list").add_argument("program")

    staff_users = areas.add_parser("staff").add_subparsers(dest="action", required=True)
    owner = common(staff_users.add_parser("create-owner", help="the program's first staff user (role owner)"))
    owner.add_argument("program")
    owner.add_argument("username")
    owner.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    staff_users.add_parser("list").add_argument("program")
    return root


Command = Callable[..., int]


def main(argv: list[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    stdin, out, err = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    args = parser().parse_args(argv)
    for name in ("dry_run", "yes", "update", "store", "password_stdin", "wechat_secret_env"):
        setattr(args, name, getattr(args, name, None))
    _configure(args)
    from chalicelib.store.credentials import CredentialError

    try:
        if args.area == "program":
            return {"create": program_create, "list": program_list, "show": program_show}[args.action](args, out, err)
        handler = {"till-key": till_key, "admin-key": admin_key, "staff": staff}[args.area]
        return handler(args, out, err, stdin)
    except (Refused, CredentialError) as exc:
        err.write(f"loyalty-admin: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
