"""The registry's side of public credit (公共信用信息): the tables of credit records, their
lifecycle events and history, list memberships, repair applications and the log of checks
(:mod:`registry.credit.models`); import, lifecycle, repair and ``check``
(:mod:`registry.credit.service` and its neighbours); the queries of profiles and the public
search (:mod:`registry.credit.queries`). The rules themselves live in :mod:`credit`.
"""
