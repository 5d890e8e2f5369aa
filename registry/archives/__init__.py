"""The registry side of e-archives: tables (:mod:`.models`), the archive's own signing of
custody events (:mod:`.signing`), the use cases (:mod:`.service`, :mod:`.access`,
:mod:`.auditing`) and settings (:mod:`.settings`). The domain is :mod:`archives`."""
