"""Step implementations, one module per step kind; each ``run(StepRun)`` fills the run's StepResult.

The step-kind registry (``django_etl.stepkinds``) names each one by dotted path; ``airflow_plugin.runtime``
imports it in the task process.
"""
