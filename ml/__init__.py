"""The arq worker: model registry, llama.cpp engine, and the jobs the app enqueues."""
