"""The tasks' names: light enough for the CLI to list them without importing pandas (the tasks live in :mod:`models.tasks`)."""

IMPORT_SUBSTITUTION = "import-substitution"
JOINT_PROJECTS = "joint-projects"
DIVERSIFICATION = "diversification"
TASK_NAMES = (IMPORT_SUBSTITUTION, JOINT_PROJECTS, DIVERSIFICATION)
"""Every task, in the order of ``models.tasks.TASKS`` (a test checks the two agree)."""
