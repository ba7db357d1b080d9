"""Users, organizations and memberships: who may see and change what."""
