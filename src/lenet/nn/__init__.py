"""The networks: one description, run by NumPy and by torch; the model file."""
