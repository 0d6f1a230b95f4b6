"""relatorios: asynchronous CSV report generator (API -> Redis -> streaming workers -> CSV)."""

__version__ = "0.1.0"
