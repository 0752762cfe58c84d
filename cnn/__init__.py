"""The dataframe-driven tf.data loader, model builders, training, evaluation and prediction."""
