"""Data: the IDX reader, MNIST, image decoding, the disguise generator."""
