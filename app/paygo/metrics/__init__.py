"""OpenPAYGO Metrics: connected boxes report their usage and fetch their own tokens.

`protocol` reads and signs the standard's JSON (no database), `formats` checks data formats
and expands condensed and historical data, `store` keeps boxes, readings and formats,
`service` answers one device-data request, `usage` aggregates readings in SQL, and `web` is
the thin blueprint at /openpaygo/metrics/.
"""
