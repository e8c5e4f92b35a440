"""`python -m iamchars.cli`: the same as the `iamchars` command (torchrun launches it this way)."""

from iamchars.cli import app

app()
