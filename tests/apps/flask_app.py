"""A real Flask app: form POST, JSON round trip, streamed response, file download."""

from flask import Flask, Response, jsonify, request, send_file, stream_with_context

from sample_data import sample_path

STREAM_CHUNKS = [f"flask chunk {i}\n" for i in range(5)]

app = Flask(__name__)


@app.post("/form")
def form():
    return jsonify(dict(request.form))


@app.post("/json")
def json_echo():
    return jsonify({"received": request.get_json()})


@app.get("/stream")
def stream():
    def generate():
        yield from STREAM_CHUNKS
    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/download")
def download():
    return send_file(sample_path(), mimetype="application/octet-stream", as_attachment=True,
                     download_name="sample.bin")
