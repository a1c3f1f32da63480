"""Package data: the scale-out job templates that `cloudlulc_edge.deploy` fills (Kubernetes, Slurm)."""
