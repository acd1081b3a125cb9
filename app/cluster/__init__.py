"""`ponder run --ray`: a run's problems solved on a pool of Ray actors, one engine each, within
one run-wide budget leased out per problem."""
