"""Client surfaces: each reads and checks its bodies, calls the serving layer and renders answers in its dialect."""
