"""Reconcilers: observe -> build desired state -> apply -> status. One module per kind; no kopf imports."""
