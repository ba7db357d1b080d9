"""Test-suite support shipped with the package: environment bootstrap and a throwaway PostgreSQL."""
