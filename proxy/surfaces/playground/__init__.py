"""The browser playground under /playground/ (its files are in static/)."""
