"""Package data: the Slurm job-array template that `cloudlulc_edge.deploy` fills (Kubernetes manifests are built as data)."""
