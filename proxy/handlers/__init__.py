"""One module per endpoint group of `/api/v1`; each parses at the edge and answers JSON or SSE."""
