"""Video datasets: preparation, on-disk format, clip sampling, statistics and augmentation."""
