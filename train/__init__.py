"""Training and evaluation: data sets, synthetic forgeries, models, losses, trainer, export."""
