"""Built-in retrievers plugins."""
