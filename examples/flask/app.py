"""A Flask app served by tandem (Flask from Debian's python3-flask)."""
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def index():
    return "Hello from Flask under tandem\n"


@app.post("/echo")
def echo():
    data = request.get_data()
    return jsonify(length=len(data), content_type=request.content_type)


@app.get("/cookies")
def cookies():
    resp = jsonify(seen=request.cookies.get("a"))
    resp.set_cookie("x", "1")
    resp.set_cookie("y", "2")
    return resp
