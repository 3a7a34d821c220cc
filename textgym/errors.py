"""The command line's error for a wrong argument, shared by ``textgym.cli`` (which reports it) and the commands
that raise it (``agents.commands``, ``agents.run_directory``): a module of its own, so neither imports the other
for it."""


class UsageError(ValueError):
    """A command-line argument is wrong: reported argparse-style (usage line, ``error: ...``, exit status 2)."""
