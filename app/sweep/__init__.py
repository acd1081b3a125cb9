"""`ponder sweep`: a grid of run configs as cells, their accuracy-against-compute frontier with
intervals, difficulty bins, and the fitted table the compute_optimal strategy reads."""
