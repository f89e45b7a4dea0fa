"""Planning: the pure planner, and what gathers its inputs and checks what a plan runs."""
