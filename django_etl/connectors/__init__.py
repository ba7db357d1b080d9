"""Connectors to external systems and the Fernet-encrypted credentials they use."""
