"""The Django side of the ETL platform: configuration, validation, DAG generation and run records."""
