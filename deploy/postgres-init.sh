#!/bin/sh
# Databases and roles for docker-compose.yaml, run once by the postgres image on an empty data volume: one
# database for Django (etl), one for Airflow's metadata and Celery's results (airflow). Passwords come from the
# container's environment (.env), never from this file.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v etl_password="$ETL_DB_PASSWORD" -v airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE etl LOGIN PASSWORD :'etl_password';
CREATE DATABASE etl OWNER etl;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
SQL
