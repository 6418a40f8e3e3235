"""Training: the loop, the optimizer, resume, augmentation, distributed runs."""
