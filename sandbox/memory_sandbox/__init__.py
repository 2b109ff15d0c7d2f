"""Local sandbox: an emulated Kubernetes API, an embedded Redis/Valkey engine and the demo."""
