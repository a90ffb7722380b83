"""Who is calling (keys and tenants) and how much they may: limits, windows and usage."""
