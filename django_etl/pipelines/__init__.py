"""Pipelines and their steps, their validation, and their compilation into Airflow DAG files."""
