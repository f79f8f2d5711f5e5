-- Runs once, when the postgres container initialises an empty data directory: MLflow's
-- tracking store beside the prediction log (docker-compose.yml).
CREATE DATABASE mlflow OWNER migraine;
