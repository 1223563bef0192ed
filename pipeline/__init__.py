"""kiemke: Vietnam's land inventory (kiểm kê đất đai) as a staged pipeline.

Stages, each a module with a pure core and a thin ``kiemke <stage>`` command:
``ingest`` (with ``reproject``) → ``aggregate`` (later: qa, khoanh, forms,
maps, package).
"""

__version__ = "0.1.0"
