"""Comparison app for bench/serve.py: Flask on gunicorn doing nothing (the ceiling)."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.post("/predict")
def predict():
    return jsonify({"hello": "world"})
