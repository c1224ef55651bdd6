"""`impasto remote`: this machine's remote servers (a GPU elsewhere), by name.

``add NAME tcp://HOST:PORT --server-key KEY`` makes this machine's key pair and signing key and prints the line the
server's owner allows with ``impasto serve --allow LINE``; ``add NAME --invitation LINE`` takes an invitation the
server printed instead.  Then ``impasto stylize ... --daemon NAME``, ``impasto status --daemon NAME`` and the editor
plugins' "Server" setting use it.  ``docs/remote.md`` explains.
"""
from __future__ import annotations

import argparse

from impasto_protocol.connection import ConnectionFileError
from impasto_protocol.remote import (RemoteError, describe, list_remotes, load_remote, new_profile,
                                     profile_from_invitation, read_pairing_argument, remove_remote, save_remote)

from ..errors import ImpastoError

NAME = "remote"
HELP = "remote servers this machine may use: add (pair), list, remove, test"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser("add", help="pair with a remote server")
    add.add_argument("name")
    add.add_argument("endpoint", nargs="?", metavar="tcp://HOST:PORT")
    add.add_argument("--server-key", metavar="KEY", help="the server's public key (`impasto server key` there)")
    add.add_argument("--invitation", metavar="LINE|FILE", help="an invitation `impasto server invite` printed")
    add.add_argument("--no-compression", action="store_true",
                     help="send images uncompressed (a fast network; compression is on by default)")
    sub.add_parser("list", help="list the paired servers")
    rm = sub.add_parser("remove", help="forget a server (its owner should also revoke this machine's key)")
    rm.add_argument("name")
    test = sub.add_parser("test", help="connect and print what the server offers")
    test.add_argument("name")
    test.add_argument("--timeout", type=float, default=5.0)


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "add":
            return _add(args)
        if args.action == "list":
            remotes = list_remotes()
            for r in remotes:
                d = describe(r)
                print(f"{d['name']:<20} {d['endpoint']:<32} server key {d['server_key']}")
            if not remotes:
                print("no remote servers (`impasto remote add NAME tcp://HOST:PORT --server-key KEY`)")
            return 0
        if args.action == "remove":
            if not remove_remote(args.name):
                raise ImpastoError(f"no remote server named {args.name!r}")
            print(f"removed {args.name}")
            return 0
        if args.action == "test":
            from impasto_protocol.client import Client, DaemonNotRunning
            try:
                client = Client.connect_remote(load_remote(args.name), timeout=args.timeout)
            except DaemonNotRunning as e:
                raise ImpastoError(str(e)) from None
            try:
                hello = client.hello()
            finally:
                client.close(cancel_jobs=False)
            print(f"{args.name}: impasto {hello['impasto_version']}, devices {', '.join(hello['devices'])}, "
                  f"engines {', '.join(hello['engines'])}; paired as {hello.get('remote_client', '?')}")
            return 0
    except (RemoteError, ConnectionFileError, OSError) as e:
        raise ImpastoError(str(e)) from None
    return 2


def _add(args: argparse.Namespace) -> int:
    if args.invitation:
        if args.endpoint or args.server_key:
            raise ImpastoError("an invitation already names the endpoint and the server key; give only --invitation")
        profile = profile_from_invitation(read_pairing_argument(args.invitation), name=args.name)
        if args.no_compression:
            profile.compression = False
        path = save_remote(profile)
        print(f"added {profile.name} ({profile.endpoint}) to {path}; try `impasto remote test {profile.name}`")
        return 0
    if not args.endpoint or not args.server_key:
        raise ImpastoError("give tcp://HOST:PORT and --server-key KEY (from `impasto server key` on the server), "
                           "or --invitation LINE")
    profile = new_profile(args.name, args.endpoint, args.server_key)
    if args.no_compression:
        profile.compression = False
    path = save_remote(profile)
    print(f"added {profile.name} ({profile.endpoint}) to {path}.\n"
          f"# On the server run (the line holds this machine's signing key: pass it privately, e.g. over ssh):\n"
          f"impasto serve --allow {profile.client_line()}  # or: impasto server allow LINE")
    return 0
