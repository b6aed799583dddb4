"""Ray's token authentication for the cluster launcher, on unless the user turns it off.

A Ray cluster without authentication runs code for anyone who reaches its port, and Ray 2.60's
`ray start --head` requires a token whenever `~/.ray/auth_token` exists, which a client only
sends under `RAY_AUTH_MODE=token`. So `hydra/launcher=ray_cluster` sends the token by default
(Ray reads it from RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token);
`RAY_AUTH_MODE=disabled` in the environment turns it off for a cluster started without one."""

from __future__ import annotations

import os
from pathlib import Path

from digitlab.cli.project import fail


def token_found() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return path.is_file() and path.stat().st_size > 0


def prepare_ray_auth() -> None:
    """Before a sweep on a Ray cluster: token authentication on (unless RAY_AUTH_MODE says
    otherwise) with a token to send, or one line and exit 2."""
    if os.environ.setdefault("RAY_AUTH_MODE", "token") != "token" or token_found():
        return
    fail("hydra/launcher=ray_cluster: Ray's token authentication is on (RAY_AUTH_MODE=token) and this machine "
         "has no token: copy the head's ~/.ray/auth_token here (made there by `ray get-auth-token "
         "--generate`), or set RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN; a cluster started without "
         "authentication takes RAY_AUTH_MODE=disabled.")
