"""CSV export import: reading (:mod:`.reader`), checkpoints (:mod:`.checkpoint`), cron schedule
(:mod:`.schedule`), code tables (:mod:`.tables`) and the import of one file (:mod:`.importer`).

The adapter itself is :mod:`adapters.csv_file`; the row mapping is :mod:`mappings.csv_decl`.
"""
