"""The web console's views, by subject."""
