"""Report renderers, one module per report kind (registered in :mod:`fedrec.simulations.report`).

Each turns a benchmark's result dict into Markdown (``markdown``) and, where it has one,
a plot (``plot``); none of them measures anything.
"""
