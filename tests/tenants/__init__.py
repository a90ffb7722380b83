"""Keys as tenants, and their limits."""
