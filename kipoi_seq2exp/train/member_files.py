"""The files of an exported member folder: written by ``seq2exp export``, read by the zoo.

A module of its own (no imports) so that the zoo's light commands (``seq2exp example-args``,
``register``) can name them without importing torch through :mod:`.export`.
"""

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
DATA_FILE = "data.yaml"
METRICS_FILE = "metrics.json"
EXPORT_FILES = (WEIGHTS_FILE, CONFIG_FILE, DATA_FILE, METRICS_FILE)
