"""`edgepack keygen`: an ed25519 key pair for `build --sign` and `verify --pubkey`."""

from __future__ import annotations

import click


@click.command()
@click.argument("path", default="edgepack.key", required=False)
@click.option(
    "--type",
    "key_type",
    type=click.Choice(["ed25519", "ecdsa-p256"]),
    default="ed25519",
    show_default=True,
    help="ed25519 signs manifest.sig; ecdsa-p256 signs with build --sign-format model-signing.",
)
def keygen(path: str, key_type: str) -> None:
    """Write a new private key to PATH (mode 0600) and its public key to PATH.pub.

    Sign with `edgepack build --sign PATH`; apps verify with PATH.pub. Never overwrites a key.
    """
    from packager.signing import key_fingerprint, read_private_key
    from packager.signing import keygen as make_keys

    private, public = make_keys(path, key_type)
    click.echo(f"private key: {private} (keep it secret; mode 0600)")
    if key_type == "ed25519":
        click.echo(f"public key:  {public} ({key_fingerprint(read_private_key(private))})")
    else:
        click.echo(f"public key:  {public} (ecdsa-p256: build --sign-format model-signing)")
