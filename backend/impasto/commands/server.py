"""`impasto server`: the remote server's keys and allow-list (who may use `impasto serve --listen`).

``key`` prints the server's public key (what artists give ``impasto remote add --server-key``); ``invite NAME``
pairs a new artist in one line; ``allow LINE|FILE`` takes the line ``impasto remote add`` printed; ``revoke NAME``
refuses that client from its next message on; ``clients`` lists the allowed ones.  ``docs/remote.md`` explains.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional

from impasto_protocol.connection import ConnectionFileError
from impasto_protocol.remote import RemoteError, ServerKeys, client_from_line, read_pairing_argument

from ..errors import ImpastoError

NAME = "server"
HELP = "remote server keys: print the server key, invite / allow / revoke artists' machines, list them"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server-dir", type=Path, metavar="DIR",
                   help="the server key and allow-list folder (default: <config dir>/server)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("key", help="print the server's public key (made on first use)")
    inv = sub.add_parser("invite", help="pair a new client: allow a fresh key for NAME and print a one-line "
                                        "invitation for `impasto remote add NAME --invitation LINE` (secret: "
                                        "pass it like a password)")
    inv.add_argument("name")
    inv.add_argument("--endpoint", required=True, metavar="tcp://HOST:PORT",
                     help="the address artists reach this server at (as they see it)")
    allow = sub.add_parser("allow", help="allow the client whose line `impasto remote add` printed")
    allow.add_argument("line", metavar="LINE|FILE")
    rev = sub.add_parser("revoke", help="remove a client from the allow-list (refused from its next message on)")
    rev.add_argument("name")
    sub.add_parser("clients", help="list the allowed clients")


def allow_client(line: str, server_dir: Optional[Path] = None) -> str:
    """Put the client of a ``remote add`` line on the allow-list; returns its name."""
    try:
        client = client_from_line(read_pairing_argument(line))
        ServerKeys(server_dir).allow(client)
    except (RemoteError, ConnectionFileError, OSError) as e:
        raise ImpastoError(str(e)) from None
    print(f"allowed {client.name} (key {client.public_key})")
    return client.name


def run(args: argparse.Namespace) -> int:
    keys = ServerKeys(args.server_dir)
    try:
        if args.action == "key":
            print(keys.public_key())
        elif args.action == "invite":
            line = keys.invite(args.name, args.endpoint)
            print(f"# invitation for {args.name}: on the artist's machine run (keep it private)\n"
                  f"impasto remote add {args.name} --invitation {line}")
        elif args.action == "allow":
            allow_client(args.line, args.server_dir)
        elif args.action == "revoke":
            c = keys.revoke(args.name)
            print(f"revoked {c.name} (key {c.public_key}); its connections are refused from now on")
        elif args.action == "clients":
            clients = keys.clients()
            for c in clients:
                print(f"{c.name:<24} {c.public_key}  added {time.strftime('%Y-%m-%d %H:%M', time.localtime(c.added))}")
            if not clients:
                print("no clients allowed (`impasto server invite NAME --endpoint tcp://HOST:PORT`)")
    except (RemoteError, ConnectionFileError, OSError) as e:
        raise ImpastoError(str(e)) from None
    return 0
