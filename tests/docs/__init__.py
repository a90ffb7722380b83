"""The documentation: its examples run, its generated pages current, its links whole."""
