"""Reading people's images: find the ink, make MNIST's form, read digits and numbers."""
