"""A small Flask app (needs python3-flask; its tests skip without it)."""
import os
import tempfile

from flask import Flask, request, send_file

app = Flask(__name__)
DATA = b'flask file ' * 1000


@app.route('/')
def index():
    return 'hello from flask'


@app.route('/form', methods=['POST'])
def form():
    return 'name=%s' % request.form['name']


@app.route('/file')
def file():
    fd, path = tempfile.mkstemp()
    os.write(fd, DATA)
    os.close(fd)
    f = open(path, 'rb')
    os.unlink(path)
    return send_file(f, mimetype='application/octet-stream')
