-- Databases and roles for docker-compose.yaml: one for Django (etl), one for Airflow's metadata (airflow).
CREATE ROLE etl LOGIN PASSWORD 'etl';
CREATE DATABASE etl OWNER etl;
CREATE ROLE airflow LOGIN PASSWORD 'airflow';
CREATE DATABASE airflow OWNER airflow;
