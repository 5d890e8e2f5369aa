"""The registry's side of public credit (公共信用信息): the tables of credit records, their
lifecycle events and history, list memberships, repair applications and the log of checks
(:mod:`registry.credit.models`); import, lifecycle, repair and ``check``
(:mod:`registry.credit.imports`, :mod:`~registry.credit.lifecycle`,
:mod:`~registry.credit.repair`, :mod:`~registry.credit.checks`); the public profile and search
(:mod:`registry.credit.public_reads`) and the authority's profile
(:mod:`registry.credit.authority_profile`). The rules themselves live in :mod:`credit`.
"""
