"""`plan --rehearse`: the plan run on throwaway copies of its targets (see run.py)."""
