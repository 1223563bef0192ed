"""kiemke: Vietnam's land inventory (kiểm kê đất đai) as a staged pipeline.

Foundation modules (``config``, ``workdir``, ``crs``, ``reference``,
``regime``, ``units``, ``symbology``, ``topology``, ``io``, ``parallel`` …)
sit below the stages, one subpackage or module each, in pipeline order:
``ingest`` → ``qa`` → ``khoanh`` → ``change`` → ``aggregate`` → ``forms`` →
``maps`` → ``package``; each has a pure core and a ``run_<stage>(work, …)``
entry point that the ``kiemke`` command line (``cli``) wraps.
"""

__version__ = "0.1.0"
