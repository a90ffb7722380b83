"""The HTTP edge: bearer auth, CORS."""
