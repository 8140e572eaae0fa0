"""The example site's one app: its users, listed the way the DataFlow guide lists them."""
