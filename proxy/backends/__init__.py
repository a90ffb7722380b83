"""Upstream LLM servers behind one small interface (see `base.Backend`)."""
