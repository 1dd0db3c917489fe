"""Built-in databases plugins."""
