"""The one exception type the command line turns into a one-line message and a non-zero exit.

Each stage raises its own subclass (also a subclass of the built-in type it refines, so callers that catch
ValueError or OSError keep working); the message names the file or option and the fix."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, files or options; the message is what the user needs to read."""

    exit_code = 1
    """The command's exit status: 1 for a failed run, 2 for an option refused before any work."""
