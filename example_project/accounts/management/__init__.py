"""Management commands of the example site."""
