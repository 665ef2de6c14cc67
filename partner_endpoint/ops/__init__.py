"""Operations: health, metrics (and who may read them), JSON logs."""
