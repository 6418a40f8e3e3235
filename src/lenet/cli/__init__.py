"""The lenet command."""
