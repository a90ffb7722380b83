"""The command line: `python -m proxy [serve|check|keys ...]`."""
