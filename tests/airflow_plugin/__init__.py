"""Tests of the Airflow plugin package."""
