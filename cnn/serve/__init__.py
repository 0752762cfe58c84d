"""cnn.serve: serve-cnn, a finished run behind HTTP (FastAPI on uvicorn): the Open Inference Protocol, a plain
upload endpoint, Prometheus metrics and a page; dynamic batching and the guards a public address needs."""
