"""What the deployment-file tests share."""

from __future__ import annotations

KUBERNETES_VERSION = "1.30.0"



def stop_budget(grace: float) -> float:
    """The longest a graceful stop takes: streams get `grace`, their last events up to 5 s
    more (proxy/serving/drain.py), then single-shot calls `grace` again (run_app's shutdown_timeout)."""
    return 2 * grace + 5

