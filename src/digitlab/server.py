"""The shared tracking server (`make server`): `mlflow server` on a store, with MLflow's own
basic authentication whenever it listens beyond this machine's loopback.

    python -m digitlab.server --backend sqlite:////srv/mlflow.db --artifacts /srv/artifacts
    MLFLOW_AUTH_ADMIN_PASSWORD=… python -m digitlab.server --host 0.0.0.0 --backend postgresql://…

Whoever reaches an unauthenticated server can read, change or delete every run and model, so
`--auth auto` (the default) turns authentication on for any address but 127.0.0.0/8, ::1 and
localhost; `--auth off` is the explicit opt-out (a network of its own, a proxy that
authenticates). With authentication on, the first start creates the admin user from
MLFLOW_AUTH_ADMIN_PASSWORD; clients pass their login the MLflow way, in MLFLOW_TRACKING_USERNAME
and MLFLOW_TRACKING_PASSWORD, never in a logged param or tag.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from digitlab.files import sqlite_path, sqlite_uri

# what an authenticated user may do with experiments and models of others: EDIT lets a team log
# into shared experiments; deleting them and managing permissions stays with their owners
DEFAULT_PERMISSION = "EDIT"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def auth_config(path: Path, database_uri: str, default_permission: str) -> Path:
    """MLflow's basic-auth configuration (mlflow/server/auth/basic_auth.ini) with the user
    database where this server keeps it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[mlflow]\n"
                    f"default_permission = {default_permission}\n"
                    f"database_uri = {database_uri}\n"
                    "admin_username = admin\n"
                    "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    return path


def _secret_key(path: Path) -> str:
    """A random key kept in a file only its owner can read, made on the first start."""
    import secrets

    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def _keep_private(database_uri: str) -> None:
    """A SQLite user database (password hashes) readable by its owner alone: made empty with
    mode 600 before MLflow creates its tables in it (SQLite keeps the mode, and gives its
    journal the same), or narrowed to 600 when it exists."""
    path = sqlite_path(database_uri)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)


def _user_db_exists(database_uri: str) -> bool:
    path = sqlite_path(database_uri)
    if path is not None:
        return path.exists() and path.stat().st_size > 0
    return True  # a database server: MLflow itself says if the admin is missing


def server_command(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The `mlflow server` command line and its environment; SystemExit(2) with one line when
    the request is unsafe or incomplete."""
    auth = args.auth == "on" or (args.auth == "auto" and not is_loopback(args.host))
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = [str(Path(sys.executable).parent / "mlflow"), "server",
               "--backend-store-uri", args.backend, "--artifacts-destination", args.artifacts,
               "--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    if not auth:
        if not is_loopback(args.host):
            print(f"digitlab: warning: serving {args.host}:{args.port} WITHOUT authentication "
                  "(--auth off): whoever reaches the port can change or delete every run",
                  file=sys.stderr)
        return command, env
    if not _user_db_exists(args.auth_db) and not env.get("MLFLOW_AUTH_ADMIN_PASSWORD"):
        raise SystemExit(f"digitlab: error: --host {args.host} serves beyond this machine, so "
                         "the server authenticates (MLflow basic-auth): set "
                         "MLFLOW_AUTH_ADMIN_PASSWORD for its first start (it creates the user "
                         "admin), or pass --auth off (make server AUTH=off) to serve without.")
    _keep_private(args.auth_db)
    config = auth_config(Path(args.artifacts).parent / "basic_auth.ini", args.auth_db,
                         args.default_permission)
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(config.resolve())
    # the auth app's CSRF protection needs one key for all workers and restarts
    env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", _secret_key(config.parent / ".server_secret"))
    return command + ["--app-name", "basic-auth"], env


def parse_args(argv: list[str]) -> argparse.Namespace:
    mlruns = Path.cwd() / "mlruns"
    parser = argparse.ArgumentParser(prog="python -m digitlab.server", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default=sqlite_uri(mlruns / "mlflow.db"),
                        help="the runs' database (SQLite file or postgresql://…)")
    parser.add_argument("--artifacts", default=str(mlruns / "server-artifacts"))
    parser.add_argument("--auth", choices=("auto", "on", "off"), default="auto",
                        help="auto: on unless the server listens on loopback only")
    parser.add_argument("--auth-db", default=sqlite_uri(mlruns / "basic_auth.db"),
                        help="where the users and their permissions are kept")
    parser.add_argument("--default-permission", default=DEFAULT_PERMISSION,
                        choices=("READ", "EDIT", "MANAGE", "NO_PERMISSIONS"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        command, env = server_command(args)
    except SystemExit as exc:
        print(exc.code, file=sys.stderr)
        sys.exit(2)
    Path(args.artifacts).mkdir(parents=True, exist_ok=True)
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
