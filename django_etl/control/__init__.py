"""Django in control of Airflow: the REST client, Run now, re-runs, pause sync, re-parse, the webhook trigger."""
