"""Development tools, not part of training or job submission: ``local_cluster`` installs and runs a two-node
Slurm cluster with accounting on this machine (as root) for the test suite and for trying sweeps locally
(``make cluster-up`` / ``make cluster-down``). Nothing else in the package imports from here."""
