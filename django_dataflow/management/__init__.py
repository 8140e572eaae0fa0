"""Management commands of django-dataflow."""
