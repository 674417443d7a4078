"""The ``--help`` format every entry point shares: each option's help ends with its default.

Like argparse's ``ArgumentDefaultsHelpFormatter``, but without the noise: nothing is added when the help
already says its default or when there is none to state (``None``, ``False``, an empty value), and list
defaults read as typed (``1 2 3``). Imports nothing heavy, so ``--help`` stays fast.
"""
import argparse


def shown_default(value) -> str:
    """A default as a user would type it on the command line."""
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value)
    return str(value)


def has_default(value) -> bool:
    """False for the values that mean "no default" (None, False, an empty string or list, SUPPRESS)."""
    if value is None or value is False or value is argparse.SUPPRESS:
        return False
    return not (isinstance(value, (str, list, tuple)) and len(value) == 0)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help text with ``(default: X)`` after each option that has a default worth stating."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text.lower() or not has_default(default):
            return text
        return f"{text} (default: {shown_default(default).replace('%', '%%')})"
