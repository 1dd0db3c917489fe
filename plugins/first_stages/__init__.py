"""Built-in first_stages plugins."""
