"""Log clustering: masking, embeddings, streaming clusters, templates."""
