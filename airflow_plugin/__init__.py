"""Everything Airflow loads: the DAG builder, one operator per step type, the listener and the recorder."""
