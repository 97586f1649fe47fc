"""`edgepack keygen`: an ed25519 key pair for `build --sign` and `verify --pubkey`."""

from __future__ import annotations

import click


@click.command()
@click.argument("path", default="edgepack.key", required=False)
def keygen(path: str) -> None:
    """Write a new ed25519 private key to PATH (mode 0600) and its public key to PATH.pub.

    Sign with `edgepack build --sign PATH`; apps verify with PATH.pub. Never overwrites a key.
    """
    from packager.signing import key_fingerprint, read_private_key
    from packager.signing import keygen as make_keys

    private, public = make_keys(path)
    click.echo(f"private key: {private} (keep it secret; mode 0600)")
    click.echo(f"public key:  {public} ({key_fingerprint(read_private_key(private))})")
