"""The HTTP edge: request context and ids, error rendering, auth, CORS, admission, access log."""
