"""Comparison app for bench/serve.py: the plain way, predict_proba on a one-row DataFrame."""

import os

import pandas as pd
from flask import Flask, jsonify, request

from migraine_ml import persist

app = Flask(__name__)
model = persist.load(os.environ.get("BENCH_MODEL", "models/classifier-champion.skops"))


@app.post("/predict")
def predict():
    proba = model.predict_proba(pd.DataFrame([request.get_json()]))
    return jsonify({"probability": float(proba[0, 1])})
