"""The ground floor: small helpers any layer may use (atomic writes, clocks, deadlines,
failpoints, the actor). Nothing here imports another releasectl package but `errors`."""
