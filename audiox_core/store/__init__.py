"""Where files live and how they are written: durable local files, S3, caches, the shared store, serving."""
