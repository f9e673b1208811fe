"""What analysts take away: recommendations, batch-scored project lists, briefs, scenarios, and the writers of files.

* :mod:`~recommender.outputs.recommend` — ``recommend``: every candidate of a year, ranked, with reasons
* :mod:`~recommender.outputs.batch` — ``score_file``: a list of proposed projects, validated, scored, written
* :mod:`~recommender.outputs.scenario` — ``run_scenario``: a supply shock and who in the bloc could fill it
* :mod:`~recommender.outputs.brief` — ``write_brief``: one HTML file per country
* :mod:`~recommender.outputs.writers` — atomic files, spreadsheet-formula neutralisation

Modules are imported on demand (the brief needs matplotlib; a CLI call loads only what it runs).
"""
