"""Writers of tiny raw datasets in each dataset's exact on-disk format (test fixtures)."""
