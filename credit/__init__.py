"""Public credit (公共信用信息): the pure domain of 双公示 records, credit lists and
commitments, publication windows under versioned rule sets, credit repair, and joint reward
and punishment. No HTTP, SQL, clock or randomness here: ``now`` and random sources come in
as parameters; ``registry`` serves this domain and ``sdk`` calls it.

- :mod:`credit.subjects`, :mod:`credit.records`: the types, natural keys and identities;
- :mod:`credit.validation`, :mod:`credit.normalize`, :mod:`credit.columns`: one row of a
  national template into a record or report entries;
- :mod:`credit.importing`: CSV and XLSX files, streamed, all-or-nothing or valid rows;
- :mod:`credit.corrections`, :mod:`credit.lifecycle`: corrections and lifecycle events;
- :mod:`credit.commitments`: per-field salted SM3 commitments;
- :mod:`credit.rulesets`, :mod:`credit.windows`: publication windows and repair;
- :mod:`credit.working_days`, :mod:`credit.holiday_data`: working days (调休 included) for
  deadlines;
- :mod:`credit.joint`: the measures catalogue and ``check``.
"""
