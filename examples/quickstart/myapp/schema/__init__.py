"""myapp's SQL migrations (`[components] migrations: myapp.schema`)."""
