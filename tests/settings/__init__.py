"""Configuration, the command line, and `make run`'s start-up."""
