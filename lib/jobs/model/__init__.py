"""The model: the job row and the bases job authors extend."""
