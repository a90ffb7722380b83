"""Settings: the one table of environment variables and the Settings read from it."""
