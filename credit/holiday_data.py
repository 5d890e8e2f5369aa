"""The State Council's yearly holiday arrangements (国务院办公厅关于部分节假日安排的通知) as
data: the days off (放假, including the weekdays moved into a holiday, 调休) and the
weekend days worked instead (上班). Read by :mod:`credit.working_days`.

Each year names the notice it was copied from. The texts were read as republished by
government sites and Xinhua (the notices are public-domain official documents):

- 2023: 国办发明电〔2022〕16号 (2022-12-08)
- 2024: 国办发明电〔2023〕7号 (2023-10-25)
- 2025: 国办发明电〔2024〕12号 (2024-11-12), under the revised 《全国年节及纪念日放假办法》
  (2024-11), which added 除夕 and 5月2日
- 2026: 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04)
- 2027: the notice was not found in the sources consulted. The year holds only the statutory
  holidays of 《全国年节及纪念日放假办法》 (2024 revision, article 2): 元旦 1 day, 春节 4 days
  (除夕 to 初三), 清明 1, 劳动节 2, 端午 1, 中秋 1, 国庆 3, on the 2027 lunar dates; it has
  no make-up working days and no moved days, so it is marked provisional. Replace it with
  the notice's days when it is added.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["YEARS", "YearArrangement"]


@dataclass(frozen=True)
class YearArrangement:
    """One year's arrangement, as ISO date ranges ``"YYYY-MM-DD..YYYY-MM-DD"`` or days."""

    source: str
    """The notice (or law) the days are copied from."""
    days_off: tuple[str, ...]
    """Holidays, moved days included (a range covers its weekend days too)."""
    make_up_working_days: tuple[str, ...]
    """Saturdays and Sundays worked (调休上班)."""
    provisional: bool = False
    """True while the year's notice is not in: statutory days only, no 调休."""


YEARS: dict[int, YearArrangement] = {
    2023: YearArrangement(
        source="国办发明电〔2022〕16号",
        days_off=(
            "2023-01-01..2023-01-02",  # 元旦 (from 2022-12-31)
            "2023-01-21..2023-01-27",  # 春节
            "2023-04-05",  # 清明节
            "2023-04-29..2023-05-03",  # 劳动节
            "2023-06-22..2023-06-24",  # 端午节
            "2023-09-29..2023-10-06",  # 中秋节、国庆节
        ),
        make_up_working_days=(
            "2023-01-28",
            "2023-01-29",
            "2023-04-23",
            "2023-05-06",
            "2023-06-25",
            "2023-10-07",
            "2023-10-08",
        ),
    ),
    2024: YearArrangement(
        source="国办发明电〔2023〕7号",
        days_off=(
            "2024-01-01",  # 元旦
            "2024-02-10..2024-02-17",  # 春节
            "2024-04-04..2024-04-06",  # 清明节
            "2024-05-01..2024-05-05",  # 劳动节
            "2024-06-10",  # 端午节
            "2024-09-15..2024-09-17",  # 中秋节
            "2024-10-01..2024-10-07",  # 国庆节
        ),
        make_up_working_days=(
            "2024-02-04",
            "2024-02-18",
            "2024-04-07",
            "2024-04-28",
            "2024-05-11",
            "2024-09-14",
            "2024-09-29",
            "2024-10-12",
        ),
    ),
    2025: YearArrangement(
        source="国办发明电〔2024〕12号",
        days_off=(
            "2025-01-01",  # 元旦
            "2025-01-28..2025-02-04",  # 春节
            "2025-04-04..2025-04-06",  # 清明节
            "2025-05-01..2025-05-05",  # 劳动节
            "2025-05-31..2025-06-02",  # 端午节
            "2025-10-01..2025-10-08",  # 国庆节、中秋节
        ),
        make_up_working_days=(
            "2025-01-26",
            "2025-02-08",
            "2025-04-27",
            "2025-09-28",
            "2025-10-11",
        ),
    ),
    2026: YearArrangement(
        source="国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04)",
        days_off=(
            "2026-01-01..2026-01-03",  # 元旦
            "2026-02-15..2026-02-23",  # 春节
            "2026-04-04..2026-04-06",  # 清明节
            "2026-05-01..2026-05-05",  # 劳动节
            "2026-06-19..2026-06-21",  # 端午节
            "2026-09-25..2026-09-27",  # 中秋节
            "2026-10-01..2026-10-07",  # 国庆节
        ),
        make_up_working_days=(
            "2026-01-04",
            "2026-02-14",
            "2026-02-28",
            "2026-05-09",
            "2026-09-20",
            "2026-10-10",
        ),
    ),
    2027: YearArrangement(
        source="《全国年节及纪念日放假办法》(2024年修订) 第二条: statutory days only",
        days_off=(
            "2027-01-01",  # 元旦
            "2027-02-05..2027-02-08",  # 春节: 除夕 to 初三 (初一 is 2027-02-06)
            "2027-04-05",  # 清明节
            "2027-05-01..2027-05-02",  # 劳动节
            "2027-06-09",  # 端午节
            "2027-09-15",  # 中秋节
            "2027-10-01..2027-10-03",  # 国庆节
        ),
        make_up_working_days=(),
        provisional=True,
    ),
}
"""The arrangements held, by year."""
