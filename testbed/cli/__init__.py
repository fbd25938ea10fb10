"""The `testbed` command (main.py) and its interactive shell (shell.py)."""
