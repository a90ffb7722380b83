"""The serving layer: model table, reservation, routing, draining and outcome, behind one `Service`."""
