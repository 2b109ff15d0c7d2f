"""Pure builders: model in, plain data out (Kubernetes objects, ACL rules); no I/O, no clock, no randomness."""
