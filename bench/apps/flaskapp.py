"""The Flask app for bench/app.sh (Debian's python3-flask).

Same shape as examples/flask/app.py's index route; kept here so the benchmark
does not change when the example does.
"""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask under tandem\n"
