"""The deployment files, and nginx in front of the real process."""
